"""Executive deliveries: schedule runs, their deliveries, schedules, and the report preview."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Markdown

from cavra_tui import actions
from cavra_tui.formatting import status, when
from cavra_tui.messages import DataLoaded
from cavra_tui.screens.base import CavraScreen
from cavra_tui.widgets.record_table import RecordTable, Row
from scheduler.status import ScheduleStatus, read_scheduler_status
from store.models import Delivery, ExecutiveReport, ScheduleRun
from store.rules.messages import duration_words, report_headline, sparkline, window_words
from store.services.listing import list_deliveries, list_schedule_runs
from store.services.reports import get_schedule_run

RUN_COLUMNS = (("When", "when"), ("Run", "run"), ("Trigger", "trigger"), ("Report", "report"))
DELIVERY_COLUMNS = (("When", "when"), ("Provider", "provider"), ("Status", "status"),
                    ("Code", "code"), ("Run", "run"))
# State first: at 80 columns the last column is cut off.
SCHEDULE_COLUMNS = (("On", "on"), ("Name", "name"), ("Next", "next"), ("Kind", "kind"),
                    ("Trigger", "trigger"))


def run_row(run: ScheduleRun) -> Row:
    return run.run_id, (when(run.created_at), run.run_id, run.trigger, run.report_id)


def delivery_row(d: Delivery) -> Row:
    code = str(d.status_code) if d.status_code is not None else "-"
    return d.delivery_id, (when(d.created_at), d.provider, status(d.status), code,
                           d.schedule_run_id or "-")


def schedule_row(s: ScheduleStatus) -> Row:
    return s.schedule_id, ("yes" if s.enabled else "no", s.name, s.next_run_local or "-",
                           s.kind + (" live" if s.live else ""), s.trigger)


def report_markdown(run: ScheduleRun, report: ExecutiveReport) -> str:
    """The executive summary as it reads in a delivery: derived data only, no private notes.
    The figures and their rules: ``store.rules.report``."""
    body: dict[str, Any] = report.body
    zone = str(body.get("timezone") or "UTC")
    lines = [f"## Report {report.report_id}", "", f"**{report_headline(report)}**", "",
             f"Window {window_words(report.window_start, report.window_end, zone)} · "
             f"run {run.run_id}", "", body.get("business_impact", ""), "", "### Key risks", ""]
    # Lists, not wide tables: the preview panel is narrow at 80 columns.
    # Plain "severity:" (Textual's Markdown drops the space after a bold word).
    lines += [f"- {r['severity']}: {r['risk']}"
              + (f" · oldest {duration_words(r['oldest_minutes'])}" if "oldest_minutes" in r
                 else "") + f" · owner {r['owner']}" for r in body.get("key_risks", [])] or [
        "- none"]
    lines += ["", "### Recommended actions", ""]
    lines += [f"- {action}" for action in body.get("recommended_actions", [])]
    summary = body.get("provider_summary", [])
    if summary:
        lines += ["", "### Escalation notifications in the window", ""]
        lines += [f"- {p['provider']}: {p.get('delivered', 0)} delivered, "
                  f"{p.get('failed', 0)} failed, {p.get('unknown', 0)} unconfirmed, "
                  f"{p.get('in_flight', 0)} sending" for p in summary]
    trend = body.get("closure_trend", [])
    if trend:
        opened = [t["opened"] for t in trend]
        lines += ["", "### Closure trend (UTC days)", "",
                  f"opened `{sparkline(opened)}` · closed "
                  f"`{sparkline([t['closed'] for t in trend] + [max(opened)])[:-1]}`", "",
                  "| day | opened | closed |", "|---|---|---|"]
        lines += [f"| {t['day']} | {t['opened']} | {t['closed']} |" for t in trend]
    return "\n".join(lines)


class ExecutiveScreen(CavraScreen):
    TITLE: ClassVar[str] = "Executive"
    BINDINGS: ClassVar[list[BindingType]] = actions.bindings("executive")

    def __init__(self) -> None:
        super().__init__()
        self._preview_for: str | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(classes="split"):
            with Vertical(classes="stack"):
                yield RecordTable(RUN_COLUMNS, id="schedule-runs", title="Schedule runs")
                yield RecordTable(DELIVERY_COLUMNS, id="exec-deliveries",
                                  title="Executive deliveries")
                yield RecordTable(SCHEDULE_COLUMNS, id="schedules", title="Schedules")
            with VerticalScroll(id="preview", classes="panel"):
                yield Markdown("Select a schedule run to preview its report.", id="report")

    def on_mount(self) -> None:
        ctx = self.runtime.ctx
        self.page_table("schedule-runs", lambda cursor, search: list_schedule_runs(
            ctx, cursor=cursor, search=search), run_row)
        self.page_table("exec-deliveries", lambda cursor, search: list_deliveries(
            ctx, kind="executive", cursor=cursor, search=search), delivery_row)
        self.query_one("#preview").border_title = "Report preview"

    def reload(self, merge: bool = False) -> None:
        ctx, now = self.runtime.ctx, self.runtime.ctx.clock()
        self.reload_table("schedule-runs", merge=merge)
        self.reload_table("exec-deliveries", merge=merge)
        self.load("schedules", lambda: read_scheduler_status(ctx, now).schedules,
                  self.show_schedules)

    def show_schedules(self, message: DataLoaded[list[ScheduleStatus]]) -> None:
        self.query_one("#schedules", RecordTable).show_rows(
            [schedule_row(s) for s in message.payload], has_more=False)

    def selected(self, kind: str) -> str | None:
        if kind == "schedule_run":
            return self.query_one("#schedule-runs", RecordTable).selected_id()
        if kind == "evidence":
            return self.query_one("#exec-deliveries", RecordTable).selected_id()
        if kind == "schedule":
            return self.query_one("#schedules", RecordTable).selected_id()
        return None

    def table_shown(self, table_id: str) -> None:
        if table_id == "schedule-runs":
            self._preview(self.selected("schedule_run"))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "schedule-runs":
            self._preview(event.row_key.value)

    def _preview(self, run_id: str | None) -> None:
        if run_id is None or run_id == self._preview_for:
            return
        self._preview_for = run_id
        ctx = self.runtime.ctx

        def fetch() -> tuple[ScheduleRun, ExecutiveReport]:
            return get_schedule_run(ctx, run_id)

        self.load("report", fetch, self.show_report)

    def show_report(self, message: DataLoaded[tuple[ScheduleRun, ExecutiveReport]]) -> None:
        run, report = message.payload
        if run.run_id == self._preview_for:
            self.query_one("#report", Markdown).update(report_markdown(run, report))
