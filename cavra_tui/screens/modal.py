"""What every console modal shares: its own footer, so the keys shown while it is open are
the modal's (Esc, Enter …), never those of the screen underneath."""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen
from textual.widgets import Footer

ResultType = TypeVar("ResultType")


class CavraModal(ModalScreen[ResultType]):
    def on_mount(self) -> None:
        # Subclasses' own on_mount handlers run as well (Textual calls each class's).
        self.mount(Footer(compact=True))
