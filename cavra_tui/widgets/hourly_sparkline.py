"""A titled sparkline of a per-hour series (last 24 hours, oldest first)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline


class HourlySparkline(Vertical):
    def __init__(self, title: str, *, id: str) -> None:
        super().__init__(id=id, classes="spark")
        self._title = title

    def compose(self) -> ComposeResult:
        yield Label(self._title, classes="spark-title")
        yield Sparkline([0] * 24, summary_function=max)

    def show(self, series: Sequence[int]) -> None:
        self.query_one(Label).update(f"{self._title}: {sum(series)} in 24 h, "
                                     f"peak {max(series, default=0)}/h")
        self.query_one(Sparkline).data = list(series)
