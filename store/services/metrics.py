"""Dashboard numbers (SPEC §6): a fixed number of counter rows, never a history scan."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from store.counters import change_version, read_all_time, read_hourly
from store.models import EXECUTION_STATUSES, AlertLevel
from store.services.provider_health import read_all_provider_health

if TYPE_CHECKING:  # a type only: importing the context loads the audit log
    from store.services.context import StoreContext

EVENT_COUNTERS = (
    *(f"retry_worker_runs.{mode}" for mode in ("dry_run", "live")),
    *(f"retry_executions.{status}" for status in EXECUTION_STATUSES),
    *(f"{kind}_deliveries.{status}" for kind in ("escalation", "executive")
      for status in ("delivered", "failed", "unknown")),
    "escalation_plans", "retry_plans", "schedule_runs", "schedule_missed", "schedule_errors",
    *(f"report_retry_runs.{mode}" for mode in ("dry_run", "live")),
    *(f"report_retry_executions.{status}" for status in EXECUTION_STATUSES),
    "report_retry_plans",
)
GAUGES = ("ack_pending", "open_escalations", "open_critical_escalations")


class MetricsSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True)
    retry_worker_runs: dict[str, int]
    retry_executions: dict[str, int]
    # The executive delivery retry worker (`cavra report retry`): runs and their executions.
    report_retry_runs: dict[str, int] = Field(default_factory=dict)
    report_retry_executions: dict[str, int] = Field(default_factory=dict)
    executive_deliveries: dict[str, int]
    failed_deliveries: dict[str, int]
    acknowledgement_pending: int
    open_escalations: int
    alert_level: AlertLevel
    last_24h: dict[str, Any]
    hourly: dict[str, list[int]]
    schedules: dict[str, int]
    change_version: int
    # circuit breaker per provider that has sent anything: name → {state, consecutive_failures}
    providers: dict[str, dict[str, Any]] = Field(default_factory=dict)


def _shape(values: dict[str, int]) -> dict[str, Any]:
    return {
        "retry_worker_runs": {m: values[f"retry_worker_runs.{m}"] for m in ("dry_run", "live")},
        "retry_executions": {s: values[f"retry_executions.{s}"] for s in EXECUTION_STATUSES},
        "report_retry_runs": {m: values[f"report_retry_runs.{m}"] for m in ("dry_run", "live")},
        "report_retry_executions": {s: values[f"report_retry_executions.{s}"]
                                    for s in EXECUTION_STATUSES},
        "executive_deliveries": {s: values[f"executive_deliveries.{s}"]
                                 for s in ("delivered", "failed", "unknown")},
        "failed_deliveries": {k: values[f"{k}_deliveries.failed"] + values[
            f"{k}_deliveries.unknown"] for k in ("escalation", "executive")},
        "delivered": values["escalation_deliveries.delivered"]
        + values["executive_deliveries.delivered"],
    }


def read_metrics(ctx: StoreContext, now: datetime) -> MetricsSnapshot:
    with ctx.db.connect() as conn:  # Core: the dashboard and `cavra metrics` never load the ORM
        totals = read_all_time(conn, (*EVENT_COUNTERS, *GAUGES))
        hourly = read_hourly(conn, EVENT_COUNTERS, now)
        version = change_version(conn)
        health = read_all_provider_health(conn, now)
    day = {name: sum(series) for name, series in hourly.items()}
    all_time = _shape(totals)
    recent = _shape(day)
    deliveries = [sum(v) for v in zip(hourly["escalation_deliveries.delivered"],
                                      hourly["executive_deliveries.delivered"], strict=True)]
    failures = [sum(v) for v in zip(*(hourly[f"{k}_deliveries.{s}"]
                                      for k in ("escalation", "executive")
                                      for s in ("failed", "unknown")), strict=True)]
    pending = max(0, totals["ack_pending"])
    open_escalations = max(0, totals["open_escalations"])
    level: AlertLevel = "healthy"
    recent_failures = sum(recent["failed_deliveries"].values()) + recent["retry_executions"][
        "failed"]
    if totals["open_critical_escalations"] > 0:
        level = "critical"
    elif open_escalations or pending or recent_failures or any(
            h.state != "closed" for h in health.values()):
        level = "warning"
    return MetricsSnapshot(
        **{key: all_time[key] for key in ("retry_worker_runs", "retry_executions",
                                          "report_retry_runs", "report_retry_executions",
                                          "executive_deliveries", "failed_deliveries")},
        acknowledgement_pending=pending, open_escalations=open_escalations, alert_level=level,
        last_24h=recent, hourly={"deliveries": deliveries, "failures": failures},
        schedules={"runs": totals["schedule_runs"], "missed": totals["schedule_missed"],
                   "errors": totals["schedule_errors"]},
        change_version=version,
        providers={name: {"state": h.state, "consecutive_failures": h.consecutive_failures,
                          "opened_until": h.opened_until.isoformat() if h.opened_until else None}
                   for name, h in health.items()},
    )
