"""Any record by its ID, every column as stored (the console's detail view): one primary-key
read on SQLAlchemy Core, so no ORM row leaves ``store``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from store.db import Database
from store.ids import kind_of
from store.record_digest import EVIDENCE_TABLES, primary_key

# Columns that stay in the database even here: the private notes of an acknowledgement are
# shown by the Acknowledgements screen's own form, never in a generic view or a copy.
PRIVATE_COLUMNS = frozenset({"notes"})


def record_kind(record_id: str) -> str | None:
    """The kind of record an ID names, if the detail view can open it."""
    kind = kind_of(record_id) if isinstance(record_id, str) else None
    return kind if kind in EVIDENCE_TABLES else None


def read_record(db: Database, record_id: str) -> dict[str, Any] | None:
    """Every column of the record, in table order; None if there is no such record."""
    kind = record_kind(record_id)
    if kind is None:
        return None
    model = EVIDENCE_TABLES[kind]
    table: Any = model.__table__
    with db.connect() as conn:
        row = conn.execute(select(*table.columns).where(primary_key(model) == record_id)).first()
    if row is None:
        return None
    return {name: value for name, value in row._mapping.items() if name not in PRIVATE_COLUMNS}
