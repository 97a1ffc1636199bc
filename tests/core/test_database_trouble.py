"""Databases as people find them (SPEC §10): an auditor's read-only copy opens for reading
and is never touched; a damaged file, a full disk, a folder that cannot be made, an
unwritable log each get one specific line (exit 2), never a traceback or "internal error"."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import event

from cavra_tui.bootstrap import build_runtime
from cavra_tui.failures import describe_failure
from store.services.recovery import import_recovery_items
from tests.core.helpers import item, run_cli


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err and "internal error" not in err, err
    return err


def _seeded(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    assert run_cli(capsys, "--db", f"sqlite:///{quote(str(db))}", "seed-demo")[0] == 0
    conn = sqlite3.connect(db)  # fold the WAL into the file, as a copy would be handed over
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()


def _read_only_seeded(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    """A seeded database alone in its folder, both made read-only (no write bit at all)."""
    _seeded(capsys, db)
    for extra in db.parent.iterdir():
        if extra != db:
            extra.unlink()
    db.chmod(0o444)
    db.parent.chmod(0o555)


@pytest.fixture
def read_only_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Path]:
    db = tmp_path / "copy" / "cavra.db"
    _read_only_seeded(capsys, db)
    yield db
    db.parent.chmod(0o755)
    db.chmod(0o644)


def _state(folder: Path) -> tuple[list[str], str]:
    files = sorted(p.name for p in folder.iterdir())
    return files, hashlib.sha256((folder / "cavra.db").read_bytes()).hexdigest()


def test_a_read_only_copy_is_read_and_never_touched(read_only_copy: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    before = _state(read_only_copy.parent)
    url = f"sqlite:///{read_only_copy}"
    code, out, err = run_cli(capsys, "--db", url, "metrics", "--json")
    assert code == 0, err
    conn = sqlite3.connect(f"file:{read_only_copy}?immutable=1", uri=True)
    [(plans,)] = conn.execute("SELECT COUNT(*) FROM escalation_plans").fetchall()
    conn.close()
    assert json.loads(out)["open_escalations"] >= 0 and plans > 0
    for argv in (["audit", "verify"], ["health"], ["--read-only", "metrics"],
                 ["schedule", "list"], ["audit", "export", "-o", str(tmp_path / "a.jsonl")]):
        code, _, err = run_cli(capsys, "--db", url, *argv)
        assert code == 0, (argv, err)
    # Writes are refused in one line that says why, and nothing is written.
    for argv in (["health", "--record"], ["escalation", "plan"]):
        code, _, err = run_cli(capsys, "--db", url, *argv)
        assert code == 2 and "the database is a read-only copy" in _one_line(err)
    assert _state(read_only_copy.parent) == before  # no -wal, no -shm, same bytes
    assert not stat.S_IMODE(read_only_copy.stat().st_mode) & 0o222


def test_the_console_header_says_read_only_copy(read_only_copy: Path) -> None:
    runtime = build_runtime(db_url=f"sqlite:///{read_only_copy}")
    try:
        assert runtime.read_only_copy and runtime.identity.read_only
        from cavra_tui.app import CavraApp

        info = CavraApp(runtime, start_scheduler=False, live_refresh=False).header_info("x")
        assert info.read_only_copy
    finally:
        runtime.close()


def test_a_damaged_database_gets_one_line(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cavra.db"
    _seeded(capsys, db)
    data = bytearray(db.read_bytes())
    page = 4096
    for offset in range(page * 2, len(data), page):  # every page after the schema's: garbage
        data[offset:offset + 64] = b"\xa5" * 64
    db.write_bytes(bytes(data))
    for argv in (["audit", "verify"], ["escalation", "plan"]):
        code, _, err = run_cli(capsys, "--db", f"sqlite:///{db}", *argv)
        assert code == 2, err
        assert "database:" in _one_line(err)
        assert "damaged" in err or "not a database" in err


def test_not_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "notes.txt"
    db.write_text("meeting notes, not a database\n" * 200)
    code, _, err = run_cli(capsys, "--db", f"sqlite:///{db}", "metrics")
    assert code == 2 and "file is not a database" in _one_line(err)


def test_a_full_disk_is_said_as_such(make_runtime: Any, write_config: Any, clock: Any) -> None:
    runtime = make_runtime(write_config(""))
    engine = runtime.db.write_engine
    engine.dispose()

    @event.listens_for(engine, "connect")
    def _full(dbapi_connection: Any, _record: Any) -> None:
        # SQLite's own "disk full": no page may be added beyond what the file has now.
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    with pytest.raises(Exception) as raised:
        import_recovery_items(runtime.ctx, [item(f"rec-{n}", clock.now, 300, connector="x" * 40)
                                            for n in range(5000)])
    failure = describe_failure(raised.value)
    assert failure.exit_code == 2 and not failure.internal
    assert "disk is full" in failure.line and "\n" not in failure.line


def test_a_database_folder_that_cannot_be_made(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, "--db", f"sqlite:///{blocker}/sub/cavra.db", "recovery",
                           "import", str(tmp_path / "none.json"))
    assert code == 2 and "cannot create the folder" in _one_line(err)


def test_an_unwritable_log_is_one_warning_and_the_command_still_works(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
        ) -> None:
    blocker = tmp_path / "data-is-a-file"
    blocker.write_text("")
    monkeypatch.setenv("CAVRA_DATA_DIR", str(blocker))
    db = tmp_path / "cavra.db"
    code, out, err = run_cli(capsys, "--db", f"sqlite:///{db}", "seed-demo")
    assert code == 0
    [warning, created] = err.splitlines()
    assert warning.startswith("cavra: warning: cannot write the log") and "Traceback" not in err
    assert created == f"cavra: created a new database at {db}"


def test_a_copy_named_with_uri_characters_is_read_as_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "odd"
    db = folder / "c?x%41#1.db"
    _read_only_seeded(capsys, db)
    try:
        # In a URL the name is percent-encoded; it must reach SQLite decoded exactly once.
        code, _, err = run_cli(capsys, "--db", f"sqlite:///{quote(str(db))}", "audit",
                               "verify")
        assert code == 0, err
        assert sorted(p.name for p in folder.iterdir()) == [db.name]  # nothing stray made
    finally:
        folder.chmod(0o755)


def test_a_read_only_copy_with_an_uncheckpointed_wal_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "walcopy"
    db = folder / "cavra.db"
    assert run_cli(capsys, "--db", f"sqlite:///{db}", "seed-demo")[0] == 0
    holder = sqlite3.connect(db)  # keeps the WAL from being folded in on close
    holder.execute("PRAGMA wal_autocheckpoint = 0")
    holder.execute("CREATE TABLE scratch (x)")
    holder.commit()
    assert (folder / "cavra.db-wal").stat().st_size > 0
    folder.chmod(0o555)
    db.chmod(0o444)
    try:
        code, _, err = run_cli(capsys, "--db", f"sqlite:///{db}", "metrics")
        assert code == 2 and "uncheckpointed cavra.db-wal" in _one_line(err)
    finally:
        folder.chmod(0o755)
        db.chmod(0o644)
        holder.close()
