"""The `cavra` command line (SPEC §10): one-line errors, exit 2 for bad input or refusal.

A command imports what it uses when it runs (see ``cli_parser``): Textual only for the
console, which builds its runtime itself, after its first frame.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from cavra_tui.cli_parser import build_parser
from cavra_tui.failures import describe_failure
from cavra_tui.logfile import configure_logging
from cavra_tui.start_up import without_collection
from store.settings import data_dir

if TYPE_CHECKING:
    from cavra_tui.bootstrap import Runtime

Handler = Callable[["Runtime", argparse.Namespace], int]


def _handler(reference: str) -> Handler:
    """``"cli_metrics:metrics"`` → that function, importing only its module."""
    module, _, name = reference.partition(":")
    found: Handler = getattr(importlib.import_module(f"cavra_tui.{module}"), name)
    return found


def _opens_console(args: argparse.Namespace) -> bool:
    return args.command is None or (args.command == "demo"
                                    and not getattr(args, "no_console", False))


def _console(args: argparse.Namespace) -> int:
    from cavra_tui.console import ConsoleOptions, run_console

    return run_console(ConsoleOptions(
        db_url=getattr(args, "db", None), config_path=getattr(args, "config", None),
        read_only=getattr(args, "read_only", False), demo=args.command == "demo",
        ascii=getattr(args, "ascii", False)))


# Commands that only read: they refuse a database that does not exist instead of creating one.
READS = frozenset({"cli_metrics:metrics", "cli_inspect:health", "cli_inspect:evidence_show",
                   "cli_audit:audit_verify", "cli_audit:audit_export",
                   "cli_schedule_list:schedule_list", "cli_provider:provider_list",
                   "cli_quiet:quiet_list"})


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error already printed as one line
        return int(exit_.code or 0)
    reference: str | None = getattr(args, "handler", None)
    if reference is None and not _opens_console(args):
        parser.error(f"{args.command}: choose an action")
    runtime: Runtime | None = None
    try:
        configure_logging(data_dir())
        if reference is None or _opens_console(args):
            return _console(args)
        with without_collection():
            handler = _handler(reference)
            from cavra_tui.bootstrap import build_runtime

            runtime = build_runtime(db_url=getattr(args, "db", None),
                                    config_path=getattr(args, "config", None),
                                    read_only=getattr(args, "read_only", False),
                                    default_db_name="demo.db" if args.command == "demo"
                                    else "cavra.db", existing_only=reference in READS)
        if args.command != "audit":  # audit verify says it in full
            for warning in runtime.warnings:
                sys.stderr.write(f"cavra: warning: {warning}\n")
        code = handler(runtime, args)
        if code == 0 and runtime.created_database is not None:
            # Once, when it happens: a mistyped --db never passes for an existing loop. (A
            # failed command keeps its one line.)
            sys.stderr.write(f"cavra: created a new database at {runtime.created_database}\n")
        return code
    except KeyboardInterrupt:
        sys.stderr.write("cavra: interrupted\n")
        return 130
    except Exception as exc:  # one line here; an internal failure's traceback in the log
        failure = describe_failure(exc)
        sys.stderr.write(failure.line + "\n")
        return failure.exit_code
    finally:
        if runtime is not None:
            runtime.close()


if __name__ == "__main__":
    raise SystemExit(main())
