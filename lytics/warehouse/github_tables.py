"""GitHub data (schema `github`), filled by lytics_assets.github.

Declared on the shared `metadata`; `lytics.warehouse.catalog` imports every table module.
"""

from __future__ import annotations

from lytics.warehouse.tables import metadata

__all__ = ["metadata"]
