"""Evidence against the audit chain: every evidence row must match the digest recorded by
the latest audit event that vouches for it, and every vouched-for row must still exist.

The hash chain proves the events were not changed; this proves the rows they describe were
not changed either (a delivery rewritten from ``failed`` to ``delivered`` with the triggers
dropped passes the chain walk, not this check). Only hashed event content is trusted: the
``audit_targets`` index says where to look, never what an event says."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.clock import as_utc
from store.ids import kind_of
from store.record_digest import EVIDENCE_TABLES, fetch_digests, primary_key, row_digest
from store.tables import AuditEventRow, AuditTargetRow, Base, PairStateRow

BATCH = 1000
MAX_PROBLEMS = 50


class EvidenceReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    ok: bool
    checked: int
    legacy: int  # from before record digests (schema 0004): vouched for by older events
    unfinished: int  # executions of a worker run that has not recorded itself yet
    problems: list[str]

    def describe(self) -> str:
        if self.ok:
            extra = [f"{self.legacy} from before record digests" if self.legacy else "",
                     f"{self.unfinished} of runs not finished" if self.unfinished else ""]
            notes = ", ".join(x for x in extra if x)
            return f"evidence matches the audit chain: {self.checked} records" + (
                f" ({notes})" if notes else "")
        return f"evidence disagrees with the audit chain: {self.problems[0]}"


class _Events:
    """Hashed content of the events that name given records, fetched in batches."""

    def __init__(self, session: Session) -> None:
        self.session = session
        first = session.execute(select(func.min(AuditEventRow.seq)).where(
            AuditEventRow.records.is_not(None))).scalar_one_or_none()
        self.has_legacy = session.execute(select(AuditEventRow.seq).where(
            AuditEventRow.records.is_(None)).limit(1)).first() is not None
        # Rows written before the first event with digests (an upgraded database).
        self.digests_since: datetime | None = None
        if first is not None and self.has_legacy:
            at = session.execute(select(AuditEventRow.at).where(
                AuditEventRow.seq == first)).scalar_one()
            self.digests_since = as_utc(at)

    def naming(self, ids: list[str]) -> dict[str, list[tuple[int, dict[str, Any] | None,
                                                            list[Any]]]]:
        pairs = self.session.execute(select(AuditTargetRow.target_id, AuditTargetRow.seq)
                                     .where(AuditTargetRow.target_id.in_(ids))).all()
        seqs = sorted({seq for _, seq in pairs})
        events: dict[int, tuple[dict[str, Any] | None, list[Any]]] = {}
        for start in range(0, len(seqs), BATCH):
            for seq, records, targets in self.session.execute(
                    select(AuditEventRow.seq, AuditEventRow.records, AuditEventRow.target_ids)
                    .where(AuditEventRow.seq.in_(seqs[start:start + BATCH]))).all():
                events[seq] = (records, list(targets))
        found: dict[str, list[tuple[int, dict[str, Any] | None, list[Any]]]] = {}
        for target, seq in pairs:
            if seq in events:
                found.setdefault(target, []).append((seq, *events[seq]))
        return found


def _voucher(named: list[tuple[int, dict[str, Any] | None, list[Any]]],
             record_id: str) -> tuple[int, str] | None:
    """(seq, digest) of the latest event whose hashed digests include ``record_id``."""
    best: tuple[int, str] | None = None
    for seq, records, _ in named:
        if records and record_id in records and (best is None or seq > best[0]):
            best = (seq, str(records[record_id]))
    return best


def _named_by_legacy(named: list[tuple[int, dict[str, Any] | None, list[Any]]],
                     record_id: str) -> bool:
    return any(records is None and record_id in targets for _, records, targets in named)


def vouched(session: Session, record_id: str) -> bool:
    """True when the latest event vouching for this record recorded it as it is now."""
    kind = kind_of(record_id)
    if kind not in EVIDENCE_TABLES:
        return False
    voucher = _voucher(_Events(session).naming([record_id]).get(record_id, []), record_id)
    current = fetch_digests(session, EVIDENCE_TABLES[kind], [record_id]).get(record_id)
    return voucher is not None and current == voucher[1]


def _check_rows(events: _Events, model: type[Base], problems: list[str]) -> tuple[int, int, int]:
    session = events.session
    table: Any = model.__table__
    columns = [c.name for c in table.columns]
    key = primary_key(model)
    position = columns.index(key.name)
    created = columns.index("created_at") if "created_at" in columns else None
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
        named = events.naming(ids)
        runs = _started_runs(events, model, list(rows), columns)
        for record_id, row in zip(ids, rows, strict=True):
            checked += 1
            found = named.get(record_id, [])
            voucher = _voucher(found, record_id)
            if voucher is not None:
                if row_digest(columns, row) != voucher[1]:
                    problems.append(f"{record_id} ({table.name}) differs from what audit event "
                                    f"seq {voucher[0]} recorded (changed after it was written)")
            elif _named_by_legacy(found, record_id) or (
                    events.digests_since is not None and created is not None
                    and as_utc(row[created]) < events.digests_since):
                legacy += 1
            elif runs is not None and row[columns.index("run_id")] in runs:
                unfinished += 1
            else:
                problems.append(f"{record_id} ({table.name}) is vouched for by no audit event "
                                "(written outside cavra?)")


def _started_runs(events: _Events, model: type[Base], rows: list[Any],
                  columns: list[str]) -> set[str] | None:
    """Worker runs that an event says began (their retry plan names them) but that have not
    recorded themselves yet: their executions wait for the run's final event."""
    if model.__tablename__ != "execution_records":
        return None
    run_ids = list({str(row[columns.index("run_id")]) for row in rows})
    named = events.naming(run_ids)
    return {run for run in run_ids
            if any(run in targets for _, records, targets in named.get(run, []))}


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


def _latest(rows: list[Any]) -> dict[tuple[str, str], tuple[Any, set[Any]]]:
    """Per pair: the newest created_at and every value recorded at it (ties: same clock)."""
    found: dict[tuple[str, str], tuple[Any, set[Any]]] = {}
    for plan, provider, at, value in rows:
        moment = as_utc(at)
        seen = found.get((plan, provider))
        if seen is None or moment > seen[0]:
            found[(plan, provider)] = (moment, {value})
        elif moment == seen[0]:
            seen[1].add(value)
    return found


def _check_pair_state(session: Session, problems: list[str]) -> None:
    """The acknowledgement gate reads ``pair_state``: rebuild it from the acknowledgements
    (evidence) and name any pair whose projection disagrees (edited to open the gate)."""
    from store.tables import AcknowledgementRow as Ack

    latest = _latest([(plan, provider, at, f"{ack_id} {state}") for plan, provider, at, ack_id,
                      state in session.execute(select(Ack.plan_id, Ack.provider, Ack.created_at,
                                                      Ack.ack_id, Ack.state)).all()])
    accepted = _latest(list(session.execute(select(
        Ack.plan_id, Ack.provider, Ack.created_at, Ack.acknowledged_by)
        .where(Ack.state == "accepted")).all()))
    for plan, provider, ack_id, state, by in session.execute(
            select(PairStateRow.plan_id, PairStateRow.provider, PairStateRow.latest_ack_id,
                   PairStateRow.latest_ack_state, PairStateRow.accepted_by)).all():
        pair = (plan, provider)
        recorded = f"{ack_id} {state}" if ack_id else None
        truth = latest[pair][1] if pair in latest else {None}
        accepters = accepted[pair][1] if pair in accepted else {None}
        if recorded not in truth or by not in accepters:
            said = sorted(str(t).split(" ")[-1] for t in truth if t) or ["none"]
            problems.append(f"pair {plan}/{provider}: its state says acknowledgement "
                            f"{state or 'none'}, the acknowledgements say {', '.join(said)} "
                            "(edited to change the live-retry gate?)")


def cross_check(session: Session) -> EvidenceReport:
    problems: list[str] = []
    checked = legacy = unfinished = 0
    events = _Events(session)
    for model in EVIDENCE_TABLES.values():
        counts = _check_rows(events, model, problems)
        checked += counts[0]
        legacy += counts[1]
        unfinished += counts[2]
    _check_events(session, problems)
    _check_pair_state(session, problems)
    return EvidenceReport(ok=not problems, checked=checked, legacy=legacy,
                          unfinished=unfinished, problems=problems[:MAX_PROBLEMS])
