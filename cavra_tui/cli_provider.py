"""`cavra provider test NAME` (SPEC §7)."""

from __future__ import annotations

from typing import Any


def register(sub: Any, command: Any) -> None:
    """Add the provider commands to the parser (see cli.build_parser for `command`)."""
