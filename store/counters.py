"""Maintained counters and gauges, written in the same transaction as the records they count,
so the dashboard reads a handful of rows instead of scanning history (SPEC §6)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select, update

from store.clock import as_utc
from store.core_tables import change_marker, metric_counters, upsert
from store.direct import Direct

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

ALL_TIME = 0
_FOLDED = "cavra.folded_counters"  # session.info key: counts waiting for one upsert


def hour_bucket(moment: datetime) -> int:
    return int(as_utc(moment).timestamp()) // 3600


def _upsert(session: Session, deltas: dict[tuple[str, int], int]) -> None:
    """One statement for every (name, bucket), in key order: transactions that bump several
    counters lock their rows in the same order, so two of them never deadlock."""
    rows = [{"name": name, "bucket": bucket, "value": delta}
            for (name, bucket), delta in sorted(deltas.items()) if delta]
    if not rows:
        return
    _counter_upsert(session).execute_many(session, rows)


_UPSERTS: dict[str, Direct] = {}  # dialect → the statement, built once (a run's hot path)


def _counter_upsert(session: Session) -> Direct:
    dialect = session.get_bind().dialect.name
    if dialect not in _UPSERTS:
        statement = upsert(session, metric_counters)
        _UPSERTS[dialect] = Direct(statement.on_conflict_do_update(
            index_elements=["name", "bucket"],
            set_={"value": metric_counters.c.value + statement.excluded.value}))
    return _UPSERTS[dialect]


def _add(session: Session, name: str, bucket: int, delta: int) -> None:
    pending: Counter[tuple[str, int]] | None = session.info.get(_FOLDED)
    if pending is not None:
        pending[(name, bucket)] += delta
    else:
        _upsert(session, {(name, bucket): delta})


@contextmanager
def folded(session: Session) -> Iterator[None]:
    """Counters bumped inside the block are written once, together, when it ends (still in
    the same transaction as the records they count). Nothing inside may read them."""
    if _FOLDED in session.info:  # already folding: the outer block writes them
        yield
        return
    session.info[_FOLDED] = Counter()
    try:
        yield
        _upsert(session, dict(session.info[_FOLDED]))
    finally:
        del session.info[_FOLDED]


def bump(session: Session, name: str, at: datetime, delta: int = 1) -> None:
    """An event counter: all-time and per hour (which also feeds the sparklines)."""
    _add(session, name, ALL_TIME, delta)
    _add(session, name, hour_bucket(at), delta)


def adjust_gauge(session: Session, name: str, delta: int) -> None:
    if delta:
        _add(session, name, ALL_TIME, delta)


def touch(session: Session) -> None:
    """Mark that something changed, for consoles polling for other processes' writes."""
    _TOUCH.execute(session)


_TOUCH = Direct(update(change_marker).where(change_marker.c.id == 1).values(
    version=change_marker.c.version + 1))


# Reads take an ORM session or a Core connection: the quick paths (metrics, the change poll)
# read on Core, without loading the ORM.

def read_all_time(session: Session | Connection, names: Iterable[str]) -> dict[str, int]:
    wanted = list(names)
    counters = metric_counters.c
    rows = session.execute(select(counters.name, counters.value).where(
        counters.name.in_(wanted), counters.bucket == ALL_TIME)).all()
    found = {name: value for name, value in rows}
    return {name: found.get(name, 0) for name in wanted}


def read_hourly(session: Session | Connection, names: Iterable[str], now: datetime,
                hours: int = 24) -> dict[str, list[int]]:
    """Per-hour values for the last ``hours`` hours, oldest first (at most hours × names rows)."""
    wanted = list(names)
    last = hour_bucket(now)
    first = hour_bucket(now - timedelta(hours=hours - 1))
    counters = metric_counters.c
    rows = session.execute(select(counters.name, counters.bucket, counters.value).where(
        counters.name.in_(wanted), counters.bucket.between(first, last))).all()
    series = {name: [0] * hours for name in wanted}
    for name, bucket, value in rows:
        series[name][bucket - first] = value
    return series


def change_version(session: Session | Connection) -> int:
    return int(session.execute(select(change_marker.c.version)).scalar_one())
