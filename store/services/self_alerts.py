"""What the loop has said about itself: each self-alert raise and clear is an audit event
(``health.self_alert``), so the state survives restarts and leader changes and cannot be
edited quietly. Read with one indexed query on the action."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, select

from store.rules.self_alerts import CLEARED, RAISED, Announcement
from store.services.context import StoreContext
from store.tables import AuditEventRow

ACTION = "health.self_alert"
TARGET_PREFIX = "self-alert:"
HISTORY_READ = 500  # newest events folded; a condition unannounced for longer is raised anew
_EVENTS = cast(Table, AuditEventRow.__table__)


def detail_line(announcement: Announcement, raised_at: str) -> str:
    """``raised worker_missed at 20261202T010000Z: …`` (the audit detail, ≤ 255 chars)."""
    return f"{announcement.state} {announcement.code} at {raised_at}: {announcement.message}"[:255]


def parse_detail(detail: str) -> tuple[str, str, str] | None:
    """(state, code, raised_at) of a self-alert event's detail; None if it is not one."""
    words = detail.split(" ", 4)
    if len(words) < 4 or words[0] not in (RAISED, CLEARED) or words[2] != "at":
        return None
    return words[0], words[1], words[3].rstrip(":")


def open_self_alerts(ctx: StoreContext) -> dict[str, str]:
    """code → when it was raised, for every condition raised and not cleared since."""
    with ctx.db.connect() as conn:
        rows = conn.execute(select(_EVENTS.c.detail).where(
            _EVENTS.c.action == ACTION, _EVENTS.c.decision == "allow")
            .order_by(_EVENTS.c.seq.desc()).limit(HISTORY_READ)).scalars().all()
    latest: dict[str, tuple[str, str]] = {}
    for detail in rows:  # newest first: the first event of a code is its state
        parsed = parse_detail(detail)
        if parsed is not None:
            latest.setdefault(parsed[1], (parsed[0], parsed[2]))
    return {code: at for code, (state, at) in latest.items() if state == RAISED}


def record_self_alert(ctx: StoreContext, announcement: Announcement, raised_at: str,
                      delivery_ids: list[str], evidence: dict[str, Any]) -> None:
    """Audit a raise or a clear, naming the deliveries that carried it."""
    decision = ctx.require(ACTION)
    with ctx.write() as session:
        ctx.audit(session, ACTION, decision,
                  [f"{TARGET_PREFIX}{announcement.code}", *delivery_ids],
                  detail_line(announcement, raised_at), evidence)
