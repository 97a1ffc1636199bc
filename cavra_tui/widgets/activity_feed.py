"""The newest audit events, one line each: the dashboard's "recent activity"."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from cavra_tui.formatting import status, when
from store.models import AuditEvent


class ActivityFeed(Static):
    def show(self, events: Sequence[AuditEvent]) -> None:
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
        if not events:
            table.add_row(Text("no activity yet", style="dim"))
        for event in events:
            table.add_row(when(event.at), status(event.decision), event.action,
                          f"{event.actor}: {event.detail}")
        self.update(table)
