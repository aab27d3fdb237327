"""`lytics github`: connect GitHub accounts and repositories to a project."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from lytics.crypto import Cipher
    from lytics.github.sources import Source
    from lytics.settings import Settings


@click.group()
def github() -> None:
    """Connect GitHub accounts and repositories to a project.

    A token (personal access token, or a GitHub App installation token) is stored
    encrypted; the repositories to follow are `owner/name` or `owner/*`. Private
    repositories are synced but never shown by the read API or digests unless
    the project opts in with --expose-private.
    """


def _cipher(settings: Settings) -> Cipher:
    from lytics.github.sources import cipher

    # The key `lytics dev` hands to Dagster too, so the pipeline can read the token.
    return cipher(settings.require_secret_key())


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _as_dict(source: Source, api_url: str) -> dict[str, Any]:
    return {
        "project": source.project_slug,
        "account": source.account_ref,
        "follow": list(source.follow),
        "api_url": source.api_url or api_url,
        "expose_private": source.expose_private,
        "has_token": source.token_encrypted is not None,
        "updated_at": source.updated_at.isoformat(),
    }


@github.command("connect")
@click.argument("project")
@click.argument("account")
@click.option(
    "--token",
    help="The GitHub token (`-` reads it from stdin). Default: GITHUB_TOKEN, "
    "or the stored one when updating.",
)
@click.option(
    "--follow",
    "follow",
    multiple=True,
    help="owner/name or owner/* (repeatable; added to what is already followed).",
)
@click.option("--api-url", help="GitHub Enterprise API URL (default: GITHUB_API_URL).")
@click.option(
    "--expose-private/--no-expose-private",
    default=None,
    help="Let the read API and digests show private repositories (default: no).",
)
@click.option("--verify", is_flag=True, help="Check the token against GET /user first.")
def connect(  # noqa: PLR0917 - click passes options positionally
    project: str,
    account: str,
    token: str | None,
    follow: tuple[str, ...],
    api_url: str | None,
    expose_private: bool | None,
    verify: bool,
) -> None:
    """Connect (or update) the GitHub ACCOUNT of PROJECT."""
    from lytics.cli.database import transaction
    from lytics.github import sources
    from lytics.projects import get_project
    from lytics.settings import get_settings

    settings = get_settings()
    if token == "-":  # noqa: S105 - the stdin marker, not a password
        # Keeps the token out of shell history and the process list.
        token = sys.stdin.readline().strip()
    if not token and settings.github_token is not None:
        token = settings.github_token.get_secret_value()
    token = token or None
    if verify:
        if not token:
            _fail("--verify needs a token (--token or GITHUB_TOKEN)")
        _verify(api_url or settings.github_api_url, token)
    with transaction(settings) as conn:
        source = sources.connect(
            conn,
            _cipher(settings),
            get_project(conn, project).id,
            account,
            token=token,
            follow=list(follow),
            api_url=api_url,
            expose_private=expose_private,
        )
    shown = ", ".join(source.follow) or "nothing yet (add --follow owner/name or owner/*)"
    click.echo(f"GitHub account {account} connected to {project}; following {shown}")
    if source.expose_private:
        click.echo("Private repositories of this account are exposed by the read API.")


def _verify(api_url: str, token: str) -> None:
    from lytics.github.client import ClientOptions, GitHubClient, GitHubError

    client = GitHubClient(api_url, token, options=ClientOptions(request_interval=0, retries=1))
    try:
        login = client.get("/user").data["login"]
    except GitHubError as exc:
        _fail(str(exc))
    finally:
        client.close()
    click.echo(f"token verified: authenticated as {login}")


@github.command("unfollow")
@click.argument("project")
@click.argument("account")
@click.argument("repos", nargs=-1, required=True)
def unfollow(project: str, account: str, repos: tuple[str, ...]) -> None:
    """Stop following REPOS (as given to --follow) for ACCOUNT of PROJECT."""
    from lytics.cli.database import transaction
    from lytics.github import sources
    from lytics.projects import get_project
    from lytics.settings import get_settings

    with transaction(get_settings()) as conn:
        try:
            source = sources.unfollow(conn, get_project(conn, project).id, account, list(repos))
        except sources.SourceNotFoundError as exc:
            _fail(str(exc))
    click.echo(f"{account} of {project} now follows: {', '.join(source.follow) or 'nothing'}")


@github.command("list")
@click.option("--project", help="Only this project's accounts.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(project: str | None, as_json: bool) -> None:
    """List connected GitHub accounts (never their tokens)."""
    from lytics.cli.database import transaction
    from lytics.github import sources
    from lytics.projects import get_project
    from lytics.settings import get_settings

    settings = get_settings()
    with transaction(settings) as conn:
        project_id = get_project(conn, project).id if project else None
        rows = sources.list_sources(conn, project_id)
    if as_json:
        click.echo(json.dumps([_as_dict(s, settings.github_api_url) for s in rows]))
        return
    for s in rows:
        private = " (private exposed)" if s.expose_private else ""
        click.echo(
            f"{s.project_slug:<20} {s.account_ref:<20} {', '.join(s.follow) or '-'}{private}"
            f"  {s.api_url or settings.github_api_url}"
        )


@github.command("remove")
@click.argument("project")
@click.argument("account")
def remove(project: str, account: str) -> None:
    """Disconnect ACCOUNT from PROJECT and delete the GitHub data it brought in."""
    from lytics.cli.database import transaction
    from lytics.github import sources
    from lytics.projects import get_project
    from lytics.settings import get_settings

    with transaction(get_settings()) as conn:
        try:
            sources.remove(conn, get_project(conn, project).id, account)
        except sources.SourceNotFoundError as exc:
            _fail(str(exc))
    click.echo(f"GitHub account {account} removed from {project}")


@github.command("sync")
@click.option("--project", help="Only this project's accounts.")
@click.option("--repo", "repos", multiple=True, help="Only this repository (repeatable).")
def sync(project: str | None, repos: tuple[str, ...]) -> None:
    """Sync now, without Dagster (prints each account's report as JSON)."""
    from datetime import timedelta

    from lytics.cli.database import database_url
    from lytics.crypto import InvalidToken
    from lytics.github import sources
    from lytics.github.client import ClientOptions, GitHubClient, GitHubError
    from lytics.github.store import DatabaseEtags
    from lytics.github.sync import Sync
    from lytics.settings import get_settings
    from lytics.warehouse.engine import create_sync_engine

    settings = get_settings()
    key = _cipher(settings)
    options = ClientOptions(
        per_page=settings.github_per_page,
        request_interval=settings.github_request_interval,
        max_wait_seconds=settings.github_max_wait_seconds,
        retries=settings.github_retries,
    )
    failed = False
    with database_url(settings) as url:
        engine = create_sync_engine(url)
        try:
            with engine.connect() as conn:
                chosen = [
                    s
                    for s in sources.list_sources(conn)
                    if project is None or s.project_slug == project
                ]
            for source in chosen:
                try:
                    token = source.token(key)
                except InvalidToken:
                    _fail("the stored token cannot be decrypted: is LYTICS_SECRET_KEY the same?")
                client = GitHubClient(
                    source.api_url or settings.github_api_url,
                    token,
                    etags=DatabaseEtags(engine.begin, source.id),
                    options=options,
                )
                try:
                    report = Sync(
                        engine.begin,
                        source,
                        client,
                        only_repositories=repos or None,
                        reserve=settings.github_reserve,
                        lookback=timedelta(minutes=settings.github_lookback_minutes),
                    ).run()
                except GitHubError as exc:
                    click.echo(
                        f"error: {source.project_slug}/{source.account_ref}: {exc}", err=True
                    )
                    failed = True
                    continue
                finally:
                    client.close()
                summary = {
                    "project": source.project_slug,
                    "account": source.account_ref,
                    "complete": report.complete,
                    "stopped": report.stopped,
                    "detail": report.detail,
                    **report.stats.as_metadata(),
                    "rows_changed": {k: v.rows_changed for k, v in report.streams.items()},
                    "not_found": report.not_found,
                    "forbidden": report.forbidden,
                }
                click.echo(json.dumps(summary))
        finally:
            engine.dispose()
    if failed:
        sys.exit(1)
