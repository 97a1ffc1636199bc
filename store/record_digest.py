"""The digest of an evidence row as stored, column by column.

An audit event keeps the digest of each record it names (``audit_events.records``), and
``audit verify`` recomputes it from the row: a row changed behind cavra's back (triggers
dropped, file edited) no longer matches the event that vouched for it. Rows are read with
Core, not the ORM, so the digest is of what the database holds, not of a cached object."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.orm import Session

from store.clock import as_utc
from store.digest import sha256_of
from store.direct import Direct
from store.ids import kind_of
from store.tables import (
    AcknowledgementRow,
    Base,
    DeliveryRow,
    EscalationPlanRow,
    ExecutionRecordRow,
    ExecutiveReportRow,
    FollowUpRunRow,
    HealthSnapshotRow,
    QuietWindowRow,
    RetryPlanRow,
    ScheduleRow,
    ScheduleRunRow,
    WorkerRunRow,
)

# ID kind → the evidence table whose rows an audit event vouches for.
EVIDENCE_TABLES: dict[str, type[Base]] = {
    "plan": EscalationPlanRow,
    "ack": AcknowledgementRow,
    "retry_plan": RetryPlanRow,
    "worker_run": WorkerRunRow,
    "execution": ExecutionRecordRow,
    "report": ExecutiveReportRow,
    "schedule_run": ScheduleRunRow,
    "delivery": DeliveryRow,
    # Schedules are configuration, but every change to one is audited: an edit made behind
    # cavra's back (``live = true``) shows as a mismatch.
    "schedule": ScheduleRow,
    "health_snapshot": HealthSnapshotRow,
    # Quiet windows silence sends: an edit behind cavra's back (a later end) shows too.
    "quiet_window": QuietWindowRow,
    "follow_up_run": FollowUpRunRow,
}
# Columns added to evidence tables after rows existed: hashed only when set, so the digests
# of older rows (and the audit events that vouch for them) stay valid.
LATE_COLUMNS = frozenset({"subject", "failovers"})


def _plain(value: Any) -> Any:
    return as_utc(value).isoformat() if isinstance(value, datetime) else value


def row_digest(columns: Sequence[str], row: Row[Any]) -> str:
    return sha256_of({name: _plain(value) for name, value in zip(columns, row, strict=True)
                      if value is not None or name not in LATE_COLUMNS})


def primary_key(model: type[Base]) -> Any:
    [key] = model.__table__.primary_key.columns  # type: ignore[attr-defined]
    return key


def fetch_digests(session: Session, model: type[Base], ids: Iterable[str]) -> dict[str, str]:
    """Digest of each existing row among ``ids`` (one query)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    columns, position, query = _by_key(model)
    rows = query.rows(session, {"ids": wanted})
    return {str(row[position]): row_digest(columns, row) for row in rows}


@functools.cache
def _by_key(model: type[Base]) -> tuple[list[str], int, Direct]:
    """Column names, the key's position, and the query (built once: every audit event runs
    it, below SQLAlchemy's execution layer)."""
    table: Any = model.__table__
    columns = [c.name for c in table.columns]
    key = primary_key(model)
    return columns, columns.index(key.name), Direct(select(*table.columns).where(
        key.in_(bindparam("ids", expanding=True))))


_KNOWN = "cavra.known_digests"  # session.info key: digests of rows as this transaction has them


def remember_digests(session: Session, digests: Mapping[str, str]) -> None:
    """Digests of evidence rows exactly as the database holds them for the rest of this
    transaction, so the audit events that name them need not read them again: rows this
    transaction wrote with ``RETURNING`` (a delivery, written once more only by the statement
    that re-remembers it), or append-only rows read before (a run's plans). A row changed
    behind cavra's back after it was read then disagrees with the event, as it should."""
    session.info.setdefault(_KNOWN, {}).update(digests)


def stored_digests(session: Session, record_ids: Iterable[str]) -> dict[str, str]:
    """Digests of these evidence rows as this transaction has them, remembered for its audit
    events (so, for an append-only row, the caller may remember them in a later one too)."""
    session.flush()
    found = digests_of(session, record_ids)
    remember_digests(session, found)
    return found


def row_digests(model: type[Base], rows: Iterable[Row[Any]]) -> dict[str, str]:
    """Digest of each row of ``model`` given whole, in table column order (``select`` or
    ``RETURNING`` of every column), by key."""
    columns, position, _ = _by_key(model)
    return {str(row[position]): row_digest(columns, row) for row in rows}


def digests_of(session: Session, target_ids: Iterable[str]) -> dict[str, str]:
    """Digests of the evidence records among an event's targets, one query per table (none
    for the rows this transaction remembers)."""
    known: dict[str, str] = session.info.get(_KNOWN, {})
    by_kind: dict[str, list[str]] = {}
    digests: dict[str, str] = {}
    for target in target_ids:
        if target in known:
            digests[target] = known[target]
            continue
        kind = kind_of(target)
        if kind in EVIDENCE_TABLES:
            by_kind.setdefault(kind, []).append(target)
    for kind, ids in by_kind.items():
        digests.update(fetch_digests(session, EVIDENCE_TABLES[kind], ids))
    return digests
