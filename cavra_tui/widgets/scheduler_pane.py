"""The scheduler's state (leader / standby / stopped) and each schedule's next and last run."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from cavra_tui import glyphs
from cavra_tui.formatting import when
from scheduler.status import SchedulerStatus


class SchedulerPane(Static):
    """Two lines per schedule, so it stays readable in a third of 80 columns."""

    def show(self, status: SchedulerStatus, counts: dict[str, int] | None = None) -> None:
        for state in ("leader", "standby", "stopped"):
            self.set_class(status.state == state, f"-{state}")
        dot, cross = glyphs.text("·"), glyphs.text("✗")
        lines = [Text(f"{status.state}", style="bold")]
        if status.leader and status.state != "leader":
            lines[0].append(f" {dot} leader {status.leader}", style="")
        if counts:
            lines.append(Text(f"runs {counts.get('runs', 0)} {dot} missed "
                              f"{counts.get('missed', 0)} {dot} errors {counts.get('errors', 0)}"))
        for quiet in status.quiet[:3]:  # "quiet: NAME (providers) until HH:MM UTC"
            lines.append(Text(quiet.label, style="yellow" if quiet.active else "dim",
                              no_wrap=True, overflow="ellipsis"))
        if not status.schedules:
            lines.append(Text("no schedules yet", style="dim"))
        for item in status.schedules:
            flags = [item.kind, "live" if item.live else "", "on" if item.enabled else "off"]
            head = Text(f"{item.name} ", style="bold" if item.enabled else "dim")
            head.append(" ".join(f for f in flags if f), style="")
            if item.missed or item.errors:
                head.append(f" {cross}{item.missed} missed {item.errors} err", style="yellow")
            lines.append(head)
            # The next fire in the schedule's own zone comes first: a narrow pane cuts "last".
            lines.append(Text(f"  next {item.next_run_local or '-'} {dot} last "
                              f"{when(item.last_run_at)} UTC", no_wrap=True, overflow="ellipsis"))
        self.update(Group(*lines))
