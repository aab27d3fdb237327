"""Where the platform's services answer, for every command and service that links to them.

`lytics dev` writes the addresses it serves into the data folder while it runs
(`<data dir>/addresses.json`, removed on exit), so a custom port reaches the
other commands without extra variables. Explicit settings still win, and
without a running `lytics dev` the settings' defaults apply.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lytics.devserver.data_dir_lock import is_held

if TYPE_CHECKING:
    from lytics.settings import Settings

ADDRESSES_NAME = "addresses.json"


@dataclass(frozen=True)
class Served:
    """What one `lytics dev` serves; None for a service it was told not to start."""

    api_url: str | None
    ui_url: str | None
    graphql_url: str | None


@dataclass(frozen=True)
class Addresses:
    api_url: str
    ui_url: str
    graphql_url: str
    # The API's base URL in links that leave the machine (emails): LYTICS_PUBLIC_URL.
    public_url: str


def reachable_host(host: str) -> str:
    """A server bound to every interface is reached on loopback."""
    return {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)  # noqa: S104


def write_served(data_dir: Path, served: Served) -> Path:
    path = data_dir / ADDRESSES_NAME
    draft = path.with_name(f".{ADDRESSES_NAME}.tmp")
    draft.write_text(json.dumps(asdict(served), indent=2) + "\n")
    draft.replace(path)  # readers never see half a file
    return path


def _read_served(data_dir: Path) -> Served | None:
    path = data_dir / ADDRESSES_NAME
    # A file left by a `lytics dev` that was killed says nothing: its lock died with it.
    if not path.exists() or not is_held(data_dir):
        return None
    try:
        data = json.loads(path.read_text())
        return Served(data.get("api_url"), data.get("ui_url"), data.get("graphql_url"))
    except (OSError, ValueError, AttributeError):
        return None


def served_addresses(settings: Settings) -> Addresses:
    """The one answer to "where is the API, the Dagster UI, its GraphQL endpoint?"."""
    explicit = settings.model_fields_set
    api = f"http://{reachable_host(settings.api_host)}:{settings.api_port}"
    ui = f"http://{reachable_host(settings.dagster_host)}:{settings.dagster_port}"
    graphql = settings.dagster_graphql_url or f"{ui}/graphql"
    everything_explicit = (
        {"api_host", "api_port"} & explicit
        and {"dagster_host", "dagster_port"} & explicit
        and settings.dagster_graphql_url
    )
    # Only read (and lock-probe) the file when a setting is left to it.
    served = None if everything_explicit else _read_served(settings.data_path)
    if served is not None:
        if served.api_url and not {"api_host", "api_port"} & explicit:
            api = served.api_url
        if served.ui_url and not {"dagster_host", "dagster_port"} & explicit:
            ui = served.ui_url
            if not settings.dagster_graphql_url and served.graphql_url:
                graphql = served.graphql_url
    public = settings.public_url if "public_url" in explicit else api
    return Addresses(api_url=api, ui_url=ui, graphql_url=graphql, public_url=public)
