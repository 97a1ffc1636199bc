"""The `cavra` command line (SPEC §10): one-line errors, exit 2 for bad input or refusal."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from cavra_tui.bootstrap import Runtime, build_runtime, configure_logging
from cavra_tui.cli_types import positive_int
from store.config import data_dir
from store.errors import UserError

log = logging.getLogger("cavra")
Handler = Callable[[Runtime, argparse.Namespace], int]


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus a message; the contract is a single line, exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"cavra: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(2)


def _globals() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS, metavar="URL",
                        help="SQLAlchemy URL (default: SQLite in the user data dir)")
    common.add_argument("--config", default=argparse.SUPPRESS, metavar="PATH",
                        help="config file (TOML)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable output")
    common.add_argument("--read-only", action="store_true", default=argparse.SUPPRESS,
                        help="refuse every change")
    return common


def build_parser() -> OneLineParser:
    common = _globals()
    parser = OneLineParser(prog="cavra", parents=[common],
                           description="CAVRA recovery console. With no command: the console.")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser)

    def command(name: str, handler: Handler, help_text: str,
                under: Any = sub) -> OneLineParser:
        child: OneLineParser = under.add_parser(name, parents=[common], help=help_text)
        child.set_defaults(handler=handler)
        return child

    from cavra_tui import cli_commands as c

    demo = command("demo", c.demo, "seed a demo database (if empty) and open the console")
    demo.add_argument("--no-console", action="store_true", help=argparse.SUPPRESS)
    command("seed-demo", c.seed_demo, "seed demo data only")

    recovery = sub.add_parser("recovery", help="recovery items").add_subparsers(
        dest="action", required=True, parser_class=OneLineParser)
    command("import", c.recovery_import, "import recovery items (JSON list or JSON lines)",
            recovery).add_argument("file")

    escalation = sub.add_parser("escalation", help="escalation plans").add_subparsers(
        dest="action", required=True, parser_class=OneLineParser)
    command("plan", c.escalation_plan, "build and store a plan", escalation).add_argument(
        "--slo-minutes", type=positive_int)
    deliver = command("deliver", c.escalation_deliver, "deliver a plan", escalation)
    deliver.add_argument("plan_id", help="a plan ID or `latest`")
    deliver.add_argument("--provider", action="append", default=[])
    ack = command("ack", c.escalation_ack, "record an acknowledgement", escalation)
    ack.add_argument("plan_id")
    ack.add_argument("--provider", required=True)
    ack.add_argument("--state", required=True)
    ack.add_argument("--ref")
    ack.add_argument("--notes")

    retry = sub.add_parser("retry", help="retry plans and the retry worker").add_subparsers(
        dest="action", required=True, parser_class=OneLineParser)
    command("plan", c.retry_plan, "build and store a retry plan", retry)
    run = command("run", c.retry_run, "run the retry worker (dry-run unless --live)", retry)
    run.add_argument("--live", action="store_true")
    run.add_argument("--max", type=positive_int, dest="max_deliveries")

    report = sub.add_parser("report", help="executive reports").add_subparsers(
        dest="action", required=True, parser_class=OneLineParser)
    command("schedule-run", c.report_schedule_run, "build a schedule run + report",
            report).add_argument("--schedule")
    report_deliver = command("deliver", c.report_deliver, "deliver a schedule run", report)
    report_deliver.add_argument("run_id")
    report_deliver.add_argument("--provider", action="append", default=[])

    command("metrics", c.metrics, "the dashboard numbers")
    command("health", c.health, "retry health alerts + executive delivery retry plan")
    evidence = sub.add_parser("evidence", help="evidence chains").add_subparsers(
        dest="action", required=True, parser_class=OneLineParser)
    command("show", c.evidence_show, "the bound chain behind an execution or delivery",
            evidence).add_argument("record_id")
    audit = sub.add_parser("audit", help="the audit chain").add_subparsers(
        dest="action", required=True, parser_class=OneLineParser)
    verify = command("verify", c.audit_verify, "check the hash chain, the evidence behind it "
                     "and (with --witness) the chain against signed checkpoints", audit)
    verify.add_argument("--witness", action="append", default=[], metavar="PATH",
                        help="a witness outbox file or an exported checkpoint list (repeatable)")
    verify.add_argument("--allowed-signers", metavar="FILE",
                        help="OpenSSH allowed_signers file: check SSH signatures")
    command("checkpoint", c.audit_checkpoint, "write a signed checkpoint of the chain head to "
            "every audit witness", audit)
    export = command("export", c.audit_export, "export the chain as JSON lines", audit)
    export.add_argument("--output", "-o", help="file to write (default: stdout)")
    from cavra_tui import cli_db, cli_provider, cli_schedule

    cli_schedule.register(sub, command)
    cli_provider.register(sub, command)
    cli_db.register(sub, command)
    return parser


def _privilege_refusal(exc: Exception) -> str | None:
    """PostgreSQL said no (e.g. a login role after an upgrade, before `cavra db grant` was run
    again): the user's situation, one line, not an internal error."""
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        return None
    reason = (str(exc.orig).strip().splitlines() or [""])[0]
    if "permission denied" not in reason and "must be owner" not in reason:
        return None
    return (f"database: {reason} (ask the database owner to run `cavra db grant` "
            "for your role)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error already printed as one line
        return int(exit_.code or 0)
    handler: Handler | None = getattr(args, "handler", None)
    runtime: Runtime | None = None
    try:
        if handler is None and args.command is None:
            from cavra_tui.cli_commands import open_console

            handler = open_console
        if handler is None:
            parser.error(f"{args.command}: choose an action")
        configure_logging(data_dir())
        runtime = build_runtime(db_url=getattr(args, "db", None),
                                config_path=getattr(args, "config", None),
                                read_only=getattr(args, "read_only", False),
                                default_db_name="demo.db" if args.command == "demo" else
                                "cavra.db")
        if args.command != "audit":  # audit verify says it in full
            for warning in runtime.warnings:
                sys.stderr.write(f"cavra: warning: {warning}\n")
        return handler(runtime, args)
    except UserError as exc:
        sys.stderr.write(f"cavra: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("cavra: interrupted\n")
        return 130
    except Exception as exc:  # internal failure: one line here, the traceback in the log
        refusal = _privilege_refusal(exc)
        if refusal:
            sys.stderr.write(f"cavra: error: {refusal}\n")
            return 2
        log.exception("internal error")
        sys.stderr.write(f"cavra: internal error: {exc.__class__.__name__} "
                         f"(details in {Path('cavra.log')} under the data dir)\n")
        return 1
    finally:
        if runtime is not None:
            runtime.close()


if __name__ == "__main__":
    raise SystemExit(main())
