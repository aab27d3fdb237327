"""Export configuration, status and launches."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
