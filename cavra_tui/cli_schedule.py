"""`cavra schedule …` and `cavra scheduler run` (SPEC §8, §10)."""

from __future__ import annotations

from typing import Any


def register(sub: Any, command: Any) -> None:
    """Add the schedule commands to the parser (see cli.build_parser for `command`)."""
