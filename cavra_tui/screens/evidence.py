"""`e` on an execution: its evidence chain on top of the screen it was asked from; Esc or
Backspace goes back there (the Audit screen shows the same chain beside the events)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Label, Static

from cavra_tui.screens.modal import CavraModal


class EvidenceView(CavraModal[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Back"),
        Binding("backspace", "dismiss", "Back", show=False),
    ]

    def __init__(self, record_id: str) -> None:
        super().__init__()
        self.record_id = record_id

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="evidence-view", classes="dialog"):
            yield Label(f"Evidence › {self.record_id}", classes="dialog-title")
            yield Static(Text("loading…", style="dim"), id="evidence-view-body")
            yield Label("Esc goes back · Enter on the execution in its list shows every "
                        "field", id="detail-hint")

    def on_mount(self) -> None:
        ctx = self.app.runtime.ctx  # type: ignore[attr-defined]
        record_id = self.record_id

        def fetch() -> Any:
            from store.services.evidence import evidence_chain

            return evidence_chain(ctx, record_id)

        self.run_worker(fetch, thread=True, name="evidence", exit_on_error=False)

    def on_worker_state_changed(self, event: Any) -> None:
        worker = event.worker
        if worker.name != "evidence" or not worker.is_finished:
            return
        from cavra_tui.screens.audit import evidence_text

        body = self.query_one("#evidence-view-body", Static)
        if worker.error is not None:
            body.update(Text(f"✗ no evidence for {self.record_id}: {worker.error}",
                             style="red"))
            return
        body.update(evidence_text(worker.result))
