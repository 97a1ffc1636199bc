"""Any record by its ID, every column as stored (the console's detail view): one primary-key
read on SQLAlchemy Core, so no ORM row leaves ``store``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from store.clock import as_utc
from store.ids import kind_of
from store.record_digest import EVIDENCE_TABLES, primary_key
from store.tables import (
    AcknowledgementRow,
    AuditEventRow,
    AuditTargetRow,
    DeliveryRow,
    ExecutionRecordRow,
    ScheduleRunRow,
    WorkerRunRow,
)

if TYPE_CHECKING:  # a type only: importing the context loads the audit log
    from store.services.context import StoreContext

# Columns that stay in the database even here: the private notes of an acknowledgement are
# shown by the Acknowledgements screen's own form, never in a generic view or a copy.
PRIVATE_COLUMNS = frozenset({"notes"})


AUDIT_PREFIX = "audit:"  # an audit event's ID in the console: "audit:<seq>"
RELATED_SHOWN = 10  # per relation; the screens page through the rest


@dataclass(frozen=True)
class Related:
    """A record that names the one shown (a reverse link of the detail view)."""

    relation: str  # e.g. "acknowledgement", "retry of the pair", "audit event"
    record_id: str
    summary: str


def audit_event_id(seq: int) -> str:
    return f"{AUDIT_PREFIX}{seq}"


def record_kind(record_id: str) -> str | None:
    """The kind of record an ID names, if the detail view can open it."""
    if not isinstance(record_id, str):
        return None
    if record_id.startswith(AUDIT_PREFIX):
        return "audit_event" if record_id[len(AUDIT_PREFIX):].isdigit() else None
    kind = kind_of(record_id)
    return kind if kind in EVIDENCE_TABLES else None


def read_record(ctx: StoreContext, record_id: str) -> dict[str, Any] | None:
    """Every column of the record, in table order; None if there is no such record."""
    kind = record_kind(record_id)
    if kind is None:
        return None
    if kind == "audit_event":
        return _read_audit_event(ctx, int(record_id[len(AUDIT_PREFIX):]))
    model = EVIDENCE_TABLES[kind]
    table: Any = model.__table__
    with ctx.db.connect() as conn:
        row = conn.execute(select(*table.columns).where(primary_key(model) == record_id)).first()
    if row is None:
        return None
    return {name: value for name, value in row._mapping.items() if name not in PRIVATE_COLUMNS}


def _read_audit_event(ctx: StoreContext, seq: int) -> dict[str, Any] | None:
    table: Any = AuditEventRow.__table__
    with ctx.db.connect() as conn:
        row = conn.execute(select(*table.columns).where(table.c.seq == seq)).first()
    if row is None:
        return None
    fields = dict(row._mapping)
    # One field per named record, so each is a link of its own.
    for index, target in enumerate(fields.pop("target_ids") or []):
        fields[f"target {index + 1}"] = target
    return fields


def _when(value: Any) -> str:
    return as_utc(value).strftime("%m-%d %H:%M") if value is not None else "-"


# kind → (relation, table, column that names the record, summary columns): the paths the
# detail view follows backwards. Only indexed columns (a million executions never scan).
_BACKWARDS: dict[str, tuple[tuple[str, Any, str, tuple[str, ...]], ...]] = {
    "plan": (("delivery", DeliveryRow, "plan_id", ("provider", "status", "attempt")),
             ("acknowledgement", AcknowledgementRow, "plan_id", ("provider", "state"))),
    "worker_run": (("execution", ExecutionRecordRow, "run_id", ("provider", "status")),),
    "schedule_run": (("delivery", DeliveryRow, "run_id", ("provider", "status")),),
    "schedule": (("worker run", WorkerRunRow, "schedule_id", ("mode",)),),
}


def related_records(ctx: StoreContext, record_id: str) -> list[Related]:
    """The records that name ``record_id`` (newest first, at most RELATED_SHOWN per
    relation): a plan's deliveries and acknowledgements, a run's executions, a delivery's
    retries and later acknowledgements of its pair, and the audit events that name it."""
    kind = record_kind(record_id)
    if kind is None or kind == "audit_event":
        return []
    found: list[Related] = []
    with ctx.db.connect() as conn:
        for relation, model, column, shown in _BACKWARDS.get(kind, ()):
            found += _naming(conn, relation, model, getattr(model.__table__.c, column) ==
                             record_id, shown)
        if kind in ("delivery", "execution"):
            found += _same_pair(conn, kind, record_id)
        if kind == "schedule":
            table: Any = ScheduleRunRow.__table__
            found += _naming(conn, "schedule run", ScheduleRunRow,
                             table.c.schedule_id == record_id, ("status",))
        targets: Any = AuditTargetRow.__table__
        events: Any = AuditEventRow.__table__
        for seq, action, decision, at in conn.execute(
                select(events.c.seq, events.c.action, events.c.decision, events.c.at)
                .join(targets, targets.c.seq == events.c.seq)
                .where(targets.c.target_id == record_id)
                .order_by(events.c.seq.desc()).limit(RELATED_SHOWN)):
            found.append(Related("audit event", audit_event_id(seq),
                                 f"{action} {decision} {_when(at)}"))
    return found


def _naming(conn: Any, relation: str, model: Any, where: Any,
            shown: tuple[str, ...]) -> list[Related]:
    table = model.__table__
    key = primary_key(model)
    rows = conn.execute(select(key, table.c.created_at, *(table.c[name] for name in shown))
                        .where(where).order_by(table.c.created_at.desc(), key.desc())
                        .limit(RELATED_SHOWN))
    return [Related(relation, row[0], " ".join([*(str(v) for v in row[2:]), _when(row[1])]))
            for row in rows]


def _same_pair(conn: Any, kind: str, record_id: str) -> list[Related]:
    """A delivery's (or execution's) pair: its other deliveries (the retries) and the
    acknowledgements of that plan and provider."""
    model = DeliveryRow if kind == "delivery" else ExecutionRecordRow
    table: Any = model.__table__
    pair = conn.execute(select(table.c.plan_id, table.c.provider)
                        .where(primary_key(model) == record_id)).first()
    if pair is None or pair.plan_id is None:
        return []
    deliveries: Any = DeliveryRow.__table__
    acks: Any = AcknowledgementRow.__table__
    same = _naming(conn, "delivery of the pair", DeliveryRow,
                   (deliveries.c.plan_id == pair.plan_id)
                   & (deliveries.c.provider == pair.provider)
                   & (deliveries.c.delivery_id != record_id), ("status", "attempt"))
    return same + _naming(conn, "acknowledgement", AcknowledgementRow,
                          (acks.c.plan_id == pair.plan_id) & (acks.c.provider == pair.provider),
                          ("state", "acknowledged_by"))
