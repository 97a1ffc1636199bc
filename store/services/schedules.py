"""Report and retry-worker schedules (SPEC §8): add, list, enable, disable, remove, and the
missed/error events the scheduler records about them.

A schedule is configuration, not evidence: changes update the row in place and are audited.
Bad input raises a one-line ``UserError`` before anything is written.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.counters import bump
from store.errors import NotFound, UserError
from store.ids import new_id
from store.models import Record, Schedule
from store.schedule_limits import (
    DEFAULT_MISFIRE_GRACE_S,
    DURATION_UNITS,
    KINDS,
    MAX_INTERVAL_S,
    MAX_MISFIRE_GRACE_S,
    MIN_INTERVAL_S,
)
from store.services.context import StoreContext
from store.services.schedule_reads import describe_trigger
from store.services.schedule_reads import list_schedules as list_schedules
from store.services.schedule_reads import schedule_overview as schedule_overview
from store.tables import (
    FollowUpRunRow,
    ScheduleEventRow,
    ScheduleRow,
    ScheduleRunRow,
    WorkerRunRow,
)

ScheduleKind = Literal["report", "retry-worker", "report-retry", "follow-up"]
# The rule a live schedule's runs need, checked when it is added or enabled.
LIVE_RULES = {"follow-up": "escalation.follow_up.live"}
LIVE_RULE = "retry.run.live"  # the retry workers'
EVENT_COUNTERS = {"missed": "schedule_missed", "error": "schedule_errors"}


class ScheduleEvent(Record):
    event_id: int
    schedule_id: str
    scheduled_for: datetime | None
    kind: Literal["missed", "error"]
    detail: str
    created_at: datetime
    created_by: str


def parse_duration(text: str) -> int:
    """``30s``, ``5m``, ``1h``, ``1d`` → seconds."""
    match = re.fullmatch(r"\s*(\d{1,9})\s*([smhd])\s*", text or "")
    if match is None:
        raise UserError(f"duration {text!r}: use a whole number and a unit, e.g. 30s, 5m, 1h, 1d")
    seconds = int(match.group(1)) * DURATION_UNITS[match.group(2)]
    if not MIN_INTERVAL_S <= seconds <= MAX_INTERVAL_S:
        raise UserError(f"duration {text!r}: must be between 1s and 366d")
    return seconds


def check_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"timezone {name!r} is not a known IANA zone (e.g. Europe/Berlin, UTC)"
                        ) from None


def cron_shape(expression: str) -> str:
    """The store's own check of a cron expression: five fields of cron characters. What the
    fields mean is the scheduler's to check (``scheduler.triggers.check_cron``), before this."""
    text = " ".join((expression or "").split())
    if re.fullmatch(r"@[a-z]{5,9}", text):  # @hourly … @annually
        return text
    if len(text.split(" ")) != 5 or len(text) > 128 or not re.fullmatch(r"[0-9A-Za-z*,/\- ?]+",
                                                                         text):
        raise UserError(f"cron {expression!r}: expected 5 fields (minute hour day month weekday)"
                        " or a macro (@hourly, @daily, @weekly, @monthly, @yearly)")
    return text


# The same rule as provider names: safe in a shell, a log line, a channel and a file name.
SCHEDULE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


def _check_name(session: Session, name: str) -> str:
    text = (name or "").strip()
    if not text.isprintable():
        raise UserError("schedule name must be printable (no control characters)")
    if not SCHEDULE_NAME.fullmatch(text):
        raise UserError(f"schedule name {text!r}: use 1–63 of a-z 0-9 . _ -, starting with a "
                        "letter or digit (e.g. exec-morning)")
    taken = session.execute(select(ScheduleRow.schedule_id).where(
        ScheduleRow.name == text, ScheduleRow.removed.is_(False))).first()
    if taken is not None:
        raise UserError(f"a schedule named {text!r} already exists ({taken[0]})")
    return text


def _check_providers(ctx: StoreContext, kind: str, providers: list[str]) -> list[str]:
    chosen = list(dict.fromkeys(providers))
    if kind != "report":
        if chosen:
            raise UserError("--provider applies to report schedules only")
        return []
    for name in chosen:
        if ctx.config.provider(name) is None:
            raise UserError(f"provider {name!r} is not configured")
        if not ctx.config.is_executive(name):
            raise UserError(f"provider {name!r} is not an executive channel "
                            '(set audience = ["executive"] in its config)')
    # No providers named: every executive channel configured now, written down explicitly.
    return chosen or sorted(n for n in ctx.config.providers if ctx.config.is_executive(n))


def add_schedule(ctx: StoreContext, *, name: str, cron: str | None = None,
                 every: str | int | None = None, timezone: str = "UTC",
                 kind: str = "report", providers: list[str] | None = None, live: bool = False,
                 misfire_grace_s: int = DEFAULT_MISFIRE_GRACE_S) -> Schedule:
    if (cron is None) == (every is None):
        raise UserError("give exactly one of --cron EXPR or --every DURATION")
    if kind not in KINDS:
        raise UserError(f"kind {kind!r}: choose report, retry-worker, report-retry or "
                        "follow-up")
    if live and kind == "report":
        raise UserError("--live applies to retry-worker, report-retry and follow-up schedules "
                        "only")
    if not 1 <= misfire_grace_s <= MAX_MISFIRE_GRACE_S:
        raise UserError(f"misfire grace must be between 1 and {MAX_MISFIRE_GRACE_S} seconds")
    zone = check_timezone(timezone)
    cron_text = cron_shape(cron) if cron is not None else None
    interval_s = None
    if every is not None:
        interval_s = every if isinstance(every, int) else parse_duration(every)
        if not MIN_INTERVAL_S <= interval_s <= MAX_INTERVAL_S:
            raise UserError("interval must be between 1s and 366d")
    chosen = _check_providers(ctx, kind, providers or [])
    with ctx.db.read() as session:
        clean_name = _check_name(session, name)
    decision = ctx.require("schedule.change")
    if live:
        ctx.require(LIVE_RULES.get(kind, LIVE_RULE))
    now = ctx.clock()
    with ctx.write() as session:
        row = ScheduleRow(
            schedule_id=new_id("schedule"), name=clean_name, kind=kind, cron=cron_text,
            interval_s=interval_s, timezone=zone.key, providers=chosen, enabled=True, live=live,
            misfire_grace_s=misfire_grace_s, removed=False, updated_at=now, created_at=now,
            created_by=ctx.identity.actor)
        session.add(row)
        session.flush()
        schedule = Schedule.model_validate(row)
        ctx.audit(session, "schedule.change", decision, [schedule.schedule_id],
                  f"add {kind} schedule {clean_name!r}: {describe_trigger(schedule)}",
                  {"change": "add", "schedule": schedule.model_dump(mode="json")})
    return schedule


def _find(session: Session, ref: str) -> ScheduleRow:
    row = session.get(ScheduleRow, ref)
    if row is None:
        row = session.execute(select(ScheduleRow).where(
            ScheduleRow.name == ref, ScheduleRow.removed.is_(False))
        ).scalar_one_or_none()
    if row is None or row.removed:
        raise NotFound(f"schedule {ref!r} not found")
    return row


def get_schedule(ctx: StoreContext, ref: str) -> Schedule:
    """By ID (``sch-…``) or by name."""
    with ctx.db.read() as session:
        return Schedule.model_validate(_find(session, ref))


def _change(ctx: StoreContext, ref: str, change: str) -> Schedule:
    with ctx.db.read() as session:
        target = Schedule.model_validate(_find(session, ref))
    decision = ctx.require("schedule.change", [target.schedule_id])
    if change == "enable" and target.live:
        ctx.require(LIVE_RULES.get(target.kind, LIVE_RULE), [target.schedule_id])
    now = ctx.clock()
    with ctx.write() as session:
        row = _find(session, target.schedule_id)
        if change == "remove":
            row.removed, row.enabled = True, False
        else:
            row.enabled = change == "enable"
        row.updated_at = now  # the scheduler notices the change and resets its catch-up baseline
        session.flush()
        schedule = Schedule.model_validate(row)
        ctx.audit(session, "schedule.change", decision, [schedule.schedule_id],
                  f"{change} schedule {schedule.name!r}",
                  {"change": change, "schedule": schedule.model_dump(mode="json")})
    return schedule


def enable_schedule(ctx: StoreContext, ref: str) -> Schedule:
    return _change(ctx, ref, "enable")


def disable_schedule(ctx: StoreContext, ref: str) -> Schedule:
    return _change(ctx, ref, "disable")


def remove_schedule(ctx: StoreContext, ref: str) -> Schedule:
    """Removed schedules stay in the table (their runs refer to them) but never fire again."""
    return _change(ctx, ref, "remove")


def record_schedule_event(ctx: StoreContext, schedule_id: str, kind: Literal["missed", "error"],
                          scheduled_for: datetime | None, detail: str) -> ScheduleEvent:
    """A missed fire or a job error: recorded, counted in metrics, audited."""
    decision = ctx.require("scheduler.fire", [schedule_id])
    now = ctx.clock()
    with ctx.write() as session:
        row = ScheduleEventRow(schedule_id=schedule_id, scheduled_for=scheduled_for, kind=kind,
                               detail=detail[:255], created_at=now,
                               created_by=ctx.identity.actor)
        session.add(row)
        bump(session, EVENT_COUNTERS[kind], now)
        session.flush()
        event = ScheduleEvent.model_validate(row)
        ctx.audit(session, f"scheduler.{kind}", decision, [schedule_id], detail,
                  event.model_dump(mode="json"))
    return event


def list_schedule_events(ctx: StoreContext, schedule_id: str | None = None,
                         limit: int = 50) -> list[ScheduleEvent]:
    with ctx.db.read() as session:
        query = select(ScheduleEventRow).order_by(ScheduleEventRow.event_id.desc()).limit(limit)
        if schedule_id is not None:
            query = query.where(ScheduleEventRow.schedule_id == schedule_id)
        return [ScheduleEvent.model_validate(row) for row in session.execute(query).scalars()]


def last_handled(ctx: StoreContext, schedule_ids: list[str]) -> dict[str, datetime]:
    """The latest slot each schedule has dealt with: a report run, a worker or follow-up run,
    or a missed/error event. Slots at or before it are never owed a catch-up run."""
    if not schedule_ids:
        return {}
    with ctx.db.read() as session:
        return _last_handled(session, schedule_ids)


def _last_handled(session: Session, schedule_ids: list[str]) -> dict[str, datetime]:
    found: dict[str, datetime] = {}
    queries = (
        select(ScheduleRunRow.schedule_id, func.max(ScheduleRunRow.scheduled_for))
        .where(ScheduleRunRow.schedule_id.in_(schedule_ids))
        .group_by(ScheduleRunRow.schedule_id),
        select(WorkerRunRow.schedule_id, func.max(WorkerRunRow.started_at))
        .where(WorkerRunRow.schedule_id.in_(schedule_ids)).group_by(WorkerRunRow.schedule_id),
        select(FollowUpRunRow.schedule_id, func.max(FollowUpRunRow.started_at))
        .where(FollowUpRunRow.schedule_id.in_(schedule_ids))
        .group_by(FollowUpRunRow.schedule_id),
        select(ScheduleEventRow.schedule_id, func.max(ScheduleEventRow.scheduled_for))
        .where(ScheduleEventRow.schedule_id.in_(schedule_ids))
        .group_by(ScheduleEventRow.schedule_id),
    )
    from store.clock import as_utc

    for query in queries:
        for schedule_id, moment in session.execute(query).all():
            if schedule_id is None or moment is None:
                continue
            moment = as_utc(moment)
            if schedule_id not in found or moment > found[schedule_id]:
                found[schedule_id] = moment
    return found
