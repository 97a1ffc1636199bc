"""Recovery items: the input. Import validates everything before writing anything."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from store.errors import UserError
from store.models import RecoveryItem
from store.services.context import StoreContext
from store.tables import RecoveryItemRow

MAX_IMPORT_ITEMS = 100_000


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "item"
    if first["type"] == "extra_forbidden":
        return f"unknown field {field!r}"
    if first["type"] == "missing":
        return f"missing field {field!r}"
    return f"field {field!r}: {first['msg']}"


def parse_recovery_items(text: str) -> list[RecoveryItem]:
    """A JSON array or JSON lines of objects; the error names the item and field."""
    stripped = text.strip()
    if not stripped:
        raise UserError("import: the file is empty")
    raw: list[Any]
    if stripped.startswith("["):
        try:
            raw = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise UserError(f"import: invalid JSON at line {exc.lineno}: {exc.msg}") from None
        labels = [f"item {index + 1}" for index in range(len(raw))]
    else:
        raw, labels = [], []
        for number, line in enumerate(stripped.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UserError(f"import: line {number}: invalid JSON ({exc.msg})") from None
            labels.append(f"line {number}")
    if len(raw) > MAX_IMPORT_ITEMS:
        raise UserError(f"import: {len(raw)} items is more than {MAX_IMPORT_ITEMS} in one file")
    items: list[RecoveryItem] = []
    seen: set[str] = set()
    for label, entry in zip(labels, raw, strict=True):
        if not isinstance(entry, dict):
            raise UserError(f"import: {label}: expected an object")
        try:
            item = RecoveryItem.model_validate(entry)
        except ValidationError as exc:
            raise UserError(f"import: {label}: {_first_error(exc)}") from None
        if item.recovery_id in seen:
            raise UserError(f"import: {label}: duplicate recovery_id {item.recovery_id!r}")
        seen.add(item.recovery_id)
        items.append(item)
    return items


def import_recovery_items(ctx: StoreContext, items: list[RecoveryItem]) -> dict[str, int]:
    """Insert new items and update known ones (an item's closure state moves on)."""
    decision = ctx.require("recovery.import")
    now = ctx.clock()
    inserted = updated = 0
    with ctx.write() as session:
        ids = [item.recovery_id for item in items]
        existing: dict[str, RecoveryItemRow] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for row in session.execute(select(RecoveryItemRow).where(
                    RecoveryItemRow.recovery_id.in_(chunk))).scalars():
                existing[row.recovery_id] = row
        for item in items:
            values = item.model_dump()
            known = existing.get(item.recovery_id)
            if known is None:
                session.add(RecoveryItemRow(**values, created_at=now,
                                            created_by=ctx.identity.actor))
                inserted += 1
            else:
                for key, value in values.items():
                    setattr(known, key, value)
                updated += 1
        summary = {"imported": len(items), "inserted": inserted, "updated": updated}
        ctx.audit(session, "recovery.import", decision, ids[:20],
                  f"imported {len(items)} recovery items", {"items": [i.model_dump(mode="json")
                                                                     for i in items]})
    return summary
