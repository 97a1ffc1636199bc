"""`cavra schedule …` and `cavra scheduler run` (SPEC §8, §10)."""

from __future__ import annotations

import argparse
from typing import Any

from cavra_tui.bootstrap import Runtime, configure_logging
from cavra_tui.cli_output import emit_json, emit_lines
from cavra_tui.cli_types import positive_int
from scheduler.runner import run_headless
from scheduler.schedules import add_schedule
from scheduler.status import ScheduleStatus, read_scheduler_status
from store.models import Schedule
from store.services.schedules import (
    DEFAULT_MISFIRE_GRACE_S,
    describe_trigger,
    disable_schedule,
    enable_schedule,
    list_schedules,
    remove_schedule,
)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0.1 and 3600 seconds")
    return value


def register(sub: Any, command: Any) -> None:
    """Add the schedule commands to the parser (see cli.build_parser for `command`)."""
    from cavra_tui.cli import OneLineParser

    schedule = sub.add_parser("schedule", help="report and retry-worker schedules").add_subparsers(
        dest="action", required=True, parser_class=OneLineParser)
    add = command("add", schedule_add, "add a schedule", schedule)
    add.add_argument("name")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", metavar="EXPR", help="5-field cron, e.g. '0 8 * * 1-5'")
    when.add_argument("--every", metavar="DURATION", help="interval: 30s, 5m, 1h, 1d")
    add.add_argument("--timezone", default="UTC", metavar="TZ", help="IANA zone (default UTC)")
    add.add_argument("--kind", choices=("report", "retry-worker"), default="report")
    add.add_argument("--provider", action="append", default=[],
                     help="executive provider (repeatable; default: every executive one)")
    add.add_argument("--live", action="store_true",
                     help="retry-worker schedules: send for real (release_manager)")
    add.add_argument("--misfire-grace", type=positive_int, default=DEFAULT_MISFIRE_GRACE_S,
                     metavar="S", help=f"catch-up window (default {DEFAULT_MISFIRE_GRACE_S}s)")
    command("list", schedule_list, "list schedules with next/last run", schedule)
    for name, handler, text in (("enable", schedule_enable, "enable a schedule"),
                                ("disable", schedule_disable, "disable a schedule"),
                                ("remove", schedule_remove, "remove a schedule")):
        command(name, handler, text, schedule).add_argument("schedule", metavar="ID",
                                                            help="schedule ID or name")

    scheduler = sub.add_parser("scheduler", help="the embedded scheduler").add_subparsers(
        dest="action", required=True, parser_class=OneLineParser)
    run = command("run", scheduler_run, "run the scheduler headless (until SIGTERM/SIGINT)",
                  scheduler)
    run.add_argument("--lease-ttl", type=_seconds, default=10.0, metavar="S",
                     help="leader lease length (default 10s)")
    run.add_argument("--poll", type=_seconds, default=2.0, metavar="S",
                     help="how often to renew the lease and look for changes (default 2s)")
    run.add_argument("--holder", help="lease holder name (default host:pid:random)")


def _schedule_lines(schedule: Schedule, verb: str) -> list[str]:
    return [f"{verb} {schedule.schedule_id}  {schedule.name}  {schedule.kind}  "
            f"{describe_trigger(schedule)}  {'enabled' if schedule.enabled else 'disabled'}"
            f"{'  live' if schedule.live else ''}"]


def _emit(args: argparse.Namespace, schedule: Schedule, verb: str) -> int:
    if getattr(args, "json", False):
        emit_json(schedule)
    else:
        emit_lines(_schedule_lines(schedule, verb))
    return 0


def schedule_add(runtime: Runtime, args: argparse.Namespace) -> int:
    schedule = add_schedule(runtime.ctx, name=args.name, cron=args.cron, every=args.every,
                            timezone=args.timezone, kind=args.kind, providers=args.provider,
                            live=args.live, misfire_grace_s=args.misfire_grace)
    return _emit(args, schedule, "added")


def schedule_enable(runtime: Runtime, args: argparse.Namespace) -> int:
    return _emit(args, enable_schedule(runtime.ctx, args.schedule), "enabled")


def schedule_disable(runtime: Runtime, args: argparse.Namespace) -> int:
    return _emit(args, disable_schedule(runtime.ctx, args.schedule), "disabled")


def schedule_remove(runtime: Runtime, args: argparse.Namespace) -> int:
    return _emit(args, remove_schedule(runtime.ctx, args.schedule), "removed")


def _when(moment: Any) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "-"


def schedule_list(runtime: Runtime, args: argparse.Namespace) -> int:
    status = read_scheduler_status(runtime.db, runtime.ctx.clock())
    by_id: dict[str, ScheduleStatus] = {s.schedule_id: s for s in status.schedules}
    schedules = list_schedules(runtime.db)
    if getattr(args, "json", False):
        emit_json({"leader": status.leader, "lease_expires_at": status.lease_expires_at,
                   "schedules": [{**s.model_dump(mode="json"), **by_id[s.schedule_id].model_dump(
                       mode="json", include={"trigger", "next_run_at", "last_run_at", "missed",
                                             "errors"})} for s in schedules]})
        return 0
    lines = [f"scheduler leader: {status.leader or 'none (no scheduler running)'}"]
    if not schedules:
        lines.append("no schedules (add one with `cavra schedule add`)")
    for schedule in schedules:
        state = by_id[schedule.schedule_id]
        lines.append(f"{schedule.schedule_id}  {schedule.name}  {schedule.kind}"
                     f"{' live' if schedule.live else ''}  {state.trigger}  "
                     f"{'enabled' if schedule.enabled else 'disabled'}")
        lines.append(f"  next {_when(state.next_run_at)}  last {_when(state.last_run_at)}  "
                     f"missed {state.missed}  errors {state.errors}  grace "
                     f"{schedule.misfire_grace_s}s  providers "
                     f"{', '.join(schedule.providers) or '-'}")
    emit_lines(lines)
    return 0


def scheduler_run(runtime: Runtime, args: argparse.Namespace) -> int:
    configure_logging(runtime.data_dir, to_stderr=True)
    return run_headless(runtime, lease_ttl_s=args.lease_ttl, poll_s=args.poll,
                        holder=args.holder)
