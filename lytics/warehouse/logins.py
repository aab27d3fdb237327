"""How each part of Lytics connects as its least-privilege role.

Three roles do the work: `lytics_ingest` (inserts raw data), `lytics_reader` (the
read API, one project per transaction) and `lytics_pipeline` (Dagster's jobs).
Connected straight to Postgres, the owner's login (DATABASE_URL) assumes the role
with the startup option `-c role=...`. A pooler in transaction mode (pgbouncer)
refuses startup options, and one told to ignore them would leave the connection
acting as the owner, above row-level security. So each role can have a login URL
of its own (LYTICS_INGEST_DATABASE_URL, LYTICS_READER_DATABASE_URL,
LYTICS_PIPELINE_DATABASE_URL), used as it is; and a connection made through such a
URL checks, once, that it really acts as its role and refuses to work otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lytics.warehouse.urls import libpq_dsn

INGEST = "lytics_ingest"
READER = "lytics_reader"
PIPELINE = "lytics_pipeline"
ROLES = (INGEST, READER, PIPELINE)

# Run once on each new connection made through a role's own login (one parameter: the role).
# Owning a table, or being a member of its owner, exempts a session from its policies.
ROLE_CHECK = """
SELECT r.rolname::text, pg_has_role(r.oid, %s, 'USAGE'), r.rolsuper, r.rolbypassrls,
       EXISTS (SELECT FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
               WHERE n.nspname IN ('app', 'raw') AND pg_has_role(r.oid, c.relowner, 'USAGE'))
FROM pg_roles AS r WHERE r.rolname = current_user
"""


class WrongRoleError(RuntimeError):
    """A role's login URL logs in as someone else: refuse rather than run above RLS."""


@dataclass(frozen=True)
class RoleLogin:
    role: str
    # A libpq URI; it keeps the password, so never log it.
    dsn: str
    # True: `dsn` is the owner's login and each connection assumes `role` at startup.
    # False: `dsn` is the role's own login (directly or through a pooler).
    assumes_role: bool

    def connect_kwargs(self) -> dict[str, Any]:
        """What psycopg.connect needs besides the DSN to act as the role."""
        return {"options": f"-c role={self.role}"} if self.assumes_role else {}

    def verify(self, check: Sequence[Any]) -> None:
        """Refuse a connection through the role's own login that is not limited to the role.

        `check` is the row ROLE_CHECK returns on that connection.
        """
        user, has_role, superuser, bypasses_rls, owns_tables = check
        if user == self.role:
            return
        reasons = [
            (superuser, "is a superuser"),
            (owns_tables, "owns Lytics' tables"),
            (not has_role, f"lacks the privileges of {self.role}"),
            (bypasses_rls and self.role == READER, "bypasses row-level security"),
        ]
        why = next((reason for applies, reason in reasons if applies), None)
        if why is not None:
            raise WrongRoleError(
                f"the login for {self.role} connects as {user!r}, which {why}: give the "
                f"role a login (ALTER ROLE {self.role} LOGIN PASSWORD '...') and use it in "
                "that URL; see docs/deployment.md"
            )


def role_login(role: str, database_url: str | None, own_url: str | None) -> RoleLogin:
    """The role's own login when one is configured, else the owner's assuming the role."""
    if role not in ROLES:
        raise ValueError(f"not a Lytics role: {role}")
    if own_url is not None:
        return RoleLogin(role, libpq_dsn(own_url), assumes_role=False)
    if database_url is None:
        raise ValueError(f"no URL to connect as {role}: set DATABASE_URL")
    return RoleLogin(role, libpq_dsn(database_url), assumes_role=True)
