"""Messages: every notification this console showed, newest first, so nothing is lost when
a toast goes (like lazygit's command log). `m` opens it, Escape closes it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Label

from cavra_tui.screens.modal import CavraModal
from store.text import visible

LEVEL_STYLE = {"error": "bold red", "warning": "yellow", "information": ""}


@dataclass(frozen=True)
class LoggedMessage:
    at: datetime
    severity: str
    title: str
    text: str


class MessagesScreen(CavraModal[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("m", "dismiss", "Close", show=False),
    ]

    def __init__(self, messages: list[LoggedMessage]) -> None:
        super().__init__()
        self.messages = messages

    def compose(self) -> ComposeResult:
        with Vertical(id="messages", classes="dialog"):
            yield Label(f"Messages ({len(self.messages)}, newest first) — Esc closes",
                        classes="dialog-title")
            yield DataTable(id="messages-table", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one("#messages-table", DataTable)
        table.add_column("When", width=8)
        table.add_column("Level", width=11)
        # The message wraps inside the dialog (96 columns at most): shown in full, never cut.
        table.add_column("Message", width=max(20, min(self.app.size.width, 96) - 36))
        for message in reversed(self.messages):
            text = f"{message.title}: {message.text}" if message.title else message.text
            table.add_row(f"{message.at:%H:%M:%S}",
                          Text(message.severity, style=LEVEL_STYLE.get(message.severity, "")),
                          Text(visible(" ".join(text.split()))), height=None)
        if not self.messages:
            table.add_row("", "", Text("no messages yet", style="dim"))
        table.focus()
