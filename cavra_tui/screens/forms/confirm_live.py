"""The live-run confirmation: what the dry-run says a live run would send, and to whom."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Label

from cavra_tui.formatting import short, status
from cavra_tui.screens.modal import CavraModal
from cavra_tui.workflow import LivePreview

GATE_WORDS = {"acknowledgement_required": "needs ack", "separation_of_duties": "duties"}


class ConfirmLiveRun(CavraModal[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, preview: LivePreview) -> None:
        super().__init__()
        self.preview = preview

    @property
    def executive(self) -> bool:
        return self.preview.subject == "executive"

    @property
    def refused(self) -> str | None:
        if self.preview.sendable > 0:
            return None
        gates = set(self.preview.blocked.values())
        if gates == {"acknowledgement_required"}:
            return ("refused: every pair needs an acknowledgement (accepted, acknowledged or "
                    "resolved) before a live retry")
        if gates:
            return f"refused: every pair is blocked ({', '.join(sorted(gates))})"
        return "refused: nothing is due for retry"

    def compose(self) -> ComposeResult:
        run = self.preview.dry_run.run
        with Vertical(id="confirm-live", classes="dialog"):
            yield Label("Live executive re-send — review before sending"
                        if self.executive else "Live retry run — review before sending",
                        classes="dialog-title")
            yield Label(f"dry-run {run.run_id}: {self.preview.sendable} to send, "
                        f"{len(self.preview.blocked_pairs)} blocked, "
                        f"{run.summary.get('waiting', 0)} waiting, "
                        f"{run.summary.get('suppressed', 0)} suppressed")
            yield DataTable(id="preview-table", cursor_type="row")
            if self.refused:
                yield Label(f"✗ {self.refused}", id="refusal", classes="error -shown")
            elif self.preview.blocked_pairs:
                yield Label(f"△ {len(self.preview.blocked_pairs)} pair(s) lack an "
                            "acknowledgement and will be recorded as blocked", classes="warning")
            with Horizontal(classes="buttons"):
                yield Button("Send live", variant="error", id="confirm-send",
                             disabled=self.refused is not None, compact=True)
                yield Button("Cancel", id="confirm-cancel", compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#preview-table", DataTable)
        # The payload digest before the long key, so both fit (or the digest does) at 80×24.
        executive = self.executive  # executive reports are not acknowledged: no Ack column
        table.add_columns("Will", "Run/provider" if executive else "Plan/provider",
                          *(() if executive else ("Ack",)), "Payload", "Idempotency key")
        blocked = self.preview.blocked
        for e in self.preview.dry_run.executions:
            pair = (e.plan_id, e.provider)
            will = (Text(f"■ {GATE_WORDS.get(blocked[pair], 'blocked')}", style="magenta")
                    if pair in blocked else
                    Text("→ send", style="bold") if e.status == "dry_run" else status(e.status))
            ack = () if executive else (self.preview.ack_states.get(pair) or "none",)
            table.add_row(will, f"{e.plan_id}/{e.provider}", *ack, short(e.payload_sha256),
                          e.idempotency_key, key=e.execution_id)
        self.query_one("#confirm-cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-send" and self.refused is None)

    def action_cancel(self) -> None:
        self.dismiss(False)
