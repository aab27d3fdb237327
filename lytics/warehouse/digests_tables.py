"""Weekly digest bookkeeping beyond the tables in lytics.warehouse.tables.

Declared on the shared `metadata`; `lytics.warehouse.catalog` imports every table module.
"""

from __future__ import annotations

from lytics.warehouse.tables import metadata

__all__ = ["metadata"]
