"""What someone with write access to the SQLite file can do, done the way they would do it:
drop the triggers, edit rows, recompute the hash chain with cavra's own (public) algorithm."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from store.audit import GENESIS, _event_digest, _hashable
from store.tables import AuditEventRow


def sql(db_path: Path, *statements: str, params: tuple[Any, ...] = ()) -> None:
    conn = sqlite3.connect(db_path)
    try:
        for statement in statements:
            conn.execute(statement, params if "?" in statement else ())
        conn.commit()
    finally:
        conn.close()


def triggers(db_path: Path) -> list[str]:
    conn = sqlite3.connect(db_path)
    try:
        return [name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")]
    finally:
        conn.close()


def drop_all_triggers(db_path: Path) -> list[str]:
    """Drop every trigger; returns their SQL, so a careful attacker can put them back."""
    conn = sqlite3.connect(db_path)
    try:
        saved = [text for (text,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger'")]
    finally:
        conn.close()
    sql(db_path, *(f"DROP TRIGGER {name}" for name in triggers(db_path)))
    return saved


def restore_triggers(db_path: Path, saved: list[str]) -> None:
    sql(db_path, *saved)


def recompute_chain(db_path: Path) -> None:
    """Relink and rehash every event from genesis, reset the head and put the triggers back:
    the chain walk and the trigger check both pass."""
    saved = drop_all_triggers(db_path)
    engine = create_engine(f"sqlite:///{db_path}")
    with Session(engine) as session, session.begin():
        prev = GENESIS
        last = 0
        for row in session.execute(select(AuditEventRow).order_by(AuditEventRow.seq)).scalars():
            row.prev_sha256 = prev
            row.sha256 = _event_digest(_hashable(row))
            prev, last = row.sha256, row.seq
        session.flush()
    engine.dispose()
    sql(db_path, "UPDATE audit_head SET seq = ?, sha256 = ? WHERE id = 1", params=(last, prev))
    restore_triggers(db_path, saved)


def renumber(db_path: Path) -> None:
    """Close the gap a deleted event left: seq 1..n again, audit_targets following."""
    conn = sqlite3.connect(db_path)
    try:
        seqs = [seq for (seq,) in conn.execute("SELECT seq FROM audit_events ORDER BY seq")]
        for new, old in enumerate(seqs, start=1):
            if new != old:
                conn.execute("UPDATE audit_events SET seq = ? WHERE seq = ?", (new, old))
                conn.execute("UPDATE audit_targets SET seq = ? WHERE seq = ?", (new, old))
        conn.commit()
    finally:
        conn.close()


def head(db_path: Path) -> tuple[int, str]:
    conn = sqlite3.connect(db_path)
    try:
        seq, sha = conn.execute("SELECT seq, sha256 FROM audit_head WHERE id = 1").fetchone()
        return int(seq), str(sha)
    finally:
        conn.close()


def forget_local_checkpoints(db_path: Path) -> None:
    """The database's own copies of its checkpoints would give the rewrite away: delete them
    (the witnesses keep theirs)."""
    saved = drop_all_triggers(db_path)
    sql(db_path, "DELETE FROM audit_checkpoints")
    restore_triggers(db_path, saved)
