"""`cavra demo` and `cavra seed-demo`: the self-contained demo story (SPEC §12)."""

from __future__ import annotations

import argparse

from cavra_tui.bootstrap import Runtime
from cavra_tui.cli_output import emit_json, emit_lines, wants_json
from workflows.demo import seed_demo_data


def seed_demo(runtime: Runtime, args: argparse.Namespace) -> int:
    summary = seed_demo_data(runtime.ctx, runtime.registry)
    if wants_json(args):
        emit_json(summary)
    else:
        emit_lines([f"demo data: {', '.join(f'{k} {v}' for k, v in summary.items())}"])
    return 0


def demo(runtime: Runtime, args: argparse.Namespace) -> int:
    """`cavra demo --no-console`: seed only (with the console, cli.main opens it and the
    console seeds while it starts)."""
    seed_demo_data(runtime.ctx, runtime.registry, only_if_empty=True)
    return 0
