"""Named leases in the database: the live retry worker and the scheduler leader.

Taking a lease is one atomic UPDATE guarded by "free or expired or mine", so two processes
can never both hold it, on SQLite or PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, CursorResult, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from store.clock import as_utc
from store.core_tables import locks
from store.db import Database

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# SQLAlchemy Core on the light table: the console's change poll and `cavra metrics` read the
# scheduler lease without loading the ORM.
_LOCK = locks.c


def try_acquire(db: Database, name: str, holder: str, ttl_s: float, now: datetime) -> bool:
    expires = now + timedelta(seconds=ttl_s)
    with db.write() as session:
        if session.execute(select(_LOCK.name).where(_LOCK.name == name)).first() is None:
            try:
                with session.begin_nested():
                    session.execute(insert(locks).values(name=name, holder=None,
                                                         expires_at=None))
            except IntegrityError:
                pass
        result = session.execute(update(locks).where(
            _LOCK.name == name,
            or_(_LOCK.holder.is_(None), _LOCK.holder == holder, _LOCK.expires_at < now))
            .values(holder=holder, expires_at=expires))
        return cast(CursorResult[Any], result).rowcount == 1


def release(db: Database, name: str, holder: str) -> None:
    with db.write() as session:
        session.execute(update(locks).where(_LOCK.name == name, _LOCK.holder == holder)
                        .values(holder=None, expires_at=None))


def current_holder(session: Session | Connection, name: str,
                   now: datetime) -> tuple[str | None, datetime | None]:
    row = session.execute(select(_LOCK.holder, _LOCK.expires_at).where(
        _LOCK.name == name)).first()
    if row is None or row.holder is None or row.expires_at is None:
        return None, None
    expires = as_utc(row.expires_at)
    return (row.holder, expires) if expires >= now else (None, None)
