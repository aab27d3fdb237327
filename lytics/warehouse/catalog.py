"""Every declared table, across the per-domain modules: what migrations are compared against."""

from __future__ import annotations

from lytics.warehouse import (
    digests_tables,
    exports_tables,
    github_tables,
    privacy_tables,
    retention_tables,
)
from lytics.warehouse.tables import SCHEMAS, metadata

# Imported for their side effect: each module declares its tables on `metadata`.
DOMAIN_MODULES = (github_tables, digests_tables, exports_tables, retention_tables, privacy_tables)

__all__ = ["DOMAIN_MODULES", "SCHEMAS", "metadata"]
