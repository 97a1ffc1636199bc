"""Audit: the hash chain's status, its events, and the evidence chain behind a record."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Static

from cavra_tui import actions
from cavra_tui.formatting import short, status, when
from cavra_tui.messages import ActionFailed, CursorMovedByUser, DataLoaded
from cavra_tui.screens.base import CavraScreen
from cavra_tui.widgets.record_table import RecordTable, Row
from store.ids import kind_of
from store.models import AuditEvent, EvidenceChain, WorkerRun
from store.services.audit_verify import AuditStatus, audit_status
from store.services.evidence import evidence_chain
from store.services.listing import list_audit_events
from store.services.records import audit_event_id

EVENT_COLUMNS = (("Seq", "seq"), ("When", "when"), ("Decision", "decision"),
                 ("Action", "action"), ("Actor", "actor"), ("Detail", "detail"))


def event_row(event: AuditEvent) -> Row:
    return str(event.seq), (str(event.seq), when(event.at), status(event.decision),
                            event.action, event.actor, event.detail)


def evidence_target(event: AuditEvent) -> str | None:
    """The first execution or delivery an event names: what its evidence chain hangs on."""
    return next((t for t in event.target_ids if kind_of(t) in ("execution", "delivery")), None)


def evidence_text(chain: EvidenceChain) -> Group:
    """The bound chain as a few readable lines, newest link last."""
    lines: list[Text] = [Text(f"evidence for {chain.id}", style="bold")]
    execution = chain.execution
    if execution:
        lines.append(Text.assemble("execution  ", status(execution.status),
                                   f" {execution.reason}  sha "
                                   f"{short(execution.execution_sha256)}"
                                   f"  key {execution.idempotency_key}"))
    run = chain.worker_run
    if isinstance(run, WorkerRun):
        lines.append(Text(f"worker run {run.run_id}  {run.mode} {run.trigger}"))
    elif run is not None:
        lines.append(Text(f"worker run {run.run_id}  {run.status}"))
    decision = chain.retry_decision
    if decision:
        lines.append(Text(f"decision   {decision['action']} ({decision['reason']}), "
                          f"retries {decision['retry_count']}"))
    delivery = chain.delivery
    if delivery:
        code = delivery.status_code
        lines.append(Text.assemble("delivery   ", status(delivery.status),
                                   f" {delivery.delivery_id} {delivery.provider}"
                                   f"{f' HTTP {code}' if code is not None else ''}"
                                   f"  target {delivery.target}"
                                   f"  payload {short(delivery.payload_sha256)}"))
    if chain.schedule_run:
        lines.append(Text(f"schedule   run {chain.schedule_run.run_id} report "
                          f"{chain.schedule_run.report_id}"))
    plan = chain.escalation_plan
    if plan:
        lines.append(Text.assemble("plan       ", status(plan.alert_level),
                                   f" {plan.plan_id} → {', '.join(plan.selected_providers)}"))
    for ack in chain.acknowledgements:
        lines.append(Text.assemble("ack        ", status(ack.state),
                                   f" {ack.provider} by {ack.acknowledged_by} "
                                   f"{when(ack.created_at)}"))
    for event in reversed(chain.audit_events):
        lines.append(Text.assemble(f"audit #{event.seq:<4} ", status(event.decision),
                                   f" {event.action}  {short(event.sha256)}"))
    return Group(*lines)


def checkpoint_text(state: AuditStatus) -> Text:
    """The latest checkpoint, whether the chain still agrees with it, and the signing mode."""
    if not state.witnesses and state.checkpoint is None:
        return Text(f"no audit witness configured (audience = [\"audit\"]) · "
                    f"{state.event_signing}")
    modes = f"{state.checkpoint_signing} checkpoints · {state.event_signing}"
    latest = state.checkpoint
    if latest is None:
        return Text(f"no checkpoint yet (w writes one) · {modes}")
    point = latest.checkpoint
    sent = ", ".join(f"{w['witness']} {w['status']}" for w in latest.witnesses) or "no witness"
    verdict = ("agrees" if state.checkpoint_agrees
               else "DISAGREES: the chain was changed after it")
    return Text(f"checkpoint seq {point.seq} {when(point.at)} → {sent} · {verdict} · {modes}")


class AuditScreen(CavraScreen):
    TITLE: ClassVar[str] = "Audit"
    BINDINGS: ClassVar[list[BindingType]] = actions.bindings("audit")

    def __init__(self) -> None:
        super().__init__()
        self._evidence_for: str | None = None
        self._pinned: str | None = None  # an ID typed or sent from another screen
        self._targets: dict[str, str] = {}  # audit seq → the record its evidence hangs on

    def compose_body(self) -> ComposeResult:
        with Vertical(classes="stack"):
            yield Static("audit chain: checking…", id="chain-status")
            yield Static("checkpoint: -", id="checkpoint-status")
            yield RecordTable(EVENT_COLUMNS, id="events", title="Audit events (newest first)")
            yield Input(placeholder="execution (exe-…) or delivery (dlv-…) ID, then Enter",
                        id="evidence-id", classes="-hidden", disabled=True)
            with VerticalScroll(id="evidence", classes="panel"):
                yield Static("Highlight an event that names an execution or a delivery.",
                             id="evidence-body")

    def on_mount(self) -> None:
        ctx = self.runtime.ctx
        self.page_table("events", lambda cursor, search: list_audit_events(
            ctx, cursor=cursor, search=search), self._event_row)
        self.query_one("#evidence").border_title = "Evidence chain"
        # The chain is verified by reload, after the first paint and the events.

    def _event_row(self, event: AuditEvent) -> Row:
        target = evidence_target(event)
        if target:
            self._targets[str(event.seq)] = target
        return event_row(event)

    def reload(self, merge: bool = False) -> None:
        self.reload_table("events", merge=merge)
        if self._pinned:
            self._load_evidence(self._pinned, force=True)
        self._verify()  # every reload: the chain grew (or was changed) since the last check

    async def action_verify(self) -> None:
        """The status lines at once; the full check (evidence, witness files) as an action."""
        self.query_one("#chain-status", Static).update("audit chain: checking…")
        self._verify()
        await self.run_action("app.verify_audit")

    def _verify(self) -> None:
        ctx = self.runtime.ctx
        self.load("chain", lambda: audit_status(ctx), self.show_chain)

    def show_chain(self, message: DataLoaded[AuditStatus]) -> None:
        state = message.payload
        report = state.chain
        box = self.query_one("#chain-status", Static)
        box.update(Text.assemble(status("allow" if report.ok else "deny"), " ",
                                 report.describe()))
        box.set_class(not report.ok, "-broken")
        line = self.query_one("#checkpoint-status", Static)
        line.update(checkpoint_text(state))
        line.set_class(state.checkpoint_agrees is False, "-broken")

    def action_close_filter(self) -> None:
        """Escape closes the evidence-ID box first, then (as everywhere) the filter."""
        box = self.query_one("#evidence-id", Input)
        if box.has_class("-hidden"):
            super().action_close_filter()
            return
        box.value = ""
        box.add_class("-hidden")
        box.disabled = True
        self.query_one("#events", RecordTable).focus()

    def action_ask_evidence(self) -> None:
        box = self.query_one("#evidence-id", Input)
        box.disabled = False
        box.remove_class("-hidden")
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "evidence-id":
            return
        event.stop()
        event.input.add_class("-hidden")
        event.input.disabled = True
        record_id = event.value.strip()
        event.input.value = ""
        if record_id:
            self.show_evidence_for(record_id)
        else:
            self._pinned = None  # back to following the highlighted event
        self.query_one("#events", RecordTable).focus()

    def show_evidence_for(self, record_id: str) -> None:
        self._pinned = record_id
        self._load_evidence(record_id, force=True)

    def selected(self, kind: str) -> str | None:
        return self._evidence_for if kind == "evidence" else None

    def record_id_of(self, table_id: str, row_key: str) -> str:
        """The event rows are keyed by seq; as a record an event is ``audit:<seq>``."""
        return audit_event_id(int(row_key)) if table_id == "events" else row_key

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id != "events" or self._pinned:
            return
        target = self._targets.get(event.row_key.value or "")
        if target:
            self._load_evidence(target)

    def on_cursor_moved_by_user(self, message: CursorMovedByUser) -> None:
        """Moving through the events means "follow the highlighted event" again."""
        if message.table_id != "events" or not self._pinned:
            return
        self._pinned = None
        target = self._targets.get(self.query_one("#events", RecordTable).selected_id() or "")
        if target:
            self._load_evidence(target)

    def on_action_failed(self, message: ActionFailed) -> None:
        if message.action == "load evidence" and self._pinned:
            # An unknown ID: say so once, here, and stop asking for it on every reload.
            self.query_one("#evidence-body", Static).update(
                Text(f"✗ no evidence for {self._pinned}: {message.reason}"))
            self._pinned = self._evidence_for = None
        # CavraScreen.on_action_failed runs next (Textual calls each class's handler).

    def _load_evidence(self, record_id: str, force: bool = False) -> None:
        if record_id == self._evidence_for and not force:
            return
        self._evidence_for = record_id
        ctx = self.runtime.ctx
        self.load("evidence", lambda: evidence_chain(ctx, record_id), self.show_evidence)

    def show_evidence(self, message: DataLoaded[EvidenceChain]) -> None:
        self.query_one("#evidence-body", Static).update(evidence_text(message.payload))
