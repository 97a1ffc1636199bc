"""How records read on screen: short times, status words with a glyph (meaning survives
NO_COLOR), short digests. Pure functions: no Textual state, no database."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from store.clock import as_utc

# A glyph per status, so a monochrome terminal still tells outcomes apart.
STATUS_GLYPHS = {
    "delivered": ("✓", "green"), "dry_run": ("○", "cyan"), "failed": ("✗", "red"),
    "unknown": ("?", "yellow"), "in_flight": ("…", "yellow"), "skipped": ("-", "dim"),
    "blocked": ("■", "magenta"), "critical": ("▲", "bold red"), "warning": ("△", "yellow"),
    "healthy": ("●", "green"), "on_track": ("●", "green"), "at_risk": ("△", "yellow"),
    "allow": ("✓", "green"), "deny": ("✗", "red"), "retry": ("↻", "cyan"),
    "wait": ("…", "yellow"), "suppress": ("-", "dim"), "acknowledged": ("✓", "green"),
    "accepted": ("✓", "green"), "resolved": ("✓", "green"), "deferred": ("…", "yellow"),
    "escalated": ("▲", "red"), "dismissed": ("-", "dim"), "live": ("!", "bold"),
}


def when(moment: datetime | None) -> str:
    """``11-27 09:30`` in UTC: short enough for 80 columns, unambiguous across days."""
    if moment is None:
        return "-"
    return as_utc(moment).strftime("%m-%d %H:%M")


def status(value: str | None) -> Text:
    if value is None:
        return Text("-")
    glyph, style = STATUS_GLYPHS.get(value, ("·", ""))
    return Text(f"{glyph} {value}", style=style)


def short(digest: str | None, length: int = 12) -> str:
    return digest[:length] if digest else "-"


def counts(values: dict[str, int], keep_zero: bool = False) -> str:
    shown = [f"{key.replace('_', ' ')} {value}" for key, value in values.items()
             if value or keep_zero]
    return ", ".join(shown) or "none"
