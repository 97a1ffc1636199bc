"""Retry health and the executive delivery retry plan (SPEC §5.7).

Alerts are derived on every read from a few small queries and counters, so an alert clears
as soon as its condition is gone. The reads run on SQLAlchemy Core (``store.core_tables``):
the dashboard's Health tile paints without loading the ORM.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, Connection, and_, func, or_, select

from store.clock import as_utc
from store.core_tables import deliveries as _D
from store.core_tables import execution_records as _E
from store.core_tables import pair_state as _P
from store.core_tables import report_schedules as _S
from store.core_tables import retry_plans as _R
from store.core_tables import worker_runs as _W
from store.counters import read_all_time, read_hourly
from store.ids import new_id
from store.models import ACK_SETTLED, RetryDecision
from store.rules.retry_decision import (
    PairHistory,
    decide,
    fold_delivery,
    history_pair,
    permanent_error,
    provider_counts_as_enabled,
)
from store.services.context import StoreContext
from store.services.locks import held_leases

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

Severity = Literal["info", "warning", "critical"]
Figure = int | float | str | list[str] | list[int] | None
DEFAULT_EXPECTED_INTERVAL = timedelta(hours=24)
PERMANENT_PREFIX = "permanent_error: "


class HealthAlert(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: str
    severity: Severity
    message: str
    figures: dict[str, Figure] = {}  # the counts and ages behind the message (--json)


class HealthReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    status: Literal["healthy", "warning", "critical"]
    alerts: list[HealthAlert]
    executive_retry: list[RetryDecision]


class HealthSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True)
    snapshot_id: str
    status: str
    alerts: list[HealthAlert]
    created_at: datetime
    created_by: str


def _latest(session: Session | Connection, column: ColumnElement[datetime],
            *conditions: Any) -> datetime | None:
    value = session.execute(select(func.max(column)).where(*conditions)).scalar_one_or_none()
    return as_utc(value) if value is not None else None


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _expected_interval(ctx: StoreContext, intervals: list[timedelta]) -> timedelta:
    configured = ctx.config.health.expected_worker_interval_minutes
    if configured:
        return timedelta(minutes=configured)
    return min(intervals) if intervals else DEFAULT_EXPECTED_INTERVAL


def _schedule_alerts(ctx: StoreContext, session: Session | Connection,
                     now: datetime) -> tuple[list[HealthAlert], timedelta]:
    alerts: list[HealthAlert] = []
    schedules = session.execute(select(_S.c.enabled, _S.c.interval_s).where(
        _S.c.kind == "retry-worker", _S.c.removed.is_(False))).all()
    enabled = [s for s in schedules if s.enabled]
    if schedules and not enabled:
        alerts.append(HealthAlert(code="retry_schedule_disabled", severity="warning",
                                  message=f"{_plural(len(schedules), 'retry-worker schedule')}"
                                          ", all disabled", figures={"schedules": len(schedules)}))
    elif not schedules:
        alerts.append(HealthAlert(code="no_retry_schedule", severity="info",
                                  message="no retry-worker schedule: retries run only by hand"))
    expected = _expected_interval(ctx, [timedelta(seconds=s.interval_s) for s in enabled
                                        if s.interval_s])
    # The escalation worker's own runs: not the executive re-sends (subject), nor the record
    # a later run wrote for a dead one (abandoned).
    last_run = _latest(session, _W.c.created_at, _W.c.subject.is_(None),
                       _W.c.mode != "abandoned")
    if enabled and (last_run is None or now - last_run > 2 * expected):
        age = None if last_run is None else _minutes(now - last_run)
        alerts.append(HealthAlert(
            code="worker_missed", severity="critical",
            message=("the retry worker has never run" if last_run is None else
                     f"the last retry worker run was {age} min ago (expected every "
                     f"{_minutes(expected) or 1} min)"),
            figures={"last_run_at": last_run.isoformat() if last_run else None,
                     "age_minutes": age, "expected_minutes": _minutes(expected)}))
    return alerts, expected


LIVE_LOCKS = ("live_retry_worker", "live_report_retry")


def _lease_alerts(ctx: StoreContext, session: Session | Connection,
                  now: datetime) -> list[HealthAlert]:
    """A live run's lease held longer than the longest run should take: a stuck run (a
    killed one's lease expires within its TTL and shows nothing here)."""
    timeouts = [p.timeout_s for p in ctx.config.providers.values()] or [5.0]
    expected = timedelta(seconds=ctx.config.retry.max_deliveries * max(timeouts) + 60)
    alerts = []
    for name, holder, acquired in held_leases(session, list(LIVE_LOCKS), now):
        if acquired is not None and now - acquired > expected:
            alerts.append(HealthAlert(
                code="live_lock_held", severity="warning",
                message=f"{name} has been held by {holder} for {_minutes(now - acquired)} min "
                        f"(a run should take under {_minutes(expected) or 1} min)",
                figures={"lock": name, "holder": holder,
                         "age_minutes": _minutes(now - acquired),
                         "expected_minutes": _minutes(expected)}))
    return alerts


def _plan_alerts(ctx: StoreContext, session: Session | Connection, now: datetime,
                 expected: timedelta) -> list[HealthAlert]:
    alerts: list[HealthAlert] = []
    failing_pairs = session.execute(select(func.count()).select_from(_P).where(
        _P.c.failures_since_success > 0, _not_settled(_P.c.latest_ack_state))).scalar_one()
    stale_minutes = ctx.config.health.stale_plan_minutes
    stale_after = timedelta(minutes=stale_minutes) if stale_minutes else 2 * expected
    last_plan = _latest(session, _R.c.created_at, _R.c.subject.is_(None))
    if failing_pairs and (last_plan is None or now - last_plan > stale_after):
        alerts.append(HealthAlert(
            code="stale_retry_plan", severity="warning",
            message=f"{_plural(failing_pairs, 'failed pair')} and no retry plan in the last "
                    f"{_minutes(stale_after)} min",
            figures={"failed_pairs": failing_pairs, "stale_after_minutes": _minutes(stale_after),
                     "last_plan_age_minutes": _minutes(now - last_plan) if last_plan else None}))
    pending = max(0, read_all_time(session, ["ack_pending"])["ack_pending"])
    if pending:
        alerts.append(HealthAlert(
            code="acknowledgement_gap", severity="warning",
            message=f"{_plural(pending, 'delivered escalation')} "
                    f"{'waits' if pending == 1 else 'wait'} for an acknowledgement",
            figures={"pending": pending}))
    return alerts


def _not_settled(column: Any) -> Any:
    return or_(column.is_(None), column.not_in(sorted(ACK_SETTLED)))


def _execution_alerts(ctx: StoreContext, session: Session | Connection,
                      now: datetime) -> list[HealthAlert]:
    alerts: list[HealthAlert] = []
    hours = ctx.config.health.lookback_hours
    since = now - timedelta(hours=hours)
    # Failed executions whose pair has not been delivered or settled since (an inner join on
    # pair_state: executive executions are the executive alerts' business).
    rows = session.execute(
        select(_E.c.plan_id, _E.c.provider, func.count(), func.min(_E.c.created_at))
        .join(_P, and_(_P.c.plan_id == _E.c.plan_id, _P.c.provider == _E.c.provider))
        .where(_E.c.status == "failed", _E.c.created_at >= since,
               _P.c.failures_since_success > 0, _not_settled(_P.c.latest_ack_state))
        .group_by(_E.c.plan_id, _E.c.provider)).all()
    if rows:
        executions = sum(count for _, _, count, _ in rows)
        oldest = min(as_utc(first) for _, _, _, first in rows)
        alerts.append(HealthAlert(
            code="failed_executions", severity="critical",
            message=f"{_plural(len(rows), 'pair')} failed in the last {hours} h and "
                    f"{'has' if len(rows) == 1 else 'have'} not been delivered or settled since",
            figures={"pairs": len(rows), "executions": executions,
                     "oldest_age_minutes": _minutes(now - oldest), "window_hours": hours}))
    counts = read_hourly(session, ["retry_executions.skipped", "retry_executions.unknown"], now,
                         hours=hours)
    for status, meaning in (("skipped", "skipped (nothing sent)"),
                            ("unknown", "with an unknown outcome (sent, no answer)")):
        count = sum(counts[f"retry_executions.{status}"])
        if count:
            alerts.append(HealthAlert(
                code=f"{status}_executions", severity="warning",
                message=f"{_plural(count, 'retry execution')} {meaning} in the last {hours} h",
                figures={"executions": count, "window_hours": hours}))
    return alerts


def _permanent_pairs(ctx: StoreContext,
                    session: Session | Connection) -> list[tuple[str, str, int]]:
    """Escalation pairs whose latest failure was permanent for their provider's kind
    (``store.rules.retry_decision.permanent_error``)."""
    rows = session.execute(
        select(_P.c.plan_id, _P.c.provider, _D.c.status_code)
        .join(_D, _D.c.delivery_id == _P.c.latest_delivery_id)
        .where(_P.c.failures_since_success > 0, _P.c.latest_status == "failed",
               _not_settled(_P.c.latest_ack_state),
               _D.c.status_code.between(400, 599))).all()
    found = []
    for plan, provider, code in rows:
        settings = ctx.config.provider(provider)
        if permanent_error("failed", code, settings.kind if settings else None):
            found.append((plan, provider, code or 0))
    return found


def _delivery_alerts(ctx: StoreContext, session: Session | Connection,
                     executive: list[RetryDecision],
                     now: datetime) -> list[HealthAlert]:
    alerts: list[HealthAlert] = []
    permanent = [*_permanent_pairs(ctx, session), *(
        (d.plan_id, d.provider, int(d.reason.rsplit(" ", 1)[-1]))
        for d in executive if d.reason.startswith(PERMANENT_PREFIX))]
    if permanent:
        providers = sorted({provider for _, provider, _ in permanent})
        alerts.append(HealthAlert(
            code="permanent_error", severity="critical",
            message=f"{_plural(len(permanent), 'pair')} failed with a permanent error (status "
                    f"{', '.join(str(c) for c in sorted({c for _, _, c in permanent}))}) and "
                    f"will not be retried: fix the configuration of {', '.join(providers)}",
            figures={"pairs": len(permanent), "providers": providers,
                     "status_codes": sorted({c for _, _, c in permanent})}))
    exhausted = [d for d in executive
                 if d.action == "suppress" and d.reason == "max_attempts_reached"]
    if exhausted:
        alerts.append(HealthAlert(
            code="executive_delivery_exhausted", severity="critical",
            message=f"{_plural(len({d.plan_id for d in exhausted}), 'executive report')} never "
                    f"delivered to {', '.join(sorted({d.provider for d in exhausted}))} after "
                    f"{exhausted[0].retry_count} failed attempts",
            figures={"runs": sorted({d.plan_id for d in exhausted}),
                     "providers": sorted({d.provider for d in exhausted}),
                     "pairs": len(exhausted)}))
    retryable = [d for d in executive if d.action != "suppress"]
    if retryable:
        what = _plural(len(retryable), "executive report delivery",
                       "executive report deliveries")
        alerts.append(HealthAlert(
            code="executive_delivery_failed", severity="warning",
            message=f"{what} failed and can be retried",
            figures={"pairs": len(retryable),
                     "due": sum(1 for d in retryable if d.action == "retry")}))
    return alerts


def executive_retry_plan(ctx: StoreContext, session: Session | Connection,
                         now: datetime) -> list[RetryDecision]:
    return [decision for decision, _ in executive_pairs(ctx, session, now)]


def executive_pairs(ctx: StoreContext, session: Session | Connection,
                    now: datetime) -> list[tuple[RetryDecision, datetime | None]]:
    """Each executive pair's decision (retry/wait/suppress; no acknowledgement gate applies
    to executive reports) and its latest failure (the worker sends the oldest first). No
    history window: every (run, provider) pair that ever failed is considered, found through
    the status index rather than a scan of all deliveries. Each pair is folded with the same
    rule that keeps escalation pairs' state."""
    failed_runs = select(_D.c.run_id).where(
        _D.c.kind == "executive", _D.c.status.in_(("failed", "unknown")))
    rows = session.execute(select(
        _D.c.run_id, _D.c.provider, _D.c.delivery_id, _D.c.status, _D.c.status_code,
        _D.c.retry_after_s, _D.c.finished_at, _D.c.created_at).where(
        _D.c.kind == "executive", _D.c.run_id.in_(failed_runs),
        _D.c.status != "in_flight").order_by(_D.c.created_at)).all()
    pairs: dict[tuple[str, str], PairHistory] = {}
    for run_id, provider, delivery_id, status, code, retry_after, finished, created in rows:
        key = (run_id or "", provider)
        pairs[key] = fold_delivery(pairs.get(key, PairHistory()), delivery_id=delivery_id,
                                   status=status, status_code=code, retry_after_s=retry_after,
                                   at=as_utc(finished or created))
    decisions: list[tuple[RetryDecision, datetime | None]] = []
    for (run_id, provider), history in pairs.items():
        if history.failures_since_success == 0:
            continue
        settings = ctx.config.provider(provider)
        # A channel no longer marked executive is not sent the report again (governed).
        enabled = provider_counts_as_enabled(
            configured=settings is not None,
            enabled=settings is not None and settings.enabled and ctx.config.is_executive(
                provider), kind="executive")
        decisions.append((decide(history_pair(run_id, provider, history), ctx.config.retry,
                                 now=now, provider_enabled=enabled,
                                 provider_kind=settings.kind if settings else None),
                          history.last_failure_at))
    return decisions


def read_health(ctx: StoreContext) -> HealthReport:
    now = ctx.clock()
    with ctx.db.connect() as session:
        alerts, expected = _schedule_alerts(ctx, session, now)
        alerts += _plan_alerts(ctx, session, now, expected)
        alerts += _lease_alerts(ctx, session, now)
        alerts += _execution_alerts(ctx, session, now)
        executive = executive_retry_plan(ctx, session, now)
        alerts += _delivery_alerts(ctx, session, executive, now)
    severities = {a.severity for a in alerts}
    status: Literal["healthy", "warning", "critical"] = (
        "critical" if "critical" in severities else
        "warning" if "warning" in severities else "healthy")
    return HealthReport(status=status, alerts=alerts, executive_retry=executive)


def record_health(ctx: StoreContext) -> HealthSnapshot:
    """`cavra health --record`: the alerts as they stand now, stored and audited."""
    decision = ctx.require("health.record")
    from store.tables import HealthSnapshotRow  # the one ORM write here: not on the tile's path

    report = read_health(ctx)
    with ctx.write() as session:
        row = HealthSnapshotRow(
            snapshot_id=new_id("health_snapshot"), status=report.status,
            alerts=[a.model_dump(mode="json") for a in report.alerts], created_at=ctx.clock(),
            created_by=ctx.identity.actor)
        session.add(row)
        session.flush()
        snapshot = HealthSnapshot.model_validate(row, from_attributes=True)
        ctx.audit(session, "health.record", decision, [snapshot.snapshot_id],
                  f"{report.status}: {', '.join(a.code for a in report.alerts) or 'no alerts'}",
                  snapshot.model_dump(mode="json"))
    return snapshot
