"""GitHub read API (public repositories only)."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
