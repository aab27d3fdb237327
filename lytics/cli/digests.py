"""`lytics digests`: digest recipients, previews, suppressions and runs by hand."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import NoReturn

import click


@click.group()
def digests() -> None:
    """Weekly digest emails: who gets them, what they say, who never gets one.

    Scheduled runs happen in Dagster (job `weekly_digest`, Monday 08:00 in
    LYTICS_DIGEST_TIMEZONE). Every send goes through the same outbox, so running
    a week again, here or in Dagster, never mails anyone twice.
    """


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _today() -> date:
    """Today where the digest is scheduled (LYTICS_DIGEST_TIMEZONE)."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from lytics.settings import get_settings

    return datetime.now(UTC).astimezone(ZoneInfo(get_settings().digest_timezone)).date()


def _week(value: str | None) -> date:
    from lytics.digests.weeks import last_complete_week, parse_week

    if value:
        return parse_week(value)
    return last_complete_week(_today())


WEEK_HELP = "Any day of the week (default: the last complete week)."

# --------------------------------------------------------------------------- recipients


@digests.group()
def recipients() -> None:
    """Project members and whether they receive the digest."""


@recipients.command("add")
@click.argument("project")
@click.argument("email")
@click.option("--name", help="The person's name.")
@click.option("--owner", is_flag=True, help="Add as the project's owner.")
@click.option("--digest/--no-digest", default=True, help="Receive the weekly digest (default).")
def recipients_add(project: str, email: str, name: str | None, owner: bool, digest: bool) -> None:
    """Add EMAIL to PROJECT (or change its digest setting)."""
    from lytics.cli.database import transaction
    from lytics.digests import recipients as members
    from lytics.projects import get_project
    from lytics.settings import get_settings

    with transaction(get_settings()) as conn:
        members.add(
            conn,
            get_project(conn, project).id,
            email,
            name=name,
            digest_enabled=digest,
            role="owner" if owner else "member",
        )
    click.echo(f"{email.lower()} is a member of {project}, digest {'on' if digest else 'off'}")


@recipients.command("list")
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def recipients_list(project: str, as_json: bool) -> None:
    """PROJECT's members, their digest setting and any suppression."""
    from lytics.cli.database import transaction
    from lytics.digests import recipients as members
    from lytics.projects import get_project
    from lytics.settings import get_settings

    with transaction(get_settings()) as conn:
        found = members.listing(conn, get_project(conn, project).id)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in found], indent=2))
        return
    for r in found:
        state = "on" if r.digest_enabled else "off"
        note = f"  suppressed ({r.suppressed})" if r.suppressed else ""
        click.echo(f"{r.email:40} {r.role:6} digest {state}{note}")


@recipients.command("remove")
@click.argument("project")
@click.argument("email")
def recipients_remove(project: str, email: str) -> None:
    """Remove EMAIL from PROJECT."""
    from lytics.cli.database import transaction
    from lytics.digests import recipients as members
    from lytics.projects import get_project
    from lytics.settings import get_settings

    with transaction(get_settings()) as conn:
        removed = members.remove(conn, get_project(conn, project).id, email)
    if not removed:
        _fail(f"{email} is not a member of {project}")
    click.echo(f"{email.lower()} removed from {project}")


# --------------------------------------------------------------------------- preview


@digests.command("preview")
@click.argument("project")
@click.argument("email")
@click.option("--week", help=WEEK_HELP)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write it here."
)
@click.option("--text", "as_text", is_flag=True, help="The plain-text part instead of HTML.")
def preview(project: str, email: str, week: str | None, output: Path | None, as_text: bool) -> None:
    """The digest EMAIL would get for PROJECT, exactly as sent (nothing is sent)."""
    from lytics.cli.database import transaction
    from lytics.digests import service
    from lytics.digests.config import send_config
    from lytics.projects import get_project
    from lytics.settings import get_settings

    settings = get_settings()
    monday = _week(week)
    try:
        with transaction(settings) as conn:
            message = service.preview(
                conn, send_config(settings), get_project(conn, project).id, email, monday
            )
    except service.NothingToSendError as exc:
        _fail(str(exc))
    body = message.text if as_text else message.html
    if output is None:
        click.echo(body, nl=False)
        return
    output.write_text(body, encoding="utf-8")
    click.echo(f"{message.subject}\nwritten to {output}", err=True)


# --------------------------------------------------------------------------- suppressions


@digests.group()
def suppressions() -> None:
    """Addresses that never receive a digest (bounces, complaints, by hand)."""


@suppressions.command("list")
def suppressions_list() -> None:
    """Suppressed addresses and why."""
    from lytics.cli.database import transaction
    from lytics.digests import outbox
    from lytics.digests import recipients as members
    from lytics.settings import get_settings

    with transaction(get_settings()) as conn:
        # Bounces stored by the webhook but not yet copied by a run count already.
        outbox.sync_suppressions(conn)
        found = members.suppressions(conn)
    for s in found:
        click.echo(f"{s.email:40} {s.reason:12} {s.created_at:%Y-%m-%d}  {s.detail or ''}")


@suppressions.command("add")
@click.argument("email")
@click.option(
    "--reason",
    type=click.Choice(["manual", "bounced", "complained", "unsubscribed"]),
    default="manual",
)
@click.option("--detail", help="A note for the next person.")
def suppressions_add(email: str, reason: str, detail: str | None) -> None:
    """Never send a digest to EMAIL."""
    from lytics.cli.database import transaction
    from lytics.digests import recipients as members
    from lytics.settings import get_settings

    with transaction(get_settings()) as conn:
        members.suppress(conn, email, reason, detail)
    click.echo(f"{email.lower()} suppressed ({reason})")


@suppressions.command("remove")
@click.argument("email")
def suppressions_remove(email: str) -> None:
    """Lift EMAIL's suppression (only if the address works again)."""
    from lytics.cli.database import transaction
    from lytics.digests import outbox
    from lytics.digests import recipients as members
    from lytics.settings import get_settings

    with transaction(get_settings()) as conn:
        outbox.sync_suppressions(conn)
        lifted = members.unsuppress(conn, email)
    if not lifted:
        _fail(f"{email} is not suppressed")
    click.echo(f"{email.lower()} may receive digests again")


# --------------------------------------------------------------------------- run


@digests.command("run")
@click.option("--week", help=WEEK_HELP)
@click.option("--project", help="Only this project (slug).")
@click.option("--email", help="Only this address.")
@click.option("--wait", type=float, default=0.0, help="Seconds to wait out a cooldown.")
@click.option("--json", "as_json", is_flag=True, help="Per-recipient status as JSON.")
def run(
    week: str | None, project: str | None, email: str | None, wait: float, as_json: bool
) -> None:
    """Send a week's digest now, outside Dagster (same outbox, same cooldown)."""
    from lytics.cli.database import database_url
    from lytics.digests import runs
    from lytics.digests.service import run_digest
    from lytics.projects import get_project
    from lytics.settings import get_settings
    from lytics.warehouse import logins
    from lytics.warehouse.engine import role_engine

    settings = get_settings()
    monday = _week(week)
    from lytics.digests.weeks import require_ended

    # A week is mailed once it is over (ValueError: one clear line, exit code 1).
    require_ended(monday, _today())
    with database_url(settings) as url:
        own = settings.pipeline_database_url
        engine = role_engine(
            logins.role_login(logins.PIPELINE, url, own.get_secret_value() if own else None)
        )
        try:
            project_id = None
            if project is not None:
                with engine.connect() as conn:
                    project_id = get_project(conn, project).id
            request = runs.RunRequest(
                period_start=monday,
                scope="email" if email else "all",
                scope_email=email,
                project_id=project_id,
            )
            try:
                report = run_digest(
                    engine,
                    settings,
                    request,
                    [monday],
                    wait_s=wait,
                    progress=lambda line: click.echo(line, err=True),
                )
            except runs.CooldownActiveError as exc:
                _fail(str(exc))
        finally:
            engine.dispose()
    if as_json:
        rows = [
            {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}
            for r in report.recipients
        ]
        click.echo(json.dumps({"sent": report.sent, "recipients": rows}, indent=2))
    else:
        for r in report.recipients:
            click.echo(f"{r['project']:20} {r['recipient']:40} {r['status']}")
        click.echo(
            f"run {report.run_id}: sent {report.sent}, skipped {report.skipped}, "
            f"errors {report.errors} in {report.elapsed_s:.1f}s"
        )
    if report.stopped or report.errors:
        _fail(report.stopped or f"{report.errors} recipient(s) not sent; run again to retry")
