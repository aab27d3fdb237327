"""GitHub extraction: account, repositories, snapshots, streams, cursors and ETags.

Every table gets row-level security with default deny. The pipeline role reads
and writes all of them; the reader role (the read API) sees one project's data
tables, never the bookkeeping (cursors, cached responses).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DATA_TABLES = (
    "accounts",
    "repositories",
    "repository_snapshots",
    "stargazers",
    "issues",
    "pull_requests",
    "releases",
    "commits",
    "traffic",
)
BOOKKEEPING_TABLES = ("sync_cursors", "http_cache")
READER_PROJECT = "project_id = nullif(current_setting('lytics.project_id', true), '')::bigint"


def _grant_access() -> None:
    for table in (*DATA_TABLES, *BOOKKEEPING_TABLES):
        op.execute(f"ALTER TABLE github.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON github.{table} TO lytics_pipeline")
        op.execute(
            f"CREATE POLICY pipeline_write ON github.{table} FOR ALL TO lytics_pipeline "
            "USING (true) WITH CHECK (true)"
        )
    for table in DATA_TABLES:
        op.execute(f"GRANT SELECT ON github.{table} TO lytics_reader")
        op.execute(
            f"CREATE POLICY reader_own_project ON github.{table} FOR SELECT TO lytics_reader "
            f"USING ({READER_PROJECT})"
        )


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("login", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("type", sa.Text(), nullable=True),
        sa.Column("html_url", sa.Text(), nullable=True),
        sa.Column("public_repos", sa.Integer(), nullable=True),
        sa.Column("followers", sa.Integer(), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["app.projects.id"],
            name=op.f("fk_accounts_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["app.data_sources.id"],
            name=op.f("fk_accounts_source_id_data_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_accounts")),
        schema="github",
    )
    op.create_index(
        op.f("ix_accounts_source_id"), "accounts", ["source_id"], unique=False, schema="github"
    )
    op.create_table(
        "http_cache",
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=False),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("next_url", sa.Text(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["app.data_sources.id"],
            name=op.f("fk_http_cache_source_id_data_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("source_id", "url", name=op.f("pk_http_cache")),
        schema="github",
    )
    op.create_table(
        "repositories",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("full_name", sa.Text(), nullable=False),
        sa.Column("owner_login", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("visibility", sa.Text(), nullable=False),
        sa.Column("exposed", sa.Boolean(), nullable=False),
        sa.Column("fork", sa.Boolean(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("html_url", sa.Text(), nullable=True),
        sa.Column("language", sa.Text(), nullable=True),
        sa.Column("default_branch", sa.Text(), nullable=True),
        sa.Column("stargazers_count", sa.Integer(), nullable=False),
        sa.Column("forks_count", sa.Integer(), nullable=False),
        sa.Column("watchers_count", sa.Integer(), nullable=True),
        sa.Column("open_issues_count", sa.Integer(), nullable=False),
        sa.Column("size_kb", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "visibility IN ('public', 'private', 'internal')",
            name=op.f("ck_repositories_visibility"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["app.projects.id"],
            name=op.f("fk_repositories_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["app.data_sources.id"],
            name=op.f("fk_repositories_source_id_data_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_repositories")),
        schema="github",
    )
    op.create_index(
        op.f("ix_repositories_project_id_full_name"),
        "repositories",
        ["project_id", "full_name"],
        unique=False,
        schema="github",
    )
    op.create_index(
        op.f("ix_repositories_source_id"),
        "repositories",
        ["source_id"],
        unique=False,
        schema="github",
    )
    op.create_table(
        "sync_cursors",
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("repository_id", sa.BigInteger(), nullable=False),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("position", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), server_default="ok", nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('ok', 'forbidden', 'not_found')", name=op.f("ck_sync_cursors_status")
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["app.data_sources.id"],
            name=op.f("fk_sync_cursors_source_id_data_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "source_id", "repository_id", "stream", name=op.f("pk_sync_cursors")
        ),
        schema="github",
    )
    op.create_table(
        "commits",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("repository_id", sa.BigInteger(), nullable=False),
        sa.Column("sha", sa.Text(), nullable=False),
        sa.Column("author_login", sa.Text(), nullable=True),
        sa.Column("author_name", sa.Text(), nullable=True),
        sa.Column("authored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "repository_id"],
            ["github.repositories.project_id", "github.repositories.id"],
            name=op.f("fk_commits_project_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["app.projects.id"],
            name=op.f("fk_commits_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "repository_id", "sha", name=op.f("pk_commits")),
        schema="github",
    )
    op.create_table(
        "issues",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("repository_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("user_login", sa.Text(), nullable=True),
        sa.Column("comments", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "repository_id"],
            ["github.repositories.project_id", "github.repositories.id"],
            name=op.f("fk_issues_project_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["app.projects.id"],
            name=op.f("fk_issues_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_issues")),
        schema="github",
    )
    op.create_index(
        op.f("ix_issues_project_id_repository_id"),
        "issues",
        ["project_id", "repository_id"],
        unique=False,
        schema="github",
    )
    op.create_table(
        "pull_requests",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("repository_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("draft", sa.Boolean(), nullable=False),
        sa.Column("merged", sa.Boolean(), nullable=False),
        sa.Column("user_login", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "repository_id"],
            ["github.repositories.project_id", "github.repositories.id"],
            name=op.f("fk_pull_requests_project_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["app.projects.id"],
            name=op.f("fk_pull_requests_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_pull_requests")),
        schema="github",
    )
    op.create_index(
        op.f("ix_pull_requests_project_id_repository_id"),
        "pull_requests",
        ["project_id", "repository_id"],
        unique=False,
        schema="github",
    )
    op.create_table(
        "releases",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("repository_id", sa.BigInteger(), nullable=False),
        sa.Column("tag_name", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("draft", sa.Boolean(), nullable=False),
        sa.Column("prerelease", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "repository_id"],
            ["github.repositories.project_id", "github.repositories.id"],
            name=op.f("fk_releases_project_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["app.projects.id"],
            name=op.f("fk_releases_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "id", name=op.f("pk_releases")),
        schema="github",
    )
    op.create_index(
        op.f("ix_releases_project_id_repository_id"),
        "releases",
        ["project_id", "repository_id"],
        unique=False,
        schema="github",
    )
    op.create_table(
        "repository_snapshots",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("repository_id", sa.BigInteger(), nullable=False),
        sa.Column("snapshot_date", sa.Date(), nullable=False),
        sa.Column("stargazers_count", sa.Integer(), nullable=False),
        sa.Column("forks_count", sa.Integer(), nullable=False),
        sa.Column("watchers_count", sa.Integer(), nullable=True),
        sa.Column("open_issues_count", sa.Integer(), nullable=False),
        sa.Column("size_kb", sa.Integer(), nullable=False),
        sa.Column("default_branch", sa.Text(), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "repository_id"],
            ["github.repositories.project_id", "github.repositories.id"],
            name=op.f("fk_repository_snapshots_project_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["app.projects.id"],
            name=op.f("fk_repository_snapshots_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "project_id", "repository_id", "snapshot_date", name=op.f("pk_repository_snapshots")
        ),
        schema="github",
    )
    op.create_table(
        "stargazers",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("repository_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("login", sa.Text(), nullable=False),
        sa.Column("starred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "repository_id"],
            ["github.repositories.project_id", "github.repositories.id"],
            name=op.f("fk_stargazers_project_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["app.projects.id"],
            name=op.f("fk_stargazers_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "project_id", "repository_id", "user_id", name=op.f("pk_stargazers")
        ),
        schema="github",
    )
    op.create_index(
        op.f("ix_stargazers_project_id_starred_at"),
        "stargazers",
        ["project_id", "starred_at"],
        unique=False,
        schema="github",
    )
    op.create_table(
        "traffic",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("repository_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("uniques", sa.Integer(), nullable=False),
        sa.Column(
            "synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint("kind IN ('views', 'clones')", name=op.f("ck_traffic_kind")),
        sa.ForeignKeyConstraint(
            ["project_id", "repository_id"],
            ["github.repositories.project_id", "github.repositories.id"],
            name=op.f("fk_traffic_project_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["app.projects.id"],
            name=op.f("fk_traffic_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "project_id", "repository_id", "kind", "day", name=op.f("pk_traffic")
        ),
        schema="github",
    )
    _grant_access()


def downgrade() -> None:
    # Dropping a table drops its policies and grants with it.
    op.drop_table("traffic", schema="github")
    op.drop_index(
        op.f("ix_stargazers_project_id_starred_at"), table_name="stargazers", schema="github"
    )
    op.drop_table("stargazers", schema="github")
    op.drop_table("repository_snapshots", schema="github")
    op.drop_index(
        op.f("ix_releases_project_id_repository_id"), table_name="releases", schema="github"
    )
    op.drop_table("releases", schema="github")
    op.drop_index(
        op.f("ix_pull_requests_project_id_repository_id"),
        table_name="pull_requests",
        schema="github",
    )
    op.drop_table("pull_requests", schema="github")
    op.drop_index(op.f("ix_issues_project_id_repository_id"), table_name="issues", schema="github")
    op.drop_table("issues", schema="github")
    op.drop_table("commits", schema="github")
    op.drop_table("sync_cursors", schema="github")
    op.drop_index(op.f("ix_repositories_source_id"), table_name="repositories", schema="github")
    op.drop_index(
        op.f("ix_repositories_project_id_full_name"), table_name="repositories", schema="github"
    )
    op.drop_table("repositories", schema="github")
    op.drop_table("http_cache", schema="github")
    op.drop_index(op.f("ix_accounts_source_id"), table_name="accounts", schema="github")
    op.drop_table("accounts", schema="github")
