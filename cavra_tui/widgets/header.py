"""The top line: who is acting, in which role, read-only or not, on which database."""

from __future__ import annotations

from dataclasses import dataclass

from textual.widgets import Static


@dataclass(frozen=True)
class HeaderInfo:
    actor: str
    role: str
    read_only: bool
    database: str
    screen: str = ""
    alert_level: str | None = None


class ConsoleHeader(Static):
    """One line, so the console still fits 80×24. Alert level shows as a CSS class."""

    def show(self, info: HeaderInfo) -> None:
        access = "READ-ONLY" if info.read_only else "read-write"
        parts = [f"CAVRA {info.screen}".strip(), f"{info.actor} · {info.role}", access,
                 info.database]
        if info.alert_level:
            parts.append(f"alert {info.alert_level}")
        self.update(" │ ".join(parts))
        self.set_class(info.read_only, "-read-only")
        for level in ("healthy", "warning", "critical"):
            self.set_class(info.alert_level == level, f"-{level}")
