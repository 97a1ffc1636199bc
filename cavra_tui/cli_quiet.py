"""`cavra quiet add|list|remove`: quiet windows (issue 13). Listing is a Core read, like
`cavra schedule list`; adding and removing go through the write service (release_manager,
audited)."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from cavra_tui.bootstrap import Runtime
from cavra_tui.cli_output import emit_json, emit_lines, wants_json
from store.models import QuietWindow
from store.rules.quiet import window_state
from store.services.quiet_reads import list_quiet_windows


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")


def _line(window: QuietWindow, now: datetime, verb: str = "") -> str:
    state = window_state(window, now)
    head = f"{verb} " if verb else ""
    return (f"{head}{window.window_id}  {window.name}  {state}  {_when(window.starts_at)} – "
            f"{_when(window.ends_at)}  providers {', '.join(window.providers)}  silences "
            f"{' + '.join(window.severities)}")


def _json(window: QuietWindow, now: datetime) -> dict[str, Any]:
    return {**window.model_dump(mode="json"), "state": window_state(window, now)}


def quiet_add(runtime: Runtime, args: argparse.Namespace) -> int:
    from store.services.quiet_windows import add_quiet_window

    window = add_quiet_window(runtime.ctx, name=args.name, providers=args.provider,
                              starts=args.starts, ends=args.ends,
                              severities=args.severity or None)
    now = runtime.ctx.clock()
    if wants_json(args):
        emit_json(_json(window, now))
        return 0
    lines = [_line(window, now, "added")]
    if "critical" not in window.severities:
        lines.append("  critical escalations are still sent (add --severity critical to "
                     "silence them too)")
    emit_lines(lines)
    return 0


def quiet_list(runtime: Runtime, args: argparse.Namespace) -> int:
    now = runtime.ctx.clock()
    windows = list_quiet_windows(runtime.ctx, now, include_past=args.include_past)
    if wants_json(args):
        emit_json([_json(w, now) for w in windows])
        return 0
    if not windows:
        emit_lines(["no quiet windows" + ("" if args.include_past else
                                          " active or upcoming (`cavra quiet list --all` "
                                          "shows ended and removed ones)")])
        return 0
    lines = []
    for window in windows:
        lines.append(_line(window, now))
        if window.removed and window.removed_at is not None:
            lines.append(f"  removed {_when(window.removed_at)} by {window.removed_by}")
    emit_lines(lines)
    return 0


def quiet_remove(runtime: Runtime, args: argparse.Namespace) -> int:
    from store.services.quiet_windows import remove_quiet_window

    window = remove_quiet_window(runtime.ctx, args.window)
    if wants_json(args):
        emit_json(_json(window, runtime.ctx.clock()))
        return 0
    emit_lines([f"removed {window.window_id}  {window.name}: sends to "
                f"{', '.join(window.providers)} resume now"])
    return 0
