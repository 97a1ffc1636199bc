"""Quiet windows (issue 13; the idea of Alertmanager's silences and Grafana OnCall's
maintenance mode): which window, if any, silences one send.

Pure: no database, no clock; the windows and the moment are passed in.

- A window is in force from ``starts_at`` (inclusive) until ``ends_at`` (exclusive).
- An escalation send carries its plan's alert level (the message leads with it): a window
  silences it only when it names the provider and that level. A healthy plan's send counts as
  ``warning``. Critical sends are silenced only by a window that says ``critical``.
- An executive report has no alert level: a window that names the provider silences it,
  whatever severities the window lists (the window says the channel is in maintenance).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from store.clock import as_utc
from store.models import QuietWindow, Severity

QUIET_REASON = "quiet_window: "  # a skipped send's reason: "quiet_window: NAME"
SEVERITIES: tuple[Severity, ...] = ("warning", "critical")
DEFAULT_SEVERITIES: tuple[Severity, ...] = ("warning",)


def send_level(alert_level: str) -> Severity:
    """The level an escalation send is silenced at: its plan's alert level."""
    return "critical" if alert_level == "critical" else "warning"


def in_force(window: QuietWindow, at: datetime) -> bool:
    moment = as_utc(at)
    return not window.removed and window.starts_at <= moment < window.ends_at


def window_state(window: QuietWindow, now: datetime) -> str:
    """``removed``, ``active``, ``upcoming`` or ``ended``."""
    if window.removed:
        return "removed"
    moment = as_utc(now)
    if moment < window.starts_at:
        return "upcoming"
    return "active" if moment < window.ends_at else "ended"


def silencing(windows: Iterable[QuietWindow], provider: str, level: Severity | None,
              at: datetime) -> QuietWindow | None:
    """The window that silences a send to ``provider`` at ``at``, or None. ``level``: the
    send's alert level, None for an executive report. Of several, the one that ends last
    (then the first by name): the one a person waits for."""
    found = [w for w in windows if provider in w.providers and in_force(w, at)
             and (level is None or level in w.severities)]
    if not found:
        return None
    return min(found, key=lambda w: (-w.ends_at.timestamp(), w.name))


def quiet_reason(window: QuietWindow) -> str:
    return f"{QUIET_REASON}{window.name}"


def is_quiet_reason(reason: str | None) -> bool:
    return bool(reason) and str(reason).startswith(QUIET_REASON)
