"""Secrets come from the environment, by the name the config gives; never from the file."""

from __future__ import annotations

import os

from workflows.connectors.base import MissingSecret


def from_env(variable: str) -> str:
    value = os.environ.get(variable, "").strip()
    if not value:
        raise MissingSecret(f"environment variable {variable} is not set")
    return value
