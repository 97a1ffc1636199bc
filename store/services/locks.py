"""Named leases in the database: the live retry workers and the scheduler leader.

Taking a lease is one atomic UPDATE guarded by "free or expired or mine", so two processes
can never both hold it, on SQLite or PostgreSQL. Every lease is a heartbeat lease: a short
TTL its holder keeps renewing (``workflows.heartbeat``, the scheduler's poll), so a holder
that was killed loses it within one TTL, and the next holder learns whose lease expired.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, CursorResult, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from store.clock import as_utc
from store.core_tables import locks
from store.counters import change_version

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from store.services.context import StoreContext

# SQLAlchemy Core on the light table: the console's change poll and `cavra metrics` read the
# scheduler lease without loading the ORM.
_LOCK = locks.c


def try_acquire(ctx: StoreContext, name: str, holder: str, ttl_s: float, now: datetime) -> bool:
    """Take or renew the lease for ``ttl_s`` seconds."""
    return acquire(ctx, name, holder, ttl_s, now)[0]


def acquire(ctx: StoreContext, name: str, holder: str, ttl_s: float,
            now: datetime) -> tuple[bool, str | None]:
    """Take or renew the lease; also the holder whose lease had expired when it was taken
    over (a process that died holding it), else None."""
    expires = now + timedelta(seconds=ttl_s)
    with ctx.db.write() as session:
        if session.execute(select(_LOCK.name).where(_LOCK.name == name)).first() is None:
            try:
                with session.begin_nested():
                    session.execute(insert(locks).values(name=name, holder=None,
                                                         expires_at=None))
            except IntegrityError:
                pass
        before = session.execute(select(_LOCK.holder, _LOCK.expires_at).where(
            _LOCK.name == name)).first()
        renewing = before is not None and before.holder == holder
        result = session.execute(update(locks).where(
            _LOCK.name == name,
            or_(_LOCK.holder.is_(None), _LOCK.holder == holder, _LOCK.expires_at < now))
            .values(holder=holder, expires_at=expires,
                    **({} if renewing else {"acquired_at": now})))
        taken = cast(CursorResult[Any], result).rowcount == 1
        dead = (before.holder if taken and before is not None and before.holder
                and not renewing else None)
        return taken, dead


def release(ctx: StoreContext, name: str, holder: str) -> None:
    with ctx.db.write() as session:
        session.execute(update(locks).where(_LOCK.name == name, _LOCK.holder == holder)
                        .values(holder=None, expires_at=None, acquired_at=None))


def held_leases(session: Session | Connection, names: list[str],
                now: datetime) -> list[tuple[str, str, datetime | None]]:
    """(name, holder, acquired_at) of each lease among ``names`` held now."""
    rows = session.execute(select(_LOCK.name, _LOCK.holder, _LOCK.expires_at, _LOCK.acquired_at)
                           .where(_LOCK.name.in_(names), _LOCK.holder.is_not(None))).all()
    return [(row.name, row.holder, as_utc(row.acquired_at) if row.acquired_at else None)
            for row in rows if row.expires_at is not None and as_utc(row.expires_at) >= now]


def lease_holder(ctx: StoreContext, name: str, now: datetime) -> str | None:
    """Who holds the lease at ``now`` (None: free, or its holder's TTL ran out)."""
    with ctx.db.connect() as conn:
        return current_holder(conn, name, now)[0]


def changes_and_holder(ctx: StoreContext, name: str) -> tuple[int, str | None]:
    """The change marker and the lease's holder, in one snapshot: what the console polls."""
    with ctx.db.connect() as conn:
        return change_version(conn), current_holder(conn, name, ctx.clock())[0]


def current_holder(session: Session | Connection, name: str,
                   now: datetime) -> tuple[str | None, datetime | None]:
    row = session.execute(select(_LOCK.holder, _LOCK.expires_at).where(
        _LOCK.name == name)).first()
    if row is None or row.holder is None or row.expires_at is None:
        return None, None
    expires = as_utc(row.expires_at)
    return (row.holder, expires) if expires >= now else (None, None)
