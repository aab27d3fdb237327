"""`lytics-dbt`: the dbt command Dagster runs, answering `--version` without loading dbt.

dagster-dbt asks the executable for its version (`dbt --version`) once per run
before it starts the real invocation. dbt imports its whole CLI, adapters and
parsers to print that line, about two seconds of every run here. This launcher
reads the installed dbt-core's version from the package metadata instead and
hands every other command to dbt's own entry point unchanged.
"""

from __future__ import annotations

import sys
from importlib.metadata import version


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        # The shape of dbt's own first lines; dagster-dbt reads the first x.y.z in them.
        print(f"Core:\n  - installed: {version('dbt-core')}")
        return
    from dbt.cli.main import cli

    cli()


if __name__ == "__main__":
    main()
