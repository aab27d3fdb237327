"""GitHub extraction (group `github`): the definitions this domain adds to the code location."""

import dagster as dg


def build() -> dg.Definitions:
    return dg.Definitions()
