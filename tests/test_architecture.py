"""The dependency direction of docs/architecture.md: lytics <- lytics_ingest_api, lytics_assets."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "lytics": {"lytics_ingest_api", "lytics_assets", "litestar", "dagster", "dagster_dbt"},
    "lytics_ingest_api": {"lytics_assets", "dagster", "dagster_dbt"},
    "lytics_assets": {"lytics_ingest_api", "litestar"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_never_imports_what_it_must_not(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


# --- settings are read in one place ------------------------------------------------------
# Every setting goes through lytics.settings.Settings (environment and .env, validated,
# one default each). Nothing in these packages looks a variable up in os.environ by name.
# Only the modules below may touch os.environ at all, and only to hand the whole
# environment to processes they start:
ENVIRONMENT_PLUMBING = {
    "lytics/devserver/platform.py": "`lytics dev` copies the environment into its children",
    "lytics_assets/metrics/definitions.py": "exports dbt's connection for the dbt subprocesses",
}
# Passing the environment on whole: dict(os.environ), {**os.environ}, env=os.environ,
# os.environ.copy(), os.environ.update(...).
_WHOLE = {"copy", "update"}


def _os_names(tree: ast.Module) -> tuple[set[str], set[str], set[str]]:
    """The names bound to `os`, to `os.environ` and to `os.getenv` (aliases included)."""
    os_names = {"os"}
    environ_names: set[str] = set()
    getenv_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names.update(a.asname or a.name for a in node.names if a.name == "os")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            environ_names.update(
                a.asname or a.name for a in node.names if a.name in {"environ", "environb"}
            )
            getenv_names.update(
                a.asname or a.name for a in node.names if a.name in {"getenv", "getenvb"}
            )
    return os_names, environ_names, getenv_names


def _environment_reads(path: Path) -> list[str]:
    """Each use of the process environment in `path`, as "line: what"."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    os_names, environ_names, getenv_names = _os_names(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner, name = node.value.id, node.attr
        elif isinstance(node, ast.Name) and node.id in environ_names | getenv_names:
            owner, name = "os", "getenv" if node.id in getenv_names else "environ"
        else:
            continue
        if owner not in os_names:
            continue
        if name in {"getenv", "getenvb"}:
            found.append((node.lineno, "os.getenv (a lookup by name)"))
        elif name in {"environ", "environb"}:
            parent = parents.get(node)
            whole = (
                (isinstance(parent, ast.Call) and node in parent.args)
                or isinstance(parent, ast.keyword)
                or (isinstance(parent, ast.Dict) and node in parent.values)
                or (isinstance(parent, ast.Attribute) and parent.attr in _WHOLE)
            )
            what = "passed on whole" if whole else "(a lookup by name)"
            found.append((node.lineno, f"os.environ {what}"))
    return [f"{line}: {what}" for line, what in sorted(found)]


def _sources() -> list[Path]:
    return sorted(p for package in FORBIDDEN for p in (ROOT / package).rglob("*.py"))


def test_settings_are_read_only_through_settings() -> None:
    assert [p for p in ENVIRONMENT_PLUMBING if not (ROOT / p).is_file()] == []
    offenders: dict[str, list[str]] = {}
    for path in _sources():
        relative = path.relative_to(ROOT).as_posix()
        reads = _environment_reads(path)
        if relative in ENVIRONMENT_PLUMBING:
            reads = [r for r in reads if not r.endswith("passed on whole")]
        if reads:
            offenders[relative] = reads
    assert offenders == {}, (
        "read settings through lytics.settings.get_settings() (add a field to Settings), "
        "not from the environment"
    )


def test_the_environment_scan_sees_every_form(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\n"
        "import os as system\n"
        "from os import environ, getenv as ge\n"
        "a = os.environ.get('A')\n"
        "b = os.getenv('B')\n"
        "c = system.environ['C']\n"
        "d = environ.get('D')\n"
        "e = ge('E')\n"
        "f = 'F' in os.environ\n"
        "child = {**os.environ, 'X': '1'}\n"
        "os.environ.update(child)\n"
        "g = dict(os.environ)\n"
        "run(env=os.environ)\n"
        "h = os.cpu_count()\n"
    )
    assert _environment_reads(sample) == [
        "4: os.environ (a lookup by name)",
        "5: os.getenv (a lookup by name)",
        "6: os.environ (a lookup by name)",
        "7: os.environ (a lookup by name)",
        "8: os.getenv (a lookup by name)",
        "9: os.environ (a lookup by name)",
        "10: os.environ passed on whole",
        "11: os.environ passed on whole",
        "12: os.environ passed on whole",
        "13: os.environ passed on whole",
    ]


# What the metrics pipeline once wrapped around dbt and dagster-dbt: a fork server
# passing file descriptors, a launcher answering `--version` itself, an override of
# a private dagster-dbt method, the run's window smuggled in as Postgres session
# settings, a home-made manifest fingerprint, an override of dbt's
# get_where_subquery and a home-made materialization. None of it may come back.
RETIRED_MACHINERY = (
    "dbt_server",
    "lytics-dbt",
    "dbt_launcher",
    "LYTICS_DBT_SERVER",
    "SCM_RIGHTS",
    "_initialize_dbt_core_adapter",
    "LyticsDbtCliResource",
    "session_settings",
    "lytics.window_start",
    "lytics.max_event_id",
    ".parsed_for",
    "get_where_subquery",
    "window_replace",
)


def test_the_machinery_around_dbt_is_gone() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    this_file = Path(__file__).resolve().relative_to(ROOT).as_posix()
    found = {
        (name, marker)
        for name in tracked
        if name != this_file and (ROOT / name).is_file()
        for marker in RETIRED_MACHINERY
        if marker in (ROOT / name).read_text(errors="replace")
    }
    assert found == set()
