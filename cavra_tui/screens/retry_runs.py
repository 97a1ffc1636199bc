"""Retry runs: worker runs, the execution records they left, and retry plans (SPEC §5.4–5.5)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical

from cavra_tui import actions
from cavra_tui.formatting import counts, short, status, when
from cavra_tui.screens.base import CavraScreen
from cavra_tui.widgets.record_table import RecordTable, Row
from store.models import ExecutionRecord, WorkerRun
from store.services.listing import (
    RetryPlanSummary,
    list_executions,
    list_retry_plans,
    list_worker_runs,
)

RUN_COLUMNS = (("When", "when"), ("Run", "run"), ("Mode", "mode"), ("Trigger", "trigger"),
               ("Summary", "summary"))
# Status and reason first: at 80 columns the last columns are cut off.
EXECUTION_COLUMNS = (("When", "when"), ("Status", "status"), ("Reason", "reason"),
                     ("Plan/provider", "pair"), ("Key", "key"), ("Payload", "payload"),
                     ("Execution", "execution"))
RETRY_PLAN_COLUMNS = (("When", "when"), ("Retry plan", "plan"), ("Decisions", "counts"),
                      ("By", "by"))


def run_row(run: WorkerRun) -> Row:
    mode = status("live") if run.mode == "live" else status("dry_run")
    return run.run_id, (when(run.created_at), run.run_id, mode, run.trigger, counts(run.summary))


def execution_row(e: ExecutionRecord) -> Row:
    return e.execution_id, (when(e.executed_at), status(e.status), e.reason,
                            f"{e.plan_id}/{e.provider}", e.idempotency_key,
                            short(e.payload_sha256),
                            e.execution_id)


def retry_plan_row(plan: RetryPlanSummary) -> Row:
    return plan.retry_plan_id, (when(plan.created_at), plan.retry_plan_id,
                                counts(plan.counts, keep_zero=True), plan.created_by)


class RetryRunsScreen(CavraScreen):
    TITLE: ClassVar[str] = "Retry runs"
    LOAD_AT_MOUNT: ClassVar[bool] = True
    BINDINGS: ClassVar[list[BindingType]] = actions.bindings("retry_runs")

    def compose_body(self) -> ComposeResult:
        with Vertical(classes="stack"):
            yield RecordTable(RUN_COLUMNS, id="runs", title="Worker runs")
            yield RecordTable(EXECUTION_COLUMNS, id="executions", title="Execution records")
            yield RecordTable(RETRY_PLAN_COLUMNS, id="retry-plans", title="Retry plans")

    def on_mount(self) -> None:
        ctx = self.runtime.ctx
        self.page_table("runs", lambda cursor, search: list_worker_runs(
            ctx, cursor=cursor, search=search), run_row)
        self.page_table("executions", lambda cursor, search: list_executions(
            ctx, cursor=cursor, search=search), execution_row)
        self.page_table("retry-plans", lambda cursor, search: list_retry_plans(
            ctx, cursor=cursor, search=search), retry_plan_row)

    def reload(self, merge: bool = False) -> None:
        for table in ("runs", "executions", "retry-plans"):
            self.reload_table(table, merge=merge)

    def selected(self, kind: str) -> str | None:
        if kind in ("execution", "evidence"):
            return self.query_one("#executions", RecordTable).selected_id()
        if kind == "worker_run":
            return self.query_one("#runs", RecordTable).selected_id()
        return None
