"""`cavra scheduler run`: the headless scheduler (SPEC §8)."""

from __future__ import annotations

import argparse

from cavra_tui.bootstrap import Runtime
from cavra_tui.logfile import configure_logging
from scheduler.runner import run_headless


def scheduler_run(runtime: Runtime, args: argparse.Namespace) -> int:
    configure_logging(runtime.data_dir, to_stderr=True)
    return run_headless(runtime, lease_ttl_s=args.lease_ttl, poll_s=args.poll,
                        holder=args.holder)
