"""`lytics projects`: the sites and apps that own data."""

from __future__ import annotations

import json

import click


@click.group()
def projects() -> None:
    """Create and list projects."""


@projects.command("create")
@click.argument("slug")
@click.option("--name", help="Display name (default: the slug).")
@click.option(
    "--with-keys/--no-keys",
    default=True,
    show_default=True,
    help="Also issue a write key and a secret key.",
)
def create(slug: str, name: str | None, with_keys: bool) -> None:
    """Create project SLUG (lowercase letters, digits, '-')."""
    from lytics import api_keys
    from lytics.cli.database import transaction
    from lytics.projects import create_project
    from lytics.settings import get_settings

    with transaction(get_settings()) as conn:
        project = create_project(conn, slug, name)
        issued = (
            [
                api_keys.create_key(conn, project.id, "write", "default"),
                api_keys.create_key(conn, project.id, "secret", "default"),
            ]
            if with_keys
            else []
        )
    click.echo(f"created project {project.slug} (id {project.id})")
    for key in issued:
        click.echo(f"  {key.kind} key: {key.plaintext}")
    if issued:
        click.echo("Keys are shown once; store them now.")


@projects.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(as_json: bool) -> None:
    """List projects."""
    from lytics.cli.database import transaction
    from lytics.projects import list_projects
    from lytics.settings import get_settings

    with transaction(get_settings()) as conn:
        rows = list_projects(conn)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "id": p.id,
                        "slug": p.slug,
                        "name": p.name,
                        "created_at": p.created_at.isoformat(),
                    }
                    for p in rows
                ]
            )
        )
        return
    if not rows:
        click.echo("no projects yet: `lytics projects create SLUG`")
    for p in rows:
        click.echo(f"{p.id:>5}  {p.slug:<24} {p.name}")
