"""Maintained counters and gauges, written in the same transaction as the records they count,
so the dashboard reads a handful of rows instead of scanning history (SPEC §6)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.clock import as_utc
from store.tables import ChangeMarkerRow, MetricCounterRow

ALL_TIME = 0


def hour_bucket(moment: datetime) -> int:
    return int(as_utc(moment).timestamp()) // 3600


def _add(session: Session, name: str, bucket: int, delta: int) -> None:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(MetricCounterRow).values(name=name, bucket=bucket, value=delta)
    statement = statement.on_conflict_do_update(
        index_elements=["name", "bucket"], set_={"value": MetricCounterRow.value + delta}
    )
    session.execute(statement)


def bump(session: Session, name: str, at: datetime, delta: int = 1) -> None:
    """An event counter: all-time and per hour (which also feeds the sparklines)."""
    _add(session, name, ALL_TIME, delta)
    _add(session, name, hour_bucket(at), delta)


def adjust_gauge(session: Session, name: str, delta: int) -> None:
    if delta:
        _add(session, name, ALL_TIME, delta)


def touch(session: Session) -> None:
    """Mark that something changed, for consoles polling for other processes' writes."""
    session.execute(update(ChangeMarkerRow).where(ChangeMarkerRow.id == 1)
                    .values(version=ChangeMarkerRow.version + 1))


def read_all_time(session: Session, names: Iterable[str]) -> dict[str, int]:
    wanted = list(names)
    rows = session.execute(select(MetricCounterRow.name, MetricCounterRow.value).where(
        MetricCounterRow.name.in_(wanted), MetricCounterRow.bucket == ALL_TIME)).all()
    found = {name: value for name, value in rows}
    return {name: found.get(name, 0) for name in wanted}


def read_hourly(session: Session, names: Iterable[str], now: datetime,
                hours: int = 24) -> dict[str, list[int]]:
    """Per-hour values for the last ``hours`` hours, oldest first (at most hours × names rows)."""
    wanted = list(names)
    last = hour_bucket(now)
    first = hour_bucket(now - timedelta(hours=hours - 1))
    rows = session.execute(select(MetricCounterRow.name, MetricCounterRow.bucket,
                                  MetricCounterRow.value).where(
        MetricCounterRow.name.in_(wanted), MetricCounterRow.bucket.between(first, last))).all()
    series = {name: [0] * hours for name in wanted}
    for name, bucket, value in rows:
        series[name][bucket - first] = value
    return series


def change_version(session: Session) -> int:
    return session.execute(select(ChangeMarkerRow.version)).scalar_one()
