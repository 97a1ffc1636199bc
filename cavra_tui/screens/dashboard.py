"""Dashboard: the loop's health at a glance (SPEC §6, §11)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical

from cavra_tui.messages import DataLoaded
from cavra_tui.screens.base import CavraScreen
from cavra_tui.widgets.activity_feed import ActivityFeed
from cavra_tui.widgets.hourly_sparkline import HourlySparkline
from cavra_tui.widgets.metric_tile import MetricTile
from cavra_tui.widgets.scheduler_pane import SchedulerPane
from scheduler.status import SchedulerStatus, read_scheduler_status
from store.models import AuditEvent
from store.services.audit_listing import list_audit_events
from store.services.health import HealthReport, read_health
from store.services.metrics import MetricsSnapshot, read_metrics

ACTIVITY_LINES = 30  # as many as fit; the feed clips the rest
TILES = (
    ("alert", "Alert level"),
    ("worker-runs", "Worker runs"),
    ("executions", "Executions"),
    ("executive", "Executive sends"),
    ("failed", "Failed deliveries"),
    ("health", "Health (7)"),
)


class DashboardScreen(CavraScreen):
    TITLE: ClassVar[str] = "Dashboard"
    FILTERABLE: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self._scheduler_status: SchedulerStatus | None = None
        self._schedule_counts: dict[str, int] | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="dashboard"):
            with Grid(id="tiles"):
                for key, label in TILES:
                    yield MetricTile(label, id=f"tile-{key}")
            with Horizontal(id="sparks"):
                yield HourlySparkline("Deliveries/h", id="spark-deliveries")
                yield HourlySparkline("Failures/h", id="spark-failures")
            with Horizontal(id="lower"):
                yield SchedulerPane(id="scheduler-pane", classes="panel")
                yield ActivityFeed(id="activity", classes="panel")

    def reload(self, merge: bool = False) -> None:
        ctx, now = self.runtime.ctx, self.runtime.ctx.clock()
        holder = self.cavra.scheduler_holder
        self.load("metrics", lambda: read_metrics(ctx, now), self.show_metrics)
        ctx = self.runtime.ctx
        self.load("health", lambda: read_health(ctx), self.show_health)
        self.load("scheduler", lambda: read_scheduler_status(ctx, now, me=holder),
                  self.show_scheduler)
        self.load("activity", lambda: list_audit_events(ctx, limit=ACTIVITY_LINES).items,
                  self.show_activity)

    def on_mount(self) -> None:
        self.query_one("#scheduler-pane").border_title = "Scheduler"
        self.query_one("#activity").border_title = "Recent activity"

    def show_metrics(self, message: DataLoaded[MetricsSnapshot]) -> None:
        metrics = message.payload
        self.cavra.note_alert_level(metrics.alert_level)
        self.refresh_header()
        day = metrics.last_24h
        level = {"healthy": "ok", "warning": "warning", "critical": "critical"}
        pending = metrics.acknowledgement_pending
        self._tile("alert", metrics.alert_level,
                   f"{metrics.open_escalations} open · {pending} awaiting ack",
                   level[metrics.alert_level])
        runs = metrics.retry_worker_runs
        self._tile("worker-runs", f"{runs['dry_run']} dry · {runs['live']} live",
                   f"24h: {day['retry_worker_runs']['dry_run']} dry · "
                   f"{day['retry_worker_runs']['live']} live")
        outcomes = metrics.retry_executions
        failed_exec = outcomes["failed"] + outcomes["unknown"]
        self._tile("executions", f"{outcomes['delivered']} ok · {failed_exec} failed",
                   f"{outcomes['dry_run']} dry · {outcomes['blocked']} blocked · "
                   f"{outcomes['skipped']} skip", "warning" if failed_exec else "ok")
        executive = metrics.executive_deliveries
        resent = metrics.report_retry_executions.get("delivered", 0)
        self._tile("executive", f"{executive['delivered']} sent · {executive['failed']} failed",
                   f"24h: {day['executive_deliveries']['delivered']} sent · {resent} resent",
                   "warning" if executive["failed"] else "ok")
        failed = metrics.failed_deliveries
        self._tile("failed", f"{failed['escalation'] + failed['executive']}",
                   f"esc {failed['escalation']} · exec {failed['executive']}",
                   "warning" if sum(day["failed_deliveries"].values()) else "ok")
        self.query_one("#spark-deliveries", HourlySparkline).show(metrics.hourly["deliveries"])
        self.query_one("#spark-failures", HourlySparkline).show(metrics.hourly["failures"])
        self._schedule_counts = metrics.schedules
        self._show_scheduler()

    def show_health(self, message: DataLoaded[HealthReport]) -> None:
        """The worst alert of `cavra health`; screen 7 lists them all with their figures."""
        report = message.payload
        order = {"critical": 0, "warning": 1, "info": 2}
        alerts = sorted(report.alerts, key=lambda a: order.get(a.severity, 3))
        worst = next((a for a in alerts if a.severity != "info"), None)
        detail = "no alerts" if worst is None else worst.code + (
            f" +{len(alerts) - 1}" if len(alerts) > 1 else "")
        self._tile("health", report.status, detail,
                   {"healthy": "ok", "warning": "warning", "critical": "critical"}[report.status])

    def _tile(self, key: str, value: str, detail: str, level: str = "ok") -> None:
        self.query_one(f"#tile-{key}", MetricTile).show(value, detail, level)

    def show_scheduler(self, message: DataLoaded[SchedulerStatus]) -> None:
        self._scheduler_status = message.payload
        self._show_scheduler()

    def _show_scheduler(self) -> None:
        # Status and counts arrive from two queries; show whatever has arrived.
        if self._scheduler_status is not None:
            self.query_one(SchedulerPane).show(self._scheduler_status, self._schedule_counts)

    def show_activity(self, message: DataLoaded[list[AuditEvent]]) -> None:
        self.query_one(ActivityFeed).show(message.payload)
