"""The pages behind a digest's unsubscribe link, and switching a member's digest off.

The page is a template (templates/unsubscribe_page.html) rendered with autoescaping;
styles are inline, as in the email, so the page needs no other resource.
"""

from __future__ import annotations

import jinja2
from sqlalchemy import Connection

_PAGES = jinja2.Environment(
    loader=jinja2.PackageLoader("lytics.digests", "templates"),
    autoescape=True,
    keep_trailing_newline=True,
)

INVALID = ("Invalid link", "This unsubscribe link is not valid.")


def page(title: str, text: str, token: str | None = None) -> str:
    """A page; with `token`, a button that POSTs the one-click unsubscribe for it."""
    return _PAGES.get_template("unsubscribe_page.html").render(title=title, text=text, token=token)


def confirmation(email: str, token: str) -> str:
    return page("Unsubscribe from the weekly digest", f"Stop the weekly digest for {email}?", token)


def done(email: str) -> str:
    return page("Unsubscribed", f"{email} will not receive this weekly digest any more.")


def switch_off(conn: Connection, project_id: int, email: str) -> int:
    """Stop the digest for `email` in the project; the number of memberships changed."""
    return conn.exec_driver_sql(
        "UPDATE app.project_members m SET digest_enabled = false FROM app.users u "
        "WHERE u.id = m.user_id AND lower(u.email) = %(e)s "
        "AND m.project_id = %(p)s AND m.digest_enabled",
        {"e": email, "p": project_id},
    ).rowcount
