"""The `cavra` argument parser (SPEC §10). Commands are named, not imported: each names the
``cavra_tui`` module and function that runs it, imported only when that command runs, so
`cavra metrics` never loads what `cavra scheduler run` needs (APScheduler, asyncio)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from cavra_tui.cli_types import positive_int, seconds
from store.schedule_limits import DEFAULT_MISFIRE_GRACE_S


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


class _Commands:
    """Adds commands: ``handler`` is "module:function" in ``cavra_tui``."""

    def __init__(self, sub: Any, common: argparse.ArgumentParser) -> None:
        self.sub = sub
        self.common = common

    def group(self, name: str, help_text: str) -> Any:
        return self.sub.add_parser(name, help=help_text).add_subparsers(
            dest="action", required=True, parser_class=OneLineParser)

    def add(self, name: str, handler: str, help_text: str, under: Any = None) -> OneLineParser:
        child: OneLineParser = (under or self.sub).add_parser(name, parents=[self.common],
                                                              help=help_text)
        child.set_defaults(handler=handler)
        return child


def build_parser() -> OneLineParser:
    common = _globals()
    parser = OneLineParser(prog="cavra", parents=[common],
                           description="CAVRA recovery console. With no command: the console.")
    _console_options(parser)
    commands = _Commands(parser.add_subparsers(dest="command", parser_class=OneLineParser),
                         common)
    _workflow(commands)
    _reads(commands)
    _schedules(commands)
    _quiet(commands)
    _providers_and_roles(commands)
    return parser


def _console_options(parser: argparse.ArgumentParser) -> None:
    """Options of the console itself (`cavra`, `cavra demo`)."""
    parser.add_argument("--ascii", action="store_true", default=argparse.SUPPRESS,
                        help="console: draw ASCII only (automatic on TERM=linux)")


def _workflow(c: _Commands) -> None:
    demo = c.add("demo", "cli_demo:demo", "seed a demo database (if empty) and open the console")
    demo.add_argument("--no-console", action="store_true", help=argparse.SUPPRESS)
    _console_options(demo)
    c.add("seed-demo", "cli_demo:seed_demo", "seed demo data only")

    recovery = c.group("recovery", "recovery items")
    c.add("import", "cli_recovery:recovery_import",
          "import recovery items (JSON list or JSON lines)", recovery).add_argument("file")

    escalation = c.group("escalation", "escalation plans")
    c.add("plan", "cli_escalation:escalation_plan", "build and store a plan",
          escalation).add_argument("--slo-minutes", type=positive_int)
    deliver = c.add("deliver", "cli_escalation:escalation_deliver", "deliver a plan", escalation)
    deliver.add_argument("plan_id", help="a plan ID or `latest`")
    deliver.add_argument("--provider", action="append", default=[])
    ack = c.add("ack", "cli_escalation:escalation_ack", "record an acknowledgement", escalation)
    ack.add_argument("plan_id")
    ack.add_argument("--provider", required=True)
    ack.add_argument("--state", required=True)
    ack.add_argument("--ref")
    ack.add_argument("--notes")
    c.add("follow-up", "cli_escalation:escalation_follow_up",
          "escalate open plans not acknowledged in time to their next level (dry-run unless "
          "--live)", escalation).add_argument("--live", action="store_true")

    retry = c.group("retry", "retry plans and the retry worker")
    c.add("plan", "cli_retry:retry_plan", "build and store a retry plan", retry)
    run = c.add("run", "cli_retry:retry_run", "run the retry worker (dry-run unless --live)",
                retry)
    run.add_argument("--live", action="store_true")
    run.add_argument("--max", type=positive_int, dest="max_deliveries")

    report = c.group("report", "executive reports")
    c.add("schedule-run", "cli_report:report_schedule_run", "build a schedule run + report",
          report).add_argument("--schedule")
    report_deliver = c.add("deliver", "cli_report:report_deliver", "deliver a schedule run",
                           report)
    report_deliver.add_argument("run_id")
    report_deliver.add_argument("--provider", action="append", default=[])
    c.add("retry-plan", "cli_report:report_retry_plan",
          "retry / wait / suppress per (schedule run, executive provider)", report)
    report_retry = c.add("retry", "cli_report:report_retry",
                         "re-send failed executive deliveries (dry-run unless --live)", report)
    report_retry.add_argument("--live", action="store_true")
    report_retry.add_argument("--max", dest="max_deliveries", type=positive_int)


def _reads(c: _Commands) -> None:
    c.add("metrics", "cli_metrics:metrics", "the dashboard numbers")
    c.add("health", "cli_inspect:health", "retry health alerts + executive delivery retry plan"
          ).add_argument("--record", action="store_true",
                         help="store this snapshot of the alerts as evidence (audited)")
    evidence = c.group("evidence", "evidence chains")
    c.add("show", "cli_inspect:evidence_show", "the bound chain behind an execution or delivery",
          evidence).add_argument("record_id")
    audit = c.group("audit", "the audit chain")
    verify = c.add("verify", "cli_audit:audit_verify", "check the hash chain, the evidence "
                   "behind it and (with --witness) the chain against signed checkpoints", audit)
    verify.add_argument("--witness", action="append", default=[], metavar="PATH",
                        help="a witness outbox file or an exported checkpoint list (repeatable)")
    verify.add_argument("--allowed-signers", metavar="FILE",
                        help="OpenSSH allowed_signers file: check SSH signatures")
    c.add("checkpoint", "cli_audit:audit_checkpoint", "write a signed checkpoint of the chain "
          "head to every audit witness", audit)
    export = c.add("export", "cli_audit:audit_export", "export the chain as JSON lines", audit)
    export.add_argument("--output", "-o", help="file to write (default: stdout)")


def _schedules(c: _Commands) -> None:
    schedule = c.group("schedule", "report and retry-worker schedules")
    add = c.add("add", "cli_schedule:schedule_add", "add a schedule", schedule)
    add.add_argument("name")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", metavar="EXPR", help="5-field cron, e.g. '0 8 * * 1-5'")
    when.add_argument("--every", metavar="DURATION", help="interval: 30s, 5m, 1h, 1d")
    add.add_argument("--timezone", default="UTC", metavar="TZ", help="IANA zone (default UTC)")
    add.add_argument("--kind", choices=("report", "retry-worker", "report-retry", "follow-up"),
                     default="report")
    add.add_argument("--provider", action="append", default=[],
                     help="executive provider (repeatable; default: every executive one)")
    add.add_argument("--live", action="store_true",
                     help="retry-worker, report-retry and follow-up schedules: send for real "
                          "(release_manager)")
    add.add_argument("--misfire-grace", type=positive_int, default=DEFAULT_MISFIRE_GRACE_S,
                     metavar="S", help=f"catch-up window (default {DEFAULT_MISFIRE_GRACE_S}s)")
    c.add("list", "cli_schedule_list:schedule_list", "list schedules with next/last run",
          schedule)
    for name, text in (("enable", "enable a schedule"), ("disable", "disable a schedule"),
                       ("remove", "remove a schedule")):
        c.add(name, f"cli_schedule:schedule_{name}", text, schedule).add_argument(
            "schedule", metavar="ID", help="schedule ID or name")

    scheduler = c.group("scheduler", "the embedded scheduler")
    run = c.add("run", "cli_scheduler:scheduler_run",
                "run the scheduler headless (until SIGTERM/SIGINT)", scheduler)
    run.add_argument("--lease-ttl", type=seconds, default=10.0, metavar="S",
                     help="leader lease length (default 10s)")
    run.add_argument("--poll", type=seconds, default=2.0, metavar="S",
                     help="how often to renew the lease and look for changes (default 2s)")
    run.add_argument("--holder", help="lease holder name (default host:pid:random)")


def _quiet(c: _Commands) -> None:
    quiet = c.group("quiet", "quiet windows: sends to providers recorded as skipped, not sent")
    add = c.add("add", "cli_quiet:quiet_add", "add a quiet window (release_manager)", quiet)
    add.add_argument("name")
    add.add_argument("--provider", action="append", default=[], required=True,
                     help="provider to keep quiet (repeatable)")
    add.add_argument("--from", dest="starts", required=True, metavar="WHEN",
                     help="ISO 8601 with an offset (…Z, …+01:00), now, or +DURATION")
    add.add_argument("--until", dest="ends", required=True, metavar="WHEN",
                     help="ISO 8601 with an offset, or +DURATION from now (+2h)")
    add.add_argument("--severity", action="append", default=[],
                     choices=("warning", "critical"),
                     help="alert level it silences: warning (default) or critical (repeatable); "
                          "critical sends go out unless it says critical")
    c.add("list", "cli_quiet:quiet_list", "active and upcoming quiet windows", quiet
          ).add_argument("--all", action="store_true", dest="include_past",
                         help="also the ended and removed ones")
    c.add("remove", "cli_quiet:quiet_remove", "remove a quiet window: sends resume at once",
          quiet).add_argument("window", metavar="NAME", help="quiet window name or ID (qwn-…)")


def _providers_and_roles(c: _Commands) -> None:
    provider = c.group("provider", "notification providers")
    c.add("test", "cli_provider:provider_test",
          "send a clearly marked drill message (a drill delivery)",
          provider).add_argument("name", help="provider name from the config")
    c.add("list", "cli_provider:provider_list",
          "configured providers, targets (redacted), circuit state", provider)

    db = c.group("db", "database roles (PostgreSQL)")
    grant = c.add("grant", "cli_db:db_grant", "let login roles append evidence, never delete "
                  "it (run as the owner)", db)
    grant.add_argument("roles", nargs="+", metavar="ROLE", help="existing PostgreSQL role")
    grant.add_argument("--print", action="store_true", dest="print_only",
                       help="write the SQL and change nothing")
