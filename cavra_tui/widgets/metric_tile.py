"""One dashboard number with a label and a line of detail."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label


class MetricTile(Vertical):
    """``level`` (ok / warning / critical) becomes a CSS class; the value is text."""

    def __init__(self, label: str, *, id: str) -> None:
        super().__init__(id=id, classes="tile")
        self._label = label

    def compose(self) -> ComposeResult:
        yield Label(self._label, classes="tile-label")
        yield Label("…", classes="tile-value")
        yield Label("", classes="tile-detail")

    def show(self, value: str, detail: str = "", level: str = "ok") -> None:
        self.query_one(".tile-value", Label).update(value)
        self.query_one(".tile-detail", Label).update(detail)
        for name in ("ok", "warning", "critical"):
            self.set_class(level == name, f"-{name}")
