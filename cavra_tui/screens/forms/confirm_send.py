"""The send confirmation: what a deliver action would send, where and as whom, before it
does (SPEC §11). Cancel has the focus; Escape cancels."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Label

from cavra_tui.screens.modal import CavraModal
from cavra_tui.workflow import SendPreview


class ConfirmSend(CavraModal[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, preview: SendPreview) -> None:
        super().__init__()
        self.preview = preview

    def compose(self) -> ComposeResult:
        preview = self.preview
        with Vertical(id="confirm-send-dialog", classes="dialog"):
            yield Label(f"Send {preview.what}? — review before sending", classes="dialog-title")
            yield Label(f"{len(preview.rows)} provider(s), sent by {preview.actor}; a failure "
                        "is recorded and can be retried")
            yield DataTable(id="preview-table", cursor_type="row")
            if preview.left_out:
                yield Label(f"△ not sent again: {', '.join(preview.left_out)}",
                            classes="warning")
            with Horizontal(classes="buttons"):
                yield Button("Send", variant="warning", id="send-confirm", compact=True)
                yield Button("Cancel", id="send-cancel", compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#preview-table", DataTable)
        table.add_columns("Provider", "Target", "Attempt", "Idempotency key")
        for provider, target, attempt, key in self.preview.rows:
            table.add_row(provider, target, attempt, key, key=provider)
        self.query_one("#send-cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "send-confirm")

    def action_cancel(self) -> None:
        self.dismiss(False)
