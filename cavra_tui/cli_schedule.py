"""`cavra schedule add|enable|disable|remove` (SPEC §8, §10). Listing is `cli_schedule_list`
(a Core read); these change schedules, through the write services."""

from __future__ import annotations

import argparse

from cavra_tui.bootstrap import Runtime
from cavra_tui.cli_output import emit_json, emit_lines, wants_json
from scheduler.schedules import add_schedule
from scheduler.status import next_fire_labels, next_fire_line
from store.models import Schedule
from store.services.schedule_reads import describe_trigger
from store.services.schedules import disable_schedule, enable_schedule, remove_schedule


def _schedule_lines(schedule: Schedule, verb: str) -> list[str]:
    return [f"{verb} {schedule.schedule_id}  {schedule.name}  {schedule.kind}  "
            f"{describe_trigger(schedule)}  {'enabled' if schedule.enabled else 'disabled'}"
            f"{'  live' if schedule.live else ''}"]


def _emit(args: argparse.Namespace, schedule: Schedule, verb: str) -> int:
    if wants_json(args):
        emit_json(schedule)
    else:
        emit_lines(_schedule_lines(schedule, verb))
    return 0


def schedule_add(runtime: Runtime, args: argparse.Namespace) -> int:
    schedule = add_schedule(runtime.ctx, name=args.name, cron=args.cron, every=args.every,
                            timezone=args.timezone, kind=args.kind, providers=args.provider,
                            live=args.live, misfire_grace_s=args.misfire_grace)
    # What the expression means, in words a person checks at a glance.
    now = runtime.ctx.clock()
    if wants_json(args):
        emit_json({**schedule.model_dump(mode="json"),
                   "next_fires": next_fire_labels(schedule, now)})
        return 0
    emit_lines([*_schedule_lines(schedule, "added"),
                f"  next fires: {next_fire_line(schedule, now)}"])
    return 0


def schedule_enable(runtime: Runtime, args: argparse.Namespace) -> int:
    return _emit(args, enable_schedule(runtime.ctx, args.schedule), "enabled")


def schedule_disable(runtime: Runtime, args: argparse.Namespace) -> int:
    return _emit(args, disable_schedule(runtime.ctx, args.schedule), "disabled")


def schedule_remove(runtime: Runtime, args: argparse.Namespace) -> int:
    return _emit(args, remove_schedule(runtime.ctx, args.schedule), "removed")
