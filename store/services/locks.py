"""Named leases in the database: the live retry worker and the scheduler leader.

Taking a lease is one atomic UPDATE guarded by "free or expired or mine", so two processes
can never both hold it, on SQLite or PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.clock import as_utc
from store.db import Database
from store.tables import LockRow


def try_acquire(db: Database, name: str, holder: str, ttl_s: float, now: datetime) -> bool:
    expires = now + timedelta(seconds=ttl_s)
    with db.write() as session:
        if session.get(LockRow, name) is None:
            try:
                with session.begin_nested():
                    session.add(LockRow(name=name, holder=None, expires_at=None))
            except IntegrityError:
                pass
        result = session.execute(update(LockRow).where(
            LockRow.name == name,
            or_(LockRow.holder.is_(None), LockRow.holder == holder, LockRow.expires_at < now))
            .values(holder=holder, expires_at=expires))
        return cast(CursorResult[Any], result).rowcount == 1


def release(db: Database, name: str, holder: str) -> None:
    with db.write() as session:
        session.execute(update(LockRow).where(LockRow.name == name, LockRow.holder == holder)
                        .values(holder=None, expires_at=None))


def current_holder(session: Session, name: str,
                   now: datetime) -> tuple[str | None, datetime | None]:
    row = session.execute(select(LockRow).where(LockRow.name == name)).scalar_one_or_none()
    if row is None or row.holder is None or row.expires_at is None:
        return None, None
    expires = as_utc(row.expires_at)
    return (row.holder, expires) if expires >= now else (None, None)
