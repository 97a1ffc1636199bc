"""Recovery items: the input. An import is validated whole before anything is written, in one
streaming pass that never holds the file in memory, then written in batches inside one
transaction (nothing is written if any item is bad)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError
from sqlalchemy import bindparam, insert, select, update

from store.digest import canonical_json
from store.errors import UserError
from store.models import RecoveryItem
from store.services.context import StoreContext
from store.tables import RecoveryItemRow
from store.text import control_character

MAX_IMPORT_ITEMS = 1_000_000
BATCH = 1_000
_CHUNK = 1 << 16
_WS = " \t\r\n"
_NUMBER = "0123456789.eE+-"
TEXT_FIELDS = ("recovery_id", "connector", "category", "drill_id", "playbook_id")


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "item"
    if first["type"] == "extra_forbidden":
        return f"unknown field {field!r}"
    if first["type"] == "missing":
        return f"missing field {field!r}"
    return f"field {field!r}: {first['msg'].removeprefix('Value error, ')}"


def _array_entries(stream: IO[str], first: str) -> Iterator[tuple[str, Any]]:
    """The elements of a JSON array, decoded one at a time (``raw_decode``) from a buffer that
    holds little more than the element being read."""
    decoder = json.JSONDecoder()
    buffer = first[first.index("[") + 1:]
    index = 0
    expect_value = True

    def fill() -> bool:
        nonlocal buffer
        more = stream.read(_CHUNK)
        buffer += more
        return bool(more)

    while True:
        buffer = buffer.lstrip(_WS)
        while not buffer and fill():
            buffer = buffer.lstrip(_WS)
        if not buffer:
            raise UserError(f"import: invalid JSON after item {index}: the array never ends")
        if buffer[0] == "]" and (expect_value is False or index == 0):
            if buffer[1:].strip() or stream.read().strip():
                raise UserError("import: invalid JSON: text after the closing ]")
            return
        if not expect_value:
            if buffer[0] != ",":
                raise UserError(f"import: invalid JSON after item {index}: expected , or ]")
            buffer = buffer[1:]
            expect_value = True
            continue
        while True:
            try:
                value, end = decoder.raw_decode(buffer)
            except json.JSONDecodeError as exc:
                if fill():  # the element may go on in the next chunk
                    continue
                raise UserError(f"import: item {index + 1}: invalid JSON ({exc.msg})") from None
            if (isinstance(value, int | float) and not buffer[end:].strip(_NUMBER)
                    and fill()):
                continue  # a number may go on in the next chunk ("-2" of "-2.5")
            break
        buffer = buffer[end:]
        index += 1
        expect_value = False
        yield f"item {index}", value


def _line_entries(stream: IO[str], first: str) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(_lines(stream, first), start=1):
        if not line.strip():
            continue
        try:
            yield f"line {number}", json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"import: line {number}: invalid JSON ({exc.msg})") from None


def _lines(stream: IO[str], first: str) -> Iterator[str]:
    rest = ""
    chunk = first
    while chunk:
        rest += chunk
        *whole, rest = rest.split("\n")
        yield from whole
        chunk = stream.read(_CHUNK)
    if rest:
        yield rest


def iter_recovery_items(stream: IO[str]) -> Iterator[RecoveryItem]:
    """Validated items from a JSON array or JSON lines; the error names the item and field."""
    first = stream.read(_CHUNK)
    while first and not first.strip() and (more := stream.read(_CHUNK)):
        first += more
    if not first.strip():
        raise UserError("import: the file is empty")
    entries = (_array_entries(stream, first) if first.lstrip().startswith("[")
               else _line_entries(stream, first))
    seen: set[str] = set()
    for label, entry in entries:
        if not isinstance(entry, dict):
            raise UserError(f"import: {label}: expected an object")
        for field in TEXT_FIELDS:  # input only: rows an older cavra stored still read back
            bad = control_character(entry[field]) if isinstance(entry.get(field), str) else None
            if bad is not None:
                raise UserError(f"import: {label}: field {field!r}: contains a control "
                                f"character ({bad})")
        try:
            item = RecoveryItem.model_validate(entry)
        except ValidationError as exc:
            raise UserError(f"import: {label}: {_first_error(exc)}") from None
        if item.recovery_id in seen:
            raise UserError(f"import: {label}: duplicate recovery_id {item.recovery_id!r}")
        seen.add(item.recovery_id)
        if len(seen) > MAX_IMPORT_ITEMS:
            raise UserError(f"import: more than {MAX_IMPORT_ITEMS} items in one file")
        yield item


def parse_recovery_items(text: str) -> list[RecoveryItem]:
    import io

    return list(iter_recovery_items(io.StringIO(text)))


def _open(path: Path) -> IO[str]:
    try:
        return path.open(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"import: {path}: no such file") from None
    except OSError as exc:
        raise UserError(f"import: {path}: unreadable ({exc.__class__.__name__})") from None


def _scan(path: Path) -> Iterator[RecoveryItem]:
    with _open(path) as stream:
        try:
            yield from iter_recovery_items(stream)
        except UnicodeDecodeError:
            raise UserError(f"import: {path}: unreadable (not UTF-8)") from None


def import_recovery_file(ctx: StoreContext, path: str | Path) -> dict[str, int]:
    """Validate the whole file (one pass, constant memory), then write it (a second pass)."""
    file = Path(path)
    ctx.require("recovery.import")
    for _ in _scan(file):
        pass
    return import_recovery_items(ctx, _scan(file))


def import_recovery_items(ctx: StoreContext, items: Iterable[RecoveryItem]) -> dict[str, int]:
    """Insert new items and update known ones (an item's closure state moves on), in batches
    of plain INSERT/UPDATE statements inside one transaction."""
    decision = ctx.require("recovery.import")
    now = ctx.clock()
    inserted = updated = 0
    first_ids: list[str] = []
    digest = hashlib.sha256()
    table: Any = RecoveryItemRow.__table__
    change = update(table).where(table.c.recovery_id == bindparam("key")).values(
        {name: bindparam(name) for name in RecoveryItem.model_fields if name != "recovery_id"})
    iterator = iter(items)
    with ctx.write() as session:
        while batch := list(islice(iterator, BATCH)):
            values = [item.model_dump() for item in batch]
            ids = [value["recovery_id"] for value in values]
            first_ids.extend(ids[:20 - len(first_ids)])
            for item in batch:
                digest.update(canonical_json(item.model_dump(mode="json")).encode() + b"\n")
            known = set(session.execute(select(RecoveryItemRow.recovery_id).where(
                RecoveryItemRow.recovery_id.in_(ids))).scalars())
            new = [{**v, "created_at": now, "created_by": ctx.identity.actor}
                   for v in values if v["recovery_id"] not in known]
            old = [{**{k: v for k, v in value.items() if k != "recovery_id"},
                    "key": value["recovery_id"]} for value in values
                   if value["recovery_id"] in known]
            if new:
                session.execute(insert(table), new)
            if old:
                session.execute(change, old)
            inserted += len(new)
            updated += len(old)
        imported = inserted + updated
        summary = {"imported": imported, "inserted": inserted, "updated": updated}
        ctx.audit(session, "recovery.import", decision, first_ids,
                  f"imported {imported} recovery items",
                  {"items_sha256": digest.hexdigest(), "count": imported})
    return summary
