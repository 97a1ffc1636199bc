"""The console could not start (a bad config file, a path that is not a database): the one
line the command line would print, on a clear screen, until the person quits."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from cavra_tui.widgets.header import ConsoleHeader


class StartFailedScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "quit", "Quit")]

    def __init__(self, reason: str, exit_code: int) -> None:
        super().__init__()
        self.reason = reason
        self.exit_code = exit_code  # what `cavra` exits with, as the command line would

    def compose(self) -> ComposeResult:
        yield ConsoleHeader("CAVRA │ could not start", id="header")
        with Vertical(id="start-failed"):
            yield Static("The console could not start.", classes="start-title")
            yield Static(self.reason, id="start-reason")
            yield Static("Press q to quit.", classes="start-hint")
        yield Footer(compact=True)

    def action_quit(self) -> None:
        self.app.exit(return_code=self.exit_code)
