"""Health: every alert of `cavra health` with the figures behind it, and the executive
delivery retry plan (SPEC §5.7)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from cavra_tui.formatting import status, when
from cavra_tui.messages import DataLoaded
from cavra_tui.screens.base import CavraScreen
from cavra_tui.widgets.record_table import RecordTable, Row
from store.models import RetryDecision
from store.services.health import HealthAlert, HealthReport, read_health
from store.text import visible

ALERT_COLUMNS = (("Severity", "severity"), ("Alert", "alert"), ("What", "what"))
EXECUTIVE_COLUMNS = (("Action", "action"), ("Reason", "reason"), ("Run/provider", "pair"),
                     ("Next", "next"), ("Key", "key"))
SEVERITY_STYLE = {"critical": "▲", "warning": "△", "info": "·"}


def alert_row(alert: HealthAlert) -> Row:
    glyph = SEVERITY_STYLE.get(alert.severity, "·")
    style = {"critical": "bold red", "warning": "yellow"}.get(alert.severity, "dim")
    return alert.code, (Text(f"{glyph} {alert.severity}", style=style), alert.code,
                        alert.message)


def decision_row(d: RetryDecision) -> Row:
    return d.idempotency_key, (status(d.action), d.reason, f"{d.plan_id}/{d.provider}",
                               when(d.next_retry_at), d.idempotency_key)


def figures_text(alert: HealthAlert | None) -> Text:
    """The counts and ages behind one alert, a line each (stored text is shown escaped)."""
    if alert is None:
        return Text("No alerts: the loop is healthy.", style="dim")
    text = Text(f"{alert.code}\n", style="bold")
    text.append(visible(alert.message) + "\n\n")
    for name, value in alert.figures.items():
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else value
        text.append(f"{name.replace('_', ' ')}: ", style="dim")
        text.append(f"{visible(str(shown if shown is not None else '-'))}\n")
    return text


class HealthScreen(CavraScreen):
    TITLE: ClassVar[str] = "Health"
    FILTERABLE: ClassVar[bool] = False  # a handful of alerts: nothing to filter

    def __init__(self) -> None:
        super().__init__()
        self._alerts: dict[str, HealthAlert] = {}
        self._decisions: dict[str, RetryDecision] = {}

    def compose_body(self) -> ComposeResult:
        with Horizontal(classes="split"):
            with Vertical(classes="stack"):
                yield RecordTable(ALERT_COLUMNS, id="alerts", title="Alerts")
                yield RecordTable(EXECUTIVE_COLUMNS, id="executive-retry",
                                  title="Executive delivery retry plan")
            yield Static(figures_text(None), id="figures", classes="panel")

    def on_mount(self) -> None:
        self.query_one("#figures").border_title = "Figures"

    def reload(self, merge: bool = False) -> None:
        ctx = self.runtime.ctx
        self.load("health", lambda: read_health(ctx), self.show_health)

    def show_health(self, message: DataLoaded[HealthReport]) -> None:
        report = message.payload
        self._alerts = {alert.code: alert for alert in report.alerts}
        self._decisions = {d.idempotency_key: d for d in report.executive_retry}
        alerts = self.query_one("#alerts", RecordTable)
        alerts.border_title = f"Alerts · {report.status}"
        alerts.show_rows([alert_row(a) for a in report.alerts], has_more=False)
        self.query_one("#executive-retry", RecordTable).show_rows(
            [decision_row(d) for d in report.executive_retry], has_more=False)
        self._show_figures(alerts.selected_id())

    def inline_record(self, table_id: str, row_key: str) -> tuple[str, dict[str, Any]] | None:
        """An alert, or a decision of the executive retry plan, in full."""
        if table_id == "alerts" and row_key in self._alerts:
            return f"alert {row_key}", self._alerts[row_key].model_dump(mode="json")
        if table_id == "executive-retry":
            decision = self._decisions.get(row_key)
            if decision is not None:
                return f"decision {row_key}", decision.model_dump(mode="json")
        return None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "alerts":
            self._show_figures(event.row_key.value)

    def _show_figures(self, code: str | None) -> None:
        alert = self._alerts.get(code or "") or next(iter(self._alerts.values()), None)
        self.query_one("#figures", Static).update(figures_text(alert))
