"""Retry health and the executive delivery retry plan (SPEC §5.7).

Alerts are derived on every read from a few small queries and counters, so an alert clears
as soon as its condition is gone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from store.clock import as_utc
from store.counters import read_all_time, read_hourly
from store.models import RetryDecision
from store.rules.retry_decision import (
    PairHistory,
    decide,
    fold_delivery,
    history_pair,
    provider_counts_as_enabled,
)
from store.services.context import StoreContext
from store.tables import DeliveryRow, PairStateRow, ReportScheduleRow, RetryPlanRow, WorkerRunRow

Severity = Literal["info", "warning", "critical"]
DEFAULT_EXPECTED_INTERVAL = timedelta(hours=24)


class HealthAlert(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: str
    severity: Severity
    message: str


class HealthReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    status: Literal["healthy", "warning", "critical"]
    alerts: list[HealthAlert]
    executive_retry: list[RetryDecision]


def _latest(session: Session, column: InstrumentedAttribute[datetime]) -> datetime | None:
    value = session.execute(select(func.max(column))).scalar_one_or_none()
    return as_utc(value) if value is not None else None


def _retry_alerts(ctx: StoreContext, session: Session, now: datetime) -> list[HealthAlert]:
    alerts: list[HealthAlert] = []
    schedules = session.execute(select(ReportScheduleRow).where(
        ReportScheduleRow.kind == "retry-worker", ReportScheduleRow.removed.is_(False))
    ).scalars().all()
    enabled = [s for s in schedules if s.enabled]
    if schedules and not enabled:
        alerts.append(HealthAlert(code="retry_schedule_disabled", severity="warning",
                                  message=f"{len(schedules)} retry-worker schedule(s), "
                                          "all disabled"))
    elif not schedules:
        alerts.append(HealthAlert(code="no_retry_schedule", severity="info",
                                  message="no retry-worker schedule: retries run only by hand"))
    intervals = [timedelta(seconds=s.interval_s) for s in enabled if s.interval_s]
    expected = min(intervals) if intervals else DEFAULT_EXPECTED_INTERVAL
    failing_pairs = session.execute(select(func.count()).select_from(PairStateRow).where(
        PairStateRow.failures_since_success > 0)).scalar_one()
    last_run = _latest(session, WorkerRunRow.created_at)
    if enabled and (last_run is None or now - last_run > 2 * expected):
        alerts.append(HealthAlert(
            code="worker_missed", severity="critical",
            message=("the retry worker has never run" if last_run is None else
                     f"the last retry worker run was {int((now - last_run).total_seconds() // 60)}"
                     f" min ago (expected every {int(expected.total_seconds() // 60) or 1} min)")))
    last_plan = _latest(session, RetryPlanRow.created_at)
    if failing_pairs and (last_plan is None or now - last_plan > 2 * expected):
        alerts.append(HealthAlert(code="stale_retry_plan", severity="warning",
                                  message=f"{failing_pairs} failed pair(s) and no retry plan "
                                          "built recently"))
    pending = max(0, read_all_time(session, ["ack_pending"])["ack_pending"])
    if pending:
        alerts.append(HealthAlert(code="acknowledgement_gap", severity="warning",
                                  message=f"{pending} delivered escalation(s) wait for an "
                                          "acknowledgement"))
    hours = ctx.config.escalation.lookback_hours
    failed = sum(read_hourly(session, ["retry_executions.failed"], now, hours=hours)[
        "retry_executions.failed"])
    if failed:
        alerts.append(HealthAlert(code="failed_executions", severity="critical",
                                  message=f"{failed} retry execution(s) failed in the last "
                                          f"{hours} h"))
    return alerts


def executive_retry_plan(ctx: StoreContext, session: Session, now: datetime) -> list[RetryDecision]:
    """retry/wait/suppress for failed executive deliveries; no acknowledgement gate applies
    to executive reports. No history window: every (run, provider) pair that ever failed is
    considered, found through the status index rather than a scan of all deliveries. Each
    pair is folded with the same rule that keeps escalation pairs' state."""
    failed_runs = select(DeliveryRow.run_id).where(
        DeliveryRow.kind == "executive", DeliveryRow.status.in_(("failed", "unknown")))
    rows = session.execute(select(
        DeliveryRow.run_id, DeliveryRow.provider, DeliveryRow.delivery_id, DeliveryRow.status,
        DeliveryRow.status_code, DeliveryRow.retry_after_s, DeliveryRow.finished_at,
        DeliveryRow.created_at).where(
        DeliveryRow.kind == "executive", DeliveryRow.run_id.in_(failed_runs),
        DeliveryRow.status != "in_flight").order_by(DeliveryRow.created_at)).all()
    pairs: dict[tuple[str, str], PairHistory] = {}
    for run_id, provider, delivery_id, status, code, retry_after, finished, created in rows:
        key = (run_id or "", provider)
        pairs[key] = fold_delivery(pairs.get(key, PairHistory()), delivery_id=delivery_id,
                                   status=status, status_code=code, retry_after_s=retry_after,
                                   at=as_utc(finished or created))
    decisions = []
    for (run_id, provider), history in pairs.items():
        if history.failures_since_success == 0:
            continue
        settings = ctx.config.provider(provider)
        enabled = provider_counts_as_enabled(configured=settings is not None,
                                             enabled=settings is not None and settings.enabled,
                                             kind="executive")
        decisions.append(decide(history_pair(run_id, provider, history), ctx.config.retry,
                                now=now, provider_enabled=enabled))
    return decisions


def read_health(ctx: StoreContext) -> HealthReport:
    now = ctx.clock()
    with ctx.db.read() as session:
        alerts = _retry_alerts(ctx, session, now)
        executive = executive_retry_plan(ctx, session, now)
    failed_exec = sum(1 for d in executive if d.action != "suppress")
    if failed_exec:
        alerts.append(HealthAlert(code="executive_delivery_failed", severity="warning",
                                  message=f"{failed_exec} executive report delivery(ies) "
                                          "failed and can be retried"))
    severities = {a.severity for a in alerts}
    status: Literal["healthy", "warning", "critical"] = (
        "critical" if "critical" in severities else
        "warning" if "warning" in severities else "healthy")
    return HealthReport(status=status, alerts=alerts, executive_retry=executive)
