"""The quiet-window reads that senders, `cavra quiet list` and the scheduler pane make.

SQLAlchemy Core on ``store.core_tables``, so a quick command or a refresh never loads the ORM.
Windows are few (a handful at a time): reading the open ones whole is cheap.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, bindparam, select

from store.clock import as_utc
from store.core_tables import quiet_windows
from store.models import QuietWindow

if TYPE_CHECKING:  # a type only: importing the context loads the audit log
    from store.services.context import StoreContext

_ORDER = (quiet_windows.c.starts_at, quiet_windows.c.name, quiet_windows.c.window_id)
# Not removed and not ended: in force now, or later.
_OPEN = (select(quiet_windows).where(quiet_windows.c.removed.is_(False),
                                     quiet_windows.c.ends_at > bindparam("now"))
         .order_by(*_ORDER))
_EVERY = select(quiet_windows).order_by(*_ORDER)


def open_windows(conn: Connection, now: datetime) -> list[QuietWindow]:
    """Windows in force at ``now`` or starting later (not removed, not ended)."""
    return [QuietWindow.model_validate(row)
            for row in conn.execute(_OPEN, {"now": as_utc(now)})]


def quiet_windows_from(ctx: StoreContext, now: datetime) -> list[QuietWindow]:
    """What a sender checks its sends against: the windows in force now or later."""
    with ctx.db.connect() as conn:
        return open_windows(conn, now)


def list_quiet_windows(ctx: StoreContext, now: datetime, *,
                       include_past: bool = False) -> list[QuietWindow]:
    """Active and upcoming windows, by start; with ``include_past`` also the ended and
    removed ones (they stay in the table: the skips they caused name them)."""
    with ctx.db.connect() as conn:
        if not include_past:
            return open_windows(conn, now)
        return [QuietWindow.model_validate(row) for row in conn.execute(_EVERY)]
