"""The scheduler's state (leader / standby / stopped) and each schedule's next and last run."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from cavra_tui.formatting import when
from scheduler.status import SchedulerStatus


class SchedulerPane(Static):
    def show(self, status: SchedulerStatus, counts: dict[str, int] | None = None) -> None:
        for state in ("leader", "standby", "stopped"):
            self.set_class(status.state == state, f"-{state}")
        head = Text(f"scheduler {status.state}", style="bold")
        if status.leader and status.state != "leader":
            head.append(f" (leader {status.leader})")
        if counts:
            head.append(f" · runs {counts.get('runs', 0)} · missed {counts.get('missed', 0)}"
                        f" · errors {counts.get('errors', 0)}")
        table = Table.grid(padding=(0, 1))
        for _ in range(5):
            table.add_column(no_wrap=True, overflow="ellipsis")
        if not status.schedules:
            table.add_row(Text("no schedules (cavra schedule add …)", style="dim"))
        for item in status.schedules:
            state = "on" if item.enabled else "off"
            table.add_row(item.name, f"{item.kind}{' live' if item.live else ''}", state,
                          f"next {when(item.next_run_at)}", f"last {when(item.last_run_at)}")
        grid = Table.grid()
        grid.add_row(head)
        grid.add_row(table)
        self.update(grid)
