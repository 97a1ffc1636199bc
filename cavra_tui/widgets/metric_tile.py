"""One dashboard number with a label and a line of detail."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from cavra_tui import glyphs


class MetricTile(Static):
    """A single widget (three lines of text), so six tiles stay cheap to lay out and paint.

    ``level`` (ok / warning / critical) becomes a CSS class that colours the tile.
    """

    def __init__(self, label: str, *, id: str) -> None:
        super().__init__(id=id, classes="tile")
        self._label = label
        self.show(glyphs.text("…"))

    def show(self, value: str, detail: str = "", level: str = "ok") -> None:
        self.update(Content.from_markup("[dim]$label[/]\n[b]$value[/]\n[dim]$detail[/]",
                                        label=self._label, value=value, detail=detail))
        for name in ("ok", "warning", "critical"):
            self.set_class(level == name, f"-{name}")
