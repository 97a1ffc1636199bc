"""Evidence against the audit chain: every evidence row must match the digest recorded by
the latest audit event that vouches for it, and every vouched-for row must still exist.

The hash chain proves the events were not changed; this proves the rows they describe were
not changed either (a delivery rewritten from ``failed`` to ``delivered`` with the triggers
dropped passes the chain walk, not this check)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from store.ids import kind_of
from store.record_digest import EVIDENCE_TABLES, primary_key, row_digest
from store.tables import AuditEventRow, AuditTargetRow, Base, DeliveryRow, WorkerRunRow

BATCH = 1000
MAX_PROBLEMS = 50


class EvidenceReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    ok: bool
    checked: int
    legacy: int  # vouched for only by events from before record digests (schema 0004)
    unfinished: int  # deliveries still in flight, executions of a run not yet recorded
    problems: list[str]

    def describe(self) -> str:
        if self.ok:
            extra = [f"{self.legacy} from before record digests" if self.legacy else "",
                     f"{self.unfinished} not finished yet" if self.unfinished else ""]
            notes = ", ".join(x for x in extra if x)
            return f"evidence matches the audit chain: {self.checked} records" + (
                f" ({notes})" if notes else "")
        return f"evidence disagrees with the audit chain: {self.problems[0]}"


def _vouchers(session: Session, ids: list[str]) -> tuple[dict[str, tuple[int, str]], set[str]]:
    """For each ID: (seq, digest) of the latest event that recorded its digest; and the IDs
    that events name without a digest (written before schema 0004)."""
    pairs = session.execute(select(AuditTargetRow.target_id, AuditTargetRow.seq)
                            .where(AuditTargetRow.target_id.in_(ids))).all()
    seqs = sorted({seq for _, seq in pairs})
    records: dict[int, dict[str, Any] | None] = {}
    for start in range(0, len(seqs), BATCH):
        chunk = seqs[start:start + BATCH]
        records.update(session.execute(select(AuditEventRow.seq, AuditEventRow.records)
                                       .where(AuditEventRow.seq.in_(chunk))).all())
    latest: dict[str, tuple[int, str]] = {}
    named: set[str] = set()
    for target, seq in pairs:
        named.add(target)
        digests = records.get(seq)
        if digests and target in digests and (target not in latest or seq > latest[target][0]):
            latest[target] = (seq, str(digests[target]))
    return latest, named - set(latest)


def _unfinished(session: Session, model: type[Base], rows: list[Any],
                columns: list[str]) -> set[str]:
    """Rows no event can vouch for yet: a send in flight, an execution of a run in progress
    (or of a run that died before it recorded itself)."""
    key = columns.index(primary_key(model).name)
    if model is DeliveryRow:
        status = columns.index("status")
        return {row[key] for row in rows if row[status] == "in_flight"}
    if model.__tablename__ == "execution_records":
        run = columns.index("run_id")
        run_ids = {row[run] for row in rows}
        done = set(session.execute(select(WorkerRunRow.run_id)
                                   .where(WorkerRunRow.run_id.in_(run_ids))).scalars())
        return {row[key] for row in rows if row[run] not in done}
    return set()


def _check_rows(session: Session, model: type[Base], problems: list[str]) -> tuple[int, int, int]:
    table: Any = model.__table__
    columns = [c.name for c in table.columns]
    key = primary_key(model)
    position = columns.index(key.name)
    checked = legacy = unfinished = 0
    after: str | None = None
    while True:
        query = select(*table.columns).order_by(key).limit(BATCH)
        if after is not None:
            query = query.where(key > after)
        rows = session.execute(query).all()
        if not rows:
            return checked, legacy, unfinished
        after = rows[-1][position]
        ids = [str(row[position]) for row in rows]
        latest, old = _vouchers(session, ids)
        pending = _unfinished(session, model, list(rows), columns)
        for record_id, row in zip(ids, rows, strict=True):
            checked += 1
            if record_id in latest:
                seq, digest = latest[record_id]
                if row_digest(columns, row) != digest:
                    problems.append(f"{record_id} ({table.name}) differs from what audit event "
                                    f"seq {seq} recorded (changed after it was written)")
            elif record_id in old:
                legacy += 1
            elif record_id in pending:
                unfinished += 1
            else:
                problems.append(f"{record_id} ({table.name}) is vouched for by no audit event "
                                "(written outside cavra?)")


def _check_events(session: Session, problems: list[str]) -> None:
    """Every record an event vouches for must still exist; once events carry digests, every
    later event must (an event without them was not written by this cavra)."""
    after = 0
    digests_seen = False
    while True:
        rows = session.execute(select(AuditEventRow.seq, AuditEventRow.records)
                               .where(AuditEventRow.seq > after)
                               .order_by(AuditEventRow.seq).limit(BATCH)).all()
        if not rows:
            return
        after = rows[-1][0]
        wanted: dict[str, list[tuple[int, str]]] = {}
        for seq, records in rows:
            if records is None:
                if digests_seen:
                    problems.append(f"audit event seq {seq} carries no record digests: it was "
                                    "not written by this cavra (forged?)")
                continue
            digests_seen = True
            for record_id in records:
                kind = kind_of(record_id)
                if kind in EVIDENCE_TABLES:
                    wanted.setdefault(kind, []).append((seq, record_id))
        for kind, named in wanted.items():
            model = EVIDENCE_TABLES[kind]
            key = primary_key(model)
            ids = list({record_id for _, record_id in named})
            present: set[str] = set()
            for start in range(0, len(ids), BATCH):
                present.update(session.execute(select(key).where(
                    key.in_(ids[start:start + BATCH]))).scalars())
            problems.extend(f"audit event seq {seq} vouches for {record_id}, which is missing "
                            f"from {model.__tablename__} (deleted, or the event is forged)"
                            for seq, record_id in named if record_id not in present)


def cross_check(session: Session) -> EvidenceReport:
    problems: list[str] = []
    checked = legacy = unfinished = 0
    for model in EVIDENCE_TABLES.values():
        counts = _check_rows(session, model, problems)
        checked += counts[0]
        legacy += counts[1]
        unfinished += counts[2]
    _check_events(session, problems)
    return EvidenceReport(ok=not problems, checked=checked, legacy=legacy,
                          unfinished=unfinished, problems=problems[:MAX_PROBLEMS])
