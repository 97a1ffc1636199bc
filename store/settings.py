"""Where things live: the three ``CAVRA_*`` environment settings and the user's folders.

Only the standard library and platformdirs, so the console can find its log before it loads
pydantic or SQLAlchemy. pydantic-settings used to read these three strings; it cost every
command ~55 ms of start-up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs


def _env(name: str) -> str | None:
    """``CAVRA_…`` from the environment; like pydantic-settings, the name's case is ignored."""
    if name in os.environ:
        return os.environ[name]
    return next((value for key, value in os.environ.items() if key.upper() == name), None)


@dataclass(frozen=True)
class EnvSettings:
    """Settings from the environment (``CAVRA_DB_URL``, ``CAVRA_CONFIG``, ``CAVRA_DATA_DIR``),
    read when constructed."""

    db_url: str | None = field(default_factory=lambda: _env("CAVRA_DB_URL"))
    config: str | None = field(default_factory=lambda: _env("CAVRA_CONFIG"))
    data_dir: str | None = field(default_factory=lambda: _env("CAVRA_DATA_DIR"))


def data_dir(env: EnvSettings | None = None) -> Path:
    env = env or EnvSettings()
    return Path(env.data_dir) if env.data_dir else Path(platformdirs.user_data_dir("cavra"))


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir("cavra")) / "config.toml"
