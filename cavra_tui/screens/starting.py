"""What the console shows while it opens the database: the header line and one sentence.

Textual only: it is the first frame, painted before the store, SQLAlchemy and pydantic load.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static

from cavra_tui.widgets.header import ConsoleHeader


class StartingScreen(Screen[None]):
    def compose(self) -> ComposeResult:
        yield ConsoleHeader("CAVRA │ starting", id="header")
        yield Static("Opening the database…", id="starting", classes="start-message")
        yield Footer(compact=True)
