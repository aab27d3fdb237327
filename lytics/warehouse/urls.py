"""One Postgres, several drivers: derive each consumer's URL from the configured one.

The ingest path and the core use psycopg 3; Dagster's storage speaks psycopg2
only; dbt wants separate host/port/user fields. All derive from DATABASE_URL.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url

DRIVERS = {"psycopg": "postgresql+psycopg", "psycopg2": "postgresql+psycopg2"}


def with_driver(url: str | URL, driver: str) -> URL:
    parsed = make_url(url) if isinstance(url, str) else url
    if not parsed.drivername.startswith("postgres"):
        raise ValueError(f"not a Postgres URL: {parsed.render_as_string(hide_password=True)}")
    return parsed.set(drivername=DRIVERS[driver])


def with_database(url: str | URL, database: str) -> URL:
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(database=database)


def render(url: URL) -> str:
    """The URL as a string with the password kept (for child processes, never for logs)."""
    return url.render_as_string(hide_password=False)


def redacted(url: str | URL) -> str:
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.render_as_string(hide_password=True)


def libpq_dsn(url: str | URL) -> str:
    """A libpq URI (for psycopg.connect and COPY paths that skip SQLAlchemy)."""
    parsed = make_url(url) if isinstance(url, str) else url
    return render(parsed.set(drivername="postgresql"))


def dbt_fields(url: str | URL) -> dict[str, str | int]:
    """Host, port, user, password and database as dbt-postgres' profile wants them."""
    parsed = make_url(url) if isinstance(url, str) else url
    host = parsed.host or str(parsed.query.get("host", "localhost"))
    return {
        "host": host,
        "port": parsed.port or 5432,
        "user": parsed.username or "postgres",
        "password": parsed.password if isinstance(parsed.password, str) else "",
        "dbname": parsed.database or "postgres",
    }


def dbt_env(url: str | URL) -> dict[str, str]:
    """The LYTICS_DBT_* variables dbt_project/profiles.yml reads."""
    fields = dbt_fields(url)
    return {
        "LYTICS_DBT_HOST": str(fields["host"]),
        "LYTICS_DBT_PORT": str(fields["port"]),
        "LYTICS_DBT_USER": str(fields["user"]),
        "LYTICS_DBT_PASSWORD": str(fields["password"]),
        "LYTICS_DBT_DBNAME": str(fields["dbname"]),
    }
