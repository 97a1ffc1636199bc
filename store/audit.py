"""The hash-chained audit log: append, verify, export (SPEC §4, §9)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from store.clock import as_utc
from store.counters import touch
from store.digest import sha256_of
from store.direct import Direct, pipelined
from store.policy import Identity
from store.record_digest import digests_of
from store.tables import AuditEventRow, AuditHeadRow, AuditTargetRow

GENESIS = "0" * 64
# Signs an event's sha256 (hex) with the actor's key; raises UserError when it cannot.
EventSigner = Callable[[str], str]


def _event_digest(fields: dict[str, Any]) -> str:
    return sha256_of({key: fields[key] for key in sorted(fields) if key != "sha256"})


def _hashable(row: AuditEventRow) -> dict[str, Any]:
    return {
        "seq": row.seq, "at": as_utc(row.at).isoformat(), "actor": row.actor, "role": row.role,
        "action": row.action, "target_ids": list(row.target_ids), "policy_rule": row.policy_rule,
        "decision": row.decision, "detail": row.detail, "evidence_sha256": row.evidence_sha256,
        "prev_sha256": row.prev_sha256,
        # Events from before schema 0004 carry no record digests: hash them as they were.
        **({"records": dict(row.records)} if row.records is not None else {}),
    }


@dataclass(frozen=True)
class _Pending:
    identity: Identity
    action: str
    target_ids: list[str]
    rule: str
    allowed: bool
    detail: str
    evidence_sha256: str
    at: datetime
    signer: EventSigner | None


_BATCH = "cavra.audit_batch"  # session.info key: events waiting to be chained together


def append_audit(session: Session, *, identity: Identity, action: str, target_ids: list[str],
                 rule: str, allowed: bool, detail: str, evidence: Any, at: datetime,
                 signer: EventSigner | None = None) -> None:
    """Append one event. Must run inside a write transaction: the head row serialises appends.

    The event records the digest of every evidence row it names, as the row stands when the
    event is written, so a row rewritten later no longer matches the event that vouched for
    it. Inside ``batched_audit`` the event is written when the block ends."""
    event = _Pending(identity, action, list(target_ids), rule, allowed, detail[:255],
                     sha256_of(evidence), at, signer)
    pending: list[_Pending] | None = session.info.get(_BATCH)
    if pending is not None:
        pending.append(event)
    else:
        _write(session, [event])


@contextmanager
def batched_audit(session: Session) -> Iterator[None]:
    """Events appended inside the block are chained, in order, when it ends: one lock of
    the head and one insert for all of them. The rows they name must not change after
    their event is appended (each digest is taken when the block ends)."""
    if _BATCH in session.info:  # nested: the outer block writes them
        yield
        return
    session.info[_BATCH] = []
    try:
        yield
        _write(session, session.info[_BATCH])
    finally:
        del session.info[_BATCH]


def _write(session: Session, events: list[_Pending]) -> None:
    if not events:
        return
    session.flush()
    digests = digests_of(session, [t for event in events for t in event.target_ids])
    [head] = _LOCK_HEAD.rows(session)
    seq, prev = head.seq, head.sha256
    rows: list[dict[str, Any]] = []
    targets: list[dict[str, Any]] = []
    for event in events:
        seq += 1
        fields: dict[str, Any] = {
            "seq": seq, "at": as_utc(event.at).isoformat(), "actor": event.identity.actor,
            "role": event.identity.role_label, "action": event.action,
            "target_ids": event.target_ids, "policy_rule": event.rule,
            "decision": "allow" if event.allowed else "deny", "detail": event.detail,
            "evidence_sha256": event.evidence_sha256, "prev_sha256": prev,
            "records": {t: digests[t] for t in event.target_ids if t in digests},
        }
        sha = _event_digest(fields)
        rows.append({**fields, "at": event.at, "sha256": sha,
                     "signature": event.signer(sha) if event.signer else None})
        targets += [{"target_id": target, "seq": seq}
                    for target in dict.fromkeys(event.target_ids)]
        prev = sha
    with pipelined(session):  # one round trip on PostgreSQL: nothing here is read back
        _INSERT_EVENTS.execute_many(session, rows)
        if targets:
            _INSERT_TARGETS.execute_many(session, targets)
        _MOVE_HEAD.execute(session, {"b_seq": seq, "b_sha256": prev})
        touch(session)


# Built once: every audited write runs them (below SQLAlchemy's execution layer: a live run
# writes events in every transaction, see ``store.direct``).
_HEAD = cast(Table, AuditHeadRow.__table__)
_LOCK_HEAD = Direct(select(_HEAD.c.seq, _HEAD.c.sha256).where(_HEAD.c.id == 1)
                    .with_for_update())
_INSERT_EVENTS = Direct(insert(cast(Table, AuditEventRow.__table__)))
_INSERT_TARGETS = Direct(insert(cast(Table, AuditTargetRow.__table__)))
_MOVE_HEAD = Direct(update(_HEAD).where(_HEAD.c.id == 1).values(seq=bindparam("b_seq"),
                                                                sha256=bindparam("b_sha256")))


class ChainReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    ok: bool
    events: int
    head_seq: int
    broken_seq: int | None = None
    problem: str | None = None

    def describe(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.events} events, head seq {self.head_seq}"
        return f"audit chain broken at seq {self.broken_seq}: {self.problem}"


def iter_events(session: Session, batch: int = 2000) -> Iterator[AuditEventRow]:
    """Keyset-paged walk in seq order, so a long chain never sits in memory at once."""
    after = 0
    while True:
        rows = session.execute(select(AuditEventRow).where(AuditEventRow.seq > after)
                               .order_by(AuditEventRow.seq).limit(batch)).scalars().all()
        if not rows:
            return
        yield from rows
        after = rows[-1].seq
        session.expunge_all()


def verify_chain(session: Session) -> ChainReport:
    """Walk the chain; name the first event that was modified, removed or moved."""
    head = session.execute(select(AuditHeadRow).where(AuditHeadRow.id == 1)).scalar_one()
    expected_prev = GENESIS
    expected_seq = 1
    count = 0
    for row in iter_events(session):
        if row.seq != expected_seq:
            return ChainReport(ok=False, events=count, head_seq=head.seq, broken_seq=expected_seq,
                               problem=f"event {expected_seq} is missing (next is {row.seq})")
        if row.prev_sha256 != expected_prev:
            return ChainReport(ok=False, events=count, head_seq=head.seq, broken_seq=row.seq,
                               problem="does not link to the event before it "
                                       "(deleted, reordered or rewritten)")
        if _event_digest(_hashable(row)) != row.sha256:
            return ChainReport(ok=False, events=count, head_seq=head.seq, broken_seq=row.seq,
                               problem="content does not match its sha256 (modified)")
        expected_prev = row.sha256
        expected_seq += 1
        count += 1
    if count != head.seq or expected_prev != head.sha256:
        return ChainReport(ok=False, events=count, head_seq=head.seq, broken_seq=count + 1,
                           problem=f"chain ends at seq {count} but the head records {head.seq} "
                                   "(events removed from the end)")
    return ChainReport(ok=True, events=count, head_seq=head.seq)


def export_event(row: AuditEventRow) -> dict[str, Any]:
    data = _hashable(row)
    data["sha256"] = row.sha256
    if row.signature is not None:
        data["signature"] = row.signature
    return data


def event_at(session: Session, seq: int) -> AuditEventRow | None:
    return session.get(AuditEventRow, seq)


def chain_head(session: Session) -> tuple[int, str]:
    head = session.execute(select(AuditHeadRow).where(AuditHeadRow.id == 1)).scalar_one()
    return head.seq, head.sha256
