"""Deleting a person's data: the definitions this domain adds to the code location."""

import dagster as dg

from lytics_assets.privacy.jobs import erase_person
from lytics_assets.privacy.sensors import privacy_deletions


def build() -> dg.Definitions:
    return dg.Definitions(jobs=[erase_person], sensors=[privacy_deletions])
