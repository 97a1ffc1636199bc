"""The top line: who is acting, in which role, read-only or not, on which database."""

from __future__ import annotations

from dataclasses import dataclass

from textual.widgets import Static

from cavra_tui import glyphs


@dataclass(frozen=True)
class HeaderInfo:
    actor: str
    role: str
    read_only: bool
    database: str
    identity_source: str = "os"
    screen: str = ""
    alert_level: str | None = None
    busy: tuple[str, ...] = ()
    read_only_copy: bool = False  # a file this process may not change, opened read-only


class ConsoleHeader(Static):
    """One line, so the console still fits 80×24. Alert level shows as a CSS class."""

    def show(self, info: HeaderInfo) -> None:
        access = ("read-only copy" if info.read_only_copy else
                  "READ-ONLY" if info.read_only else "read-write")
        who = f"{info.actor} ({info.identity_source}) · {info.role}"
        parts = [f"CAVRA {info.screen}".strip(), who, access]
        if info.busy:
            parts.append(f"⟳ {', '.join(info.busy)}")
        if info.alert_level:
            parts.append(f"alert {info.alert_level}")
        parts.append(info.database)  # last: the longest, so it is what gets cut at 80 columns
        self.update(glyphs.text(" │ ".join(parts)))
        self.set_class(info.read_only, "-read-only")
        self.set_class(bool(info.busy), "-busy")
        for level in ("healthy", "warning", "critical"):
            self.set_class(info.alert_level == level, f"-{level}")
