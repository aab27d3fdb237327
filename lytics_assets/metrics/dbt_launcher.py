"""`lytics-dbt`: the dbt command Dagster runs, started cheaply.

- `--version` is answered from the package metadata. dagster-dbt asks for it once
  per run before the real invocation, and dbt imports its whole CLI, adapters and
  parsers (~2 s) to print that line.
- `--serve SOCKET [--no-warm-up]` runs the warm dbt server (see dbt_server); it
  warms up with a parse of the project unless told not to.
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

    if argv[:1] == ["--serve"] and len(argv) in (2, 3):
        from lytics_assets.metrics.project import DBT_DIR

        # A parse of our own project is the warm-up: it touches no database.
        warm_up = ["parse", "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR)]
        dbt_server.serve(Path(argv[1]), [] if argv[2:] == ["--no-warm-up"] else warm_up)
        return
    if server := os.environ.get(dbt_server.SERVER_ENV):
        code = dbt_server.run_remote(server, argv)
        if code is not None:
            sys.exit(code)
    from dbt.cli.main import cli

    cli()


if __name__ == "__main__":
    main()
