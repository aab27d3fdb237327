"""`lytics-dbt`: the dbt command Dagster runs, started cheaply.

- `--version` is answered from the package metadata. dagster-dbt asks for it once
  per run before the real invocation, and dbt imports its whole CLI, adapters and
  parsers (~2 s) to print that line.
- `--serve SOCKET` runs the warm dbt server (see dbt_server).
- Any other command goes to that server when `LYTICS_DBT_SERVER` names one that
  answers, and otherwise to dbt's own entry point in this process, unchanged.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import version
from pathlib import Path


def main() -> None:
    argv = sys.argv[1:]
    if argv == ["--version"]:
        # The shape of dbt's own first lines; dagster-dbt reads the first x.y.z in them.
        print(f"Core:\n  - installed: {version('dbt-core')}")
        return
    from lytics_assets.metrics import dbt_server

    if len(argv) == 2 and argv[0] == "--serve":
        dbt_server.serve(Path(argv[1]))
        return
    if server := os.environ.get(dbt_server.SERVER_ENV):
        code = dbt_server.run_remote(server, argv)
        if code is not None:
            sys.exit(code)
    from dbt.cli.main import cli

    cli()


if __name__ == "__main__":
    main()
