"""Logs go to a file in the data dir: the screen belongs to the console (SPEC §10)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def configure_logging(folder: Path, *, to_stderr: bool = False) -> Path | None:
    """The log file, or None when it cannot be written (a read-only home, a full disk):
    then one warning line on stderr, and the command goes on without a log file."""
    path: Path | None = folder / "cavra.log"
    handlers: list[logging.Handler] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(folder / "cavra.log", encoding="utf-8"))
    except OSError as exc:
        sys.stderr.write(f"cavra: warning: cannot write the log {folder / 'cavra.log'} "
                         f"({exc.strerror or exc.__class__.__name__}); logging to a file is "
                         "off (set CAVRA_DATA_DIR to a writable folder)\n")
        handlers.append(logging.NullHandler())
        path = None
    if to_stderr:
        handlers.append(logging.StreamHandler())
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return path
