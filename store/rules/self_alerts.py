"""When the loop itself is failing, say so once per condition, and once when it clears
(issue 13.5). Pure: which conditions to announce, given health now and what was announced."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Announced whatever their severity: a held live lock stops every live retry.
ALWAYS_ANNOUNCED = frozenset({"live_lock_held"})
RAISED, CLEARED = "raised", "cleared"


@dataclass(frozen=True)
class Condition:
    code: str
    message: str


@dataclass(frozen=True)
class Announcement:
    state: str  # raised | cleared
    code: str
    message: str
    raised_at: str | None = None  # when it was raised (a clear names the raise it ends)


def announced(severity: str, code: str) -> bool:
    return severity == "critical" or code in ALWAYS_ANNOUNCED


def conditions(alerts: Iterable[tuple[str, str, str]]) -> dict[str, Condition]:
    """(code, severity, message) of the health alerts → the conditions worth announcing,
    one per code (the first message of a code stands for it)."""
    found: dict[str, Condition] = {}
    for code, severity, message in alerts:
        if announced(severity, code):
            found.setdefault(code, Condition(code, message))
    return found


def announcements(now: Mapping[str, Condition],
                  open_since: Mapping[str, str]) -> list[Announcement]:
    """Raise what is failing and was not announced; clear what was announced and no longer
    fails. ``open_since``: code → when it was raised (its stamp)."""
    raised = [Announcement(RAISED, code, condition.message)
              for code, condition in sorted(now.items()) if code not in open_since]
    cleared = [Announcement(CLEARED, code, f"{code} has cleared", raised_at)
               for code, raised_at in sorted(open_since.items()) if code not in now]
    return raised + cleared
