"""`cavra recovery import`: recovery items from a JSON list or JSON lines (SPEC §4)."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile

from cavra_tui.bootstrap import Runtime
from cavra_tui.cli_output import emit_json, emit_lines, wants_json
from store.services.recovery import import_recovery_file


def recovery_import(runtime: Runtime, args: argparse.Namespace) -> int:
    if args.file == "-":  # read twice (validate, then write): spool standard input first
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".json") as spool:
            shutil.copyfileobj(sys.stdin, spool)
            spool.flush()
            summary = import_recovery_file(runtime.ctx, spool.name)
    else:
        summary = import_recovery_file(runtime.ctx, args.file)
    if wants_json(args):
        emit_json(summary)
    else:
        emit_lines([f"imported {summary['imported']} recovery items "
                    f"({summary['inserted']} new, {summary['updated']} updated)"])
    return 0
