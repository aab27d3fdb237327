"""GitHub data (schema `github`), filled by lytics_assets.github.

Declared on the shared `metadata`; `lytics.warehouse.catalog` imports every table module.

Data tables are keyed by GitHub's own ids within a project (the same repository
followed by two projects is stored twice, once per tenant) and keep the whole
JSON GitHub returned in `raw` next to the typed columns. `synced_at` moves only
when a row's content changed, so the marts sensor rebuilds just the affected days.
Bookkeeping (cursors, ETags) belongs to a data source and disappears with it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from lytics.warehouse.tables import metadata

__all__ = ["metadata"]


def _project() -> Column[int]:
    return Column(
        "project_id",
        BigInteger,
        ForeignKey("app.projects.id", ondelete="CASCADE"),
        primary_key=True,
    )


def _synced_at() -> Column[object]:
    return Column("synced_at", DateTime(timezone=True), nullable=False, server_default=func.now())


def _repo_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["project_id", "repository_id"],
        ["github.repositories.project_id", "github.repositories.id"],
        ondelete="CASCADE",
    )


accounts = Table(
    "accounts",
    metadata,
    _project(),
    Column("id", BigInteger, primary_key=True),
    Column(
        "source_id",
        BigInteger,
        ForeignKey("app.data_sources.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("login", Text, nullable=False),
    Column("name", Text),
    Column("type", Text),
    Column("html_url", Text),
    Column("public_repos", Integer),
    Column("followers", Integer),
    Column("raw", JSONB, nullable=False),
    _synced_at(),
    Index(None, "source_id"),
    schema="github",
)

repositories = Table(
    "repositories",
    metadata,
    _project(),
    Column("id", BigInteger, primary_key=True),
    Column(
        "source_id",
        BigInteger,
        ForeignKey("app.data_sources.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("full_name", Text, nullable=False),
    Column("owner_login", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("private", Boolean, nullable=False),
    Column("visibility", Text, nullable=False),
    # Public, or private in a project that opted in: the only rows reads and digests may show.
    Column("exposed", Boolean, nullable=False),
    Column("fork", Boolean, nullable=False),
    Column("archived", Boolean, nullable=False),
    Column("description", Text),
    Column("html_url", Text),
    Column("language", Text),
    Column("default_branch", Text),
    Column("stargazers_count", Integer, nullable=False),
    Column("forks_count", Integer, nullable=False),
    # subscribers_count: GitHub's `watchers_count` is the star count for historical reasons.
    Column("watchers_count", Integer),
    Column("open_issues_count", Integer, nullable=False),
    Column("size_kb", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True)),
    Column("pushed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    Column("raw", JSONB, nullable=False),
    _synced_at(),
    CheckConstraint("visibility IN ('public', 'private', 'internal')", name="visibility"),
    Index(None, "project_id", "full_name"),
    Index(None, "source_id"),
    schema="github",
)

repository_snapshots = Table(
    "repository_snapshots",
    metadata,
    _project(),
    Column("repository_id", BigInteger, primary_key=True),
    Column("snapshot_date", Date, primary_key=True),
    Column("stargazers_count", Integer, nullable=False),
    Column("forks_count", Integer, nullable=False),
    Column("watchers_count", Integer),
    Column("open_issues_count", Integer, nullable=False),
    Column("size_kb", Integer, nullable=False),
    Column("default_branch", Text),
    # The last observation during that UTC day wins: a day's snapshot is its closing value.
    Column("observed_at", DateTime(timezone=True), nullable=False),
    _synced_at(),
    _repo_fk(),
    schema="github",
)

stargazers = Table(
    "stargazers",
    metadata,
    _project(),
    Column("repository_id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("login", Text, nullable=False),
    Column("starred_at", DateTime(timezone=True), nullable=False),
    Column("raw", JSONB, nullable=False),
    _synced_at(),
    _repo_fk(),
    Index(None, "project_id", "starred_at"),
    schema="github",
)

issues = Table(
    "issues",
    metadata,
    _project(),
    Column("id", BigInteger, primary_key=True),
    Column("repository_id", BigInteger, nullable=False),
    Column("number", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("user_login", Text),
    Column("comments", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    Column("raw", JSONB, nullable=False),
    _synced_at(),
    _repo_fk(),
    Index(None, "project_id", "repository_id"),
    schema="github",
)

pull_requests = Table(
    "pull_requests",
    metadata,
    _project(),
    Column("id", BigInteger, primary_key=True),
    Column("repository_id", BigInteger, nullable=False),
    Column("number", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("draft", Boolean, nullable=False),
    Column("merged", Boolean, nullable=False),
    Column("user_login", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    Column("merged_at", DateTime(timezone=True)),
    Column("raw", JSONB, nullable=False),
    _synced_at(),
    _repo_fk(),
    Index(None, "project_id", "repository_id"),
    schema="github",
)

releases = Table(
    "releases",
    metadata,
    _project(),
    Column("id", BigInteger, primary_key=True),
    Column("repository_id", BigInteger, nullable=False),
    Column("tag_name", Text, nullable=False),
    Column("name", Text),
    Column("draft", Boolean, nullable=False),
    Column("prerelease", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True)),
    Column("raw", JSONB, nullable=False),
    _synced_at(),
    _repo_fk(),
    Index(None, "project_id", "repository_id"),
    schema="github",
)

commits = Table(
    "commits",
    metadata,
    _project(),
    Column("repository_id", BigInteger, primary_key=True),
    Column("sha", Text, primary_key=True),
    Column("author_login", Text),
    Column("author_name", Text),
    Column("authored_at", DateTime(timezone=True)),
    Column("committed_at", DateTime(timezone=True), nullable=False),
    Column("message", Text, nullable=False),
    Column("raw", JSONB, nullable=False),
    _synced_at(),
    _repo_fk(),
    schema="github",
)

traffic = Table(
    "traffic",
    metadata,
    _project(),
    Column("repository_id", BigInteger, primary_key=True),
    Column("kind", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("count", Integer, nullable=False),
    Column("uniques", Integer, nullable=False),
    _synced_at(),
    CheckConstraint("kind IN ('views', 'clones')", name="kind"),
    _repo_fk(),
    schema="github",
)

# --- bookkeeping, per data source -------------------------------------------------

sync_cursors = Table(
    "sync_cursors",
    metadata,
    Column(
        "source_id",
        BigInteger,
        ForeignKey("app.data_sources.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # 0 for streams that belong to no repository (the account, repository lists).
    Column("repository_id", BigInteger, primary_key=True),
    Column("stream", Text, primary_key=True),
    Column("position", JSONB, nullable=False),
    # ok, forbidden (e.g. traffic without push access), not_found
    Column("status", Text, nullable=False, server_default="ok"),
    Column("detail", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("status IN ('ok', 'forbidden', 'not_found')", name="status"),
    schema="github",
)

http_cache = Table(
    "http_cache",
    metadata,
    Column(
        "source_id",
        BigInteger,
        ForeignKey("app.data_sources.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # Path and query, canonical: what a conditional request is sent for.
    Column("url", Text, primary_key=True),
    Column("etag", Text, nullable=False),
    # Kept only for responses whose body is needed again on a 304 (repository objects, lists).
    Column("body", JSONB),
    Column("next_url", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    schema="github",
)

DATA_TABLES = (
    accounts,
    repositories,
    repository_snapshots,
    stargazers,
    issues,
    pull_requests,
    releases,
    commits,
    traffic,
)
BOOKKEEPING_TABLES = (sync_cursors, http_cache)
