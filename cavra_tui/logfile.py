"""Logs go to a file in the data dir: the screen belongs to the console (SPEC §10)."""

from __future__ import annotations

import logging
from pathlib import Path


def configure_logging(folder: Path, *, to_stderr: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cavra.log"
    handlers: list[logging.Handler] = [logging.FileHandler(path, encoding="utf-8")]
    if to_stderr:
        handlers.append(logging.StreamHandler())
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return path
