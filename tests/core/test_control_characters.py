"""Control characters never enter (every text input refuses them, naming the field) and never
leave raw (text an older database already holds is shown with visible escapes, never as
terminal control or as markup)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from cavra_tui.bootstrap import build_runtime
from cavra_tui.widgets.record_table import RecordTable
from tests.core.helpers import run_cli, table_dump
from tests.tui.conftest import make_app, settle

ESC = "\x1b"
ITEM = {"recovery_id": "rec-1", "connector": "payments-api", "category": "rollback",
        "opened_at": "2026-01-01T00:00:00Z"}


@pytest.fixture
def db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    items = tmp_path / "ok.json"
    items.write_text(json.dumps([ITEM]))
    path = tmp_path / "cavra.db"
    for command in (["recovery", "import", str(items)], ["escalation", "plan"],
                    ["escalation", "deliver", "latest"]):
        code, _, err = run_cli(capsys, "--db", f"sqlite:///{path}", *command)
        assert code == 0, err
    return path


def _refused(capsys: pytest.CaptureFixture[str], db: Path, *args: str) -> str:
    before = table_dump(db)
    code, out, err = run_cli(capsys, "--db", f"sqlite:///{db}", *args)
    assert (code, out) == (2, ""), err
    assert len(err.splitlines()) == 1 and ESC not in err
    assert table_dump(db) == before
    return err


@pytest.mark.parametrize(("field", "value"), [
    ("connector", "conn-\x1b[5;41mBLINK"), ("category", "cat\x1b[2J\x1b[H"),
    ("drill_id", "drill\x00"), ("recovery_id", "rec\x7f"), ("playbook_id", "pb\x9b1m"),
    ("connector", "two\nlines"),
])
def test_an_import_with_a_control_character_writes_nothing(
        db: Path, tmp_path: Path, field: str, value: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{**ITEM, "recovery_id": "rec-2", field: value}]))
    err = _refused(capsys, db, "recovery", "import", str(bad))
    assert f"field {field!r}: contains a control character (\\x" in err


@pytest.mark.parametrize(("option", "value", "words"), [
    ("--ref", "INC-1\x1b[2J", "--ref: contains a control character (\\x1b)"),
    ("--ref", "INC-1\nINC-2", "--ref: contains a control character (\\x0a)"),
    ("--notes", "paged\x1b]0;pwned\x07", "--notes: contains a control character (\\x1b)"),
])
def test_ack_text_with_a_control_character_writes_nothing(
        db: Path, option: str, value: str, words: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(capsys, db, "escalation", "ack", "latest", "--provider", "outbox",
                   "--state", "accepted", option, value)
    assert words in err


def test_notes_may_hold_newlines_and_tabs(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "--db", f"sqlite:///{db}", "escalation", "ack", "latest",
                           "--provider", "outbox", "--state", "accepted",
                           "--notes", "line one\n\tline two")
    assert code == 0, err


def test_schedule_names_refuse_control_characters(db: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _refused(capsys, db, "schedule", "add", "night\x1b[2J", "--every", "1h")


@pytest.mark.parametrize(("config", "words"), [
    ('[providers.ops]\nkind = "email"\nhost = "smtp\\u001b[2J"\nsender = "a@b"\n'
     'to = ["c@d"]\n', "providers.ops.host: contains a control character (\\x1b)"),
    ('[providers."Ops Hook"]\nkind = "outbox"\n', "'Ops Hook' is not a provider name"),
    ('[providers."ops\\u001b"]\nkind = "outbox"\n', "is not a provider name"),
    ('[roles]\noperator = ["bob\\u0000"]\n', "roles.operator: contains a control character"),
])
def test_config_strings_and_provider_names(db: Path, tmp_path: Path, config: str, words: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(config)
    assert words in _refused(capsys, db, "--config", str(path), "escalation", "plan")


def _seed_escapes(db: Path) -> None:
    """What an older cavra let in: escapes and markup stored in recovery items."""
    conn = sqlite3.connect(db)
    conn.execute("UPDATE recovery_items SET connector = ?, category = ?",
                 ("conn-\x1b[5;41mBLINK", "[red]cat[/red]\x1b[2J\x1b[H"))
    conn.commit()
    conn.close()


def test_stored_escapes_never_reach_the_terminal_from_the_cli(
        db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _seed_escapes(db)
    code, out, err = run_cli(capsys, "--db", f"sqlite:///{db}", "escalation", "plan")
    assert code == 0, err
    assert ESC not in out and "\x1b" not in err
    assert "conn-\\x1b[5;41mBLINK" in out


async def test_stored_escapes_and_markup_never_reach_the_console(db: Path) -> None:
    _seed_escapes(db)
    runtime = build_runtime(db_url=f"sqlite:///{db}")
    try:
        from store.services.escalation import build_plan

        build_plan(runtime.ctx)
        app = make_app(runtime)
        async with app.run_test(size=(200, 50)) as pilot:
            await pilot.press("2")
            await settle(pilot)
            routes = app.screen.query_one("#routes", RecordTable)
            cells = [str(getattr(cell, "plain", cell)) for row in range(routes.row_count)
                     for cell in routes.get_row_at(row)]
            assert any("conn-\\x1b[5;41mBLINK" in cell for cell in cells)
            assert any("[red]cat[/red]\\x1b[2J" in cell for cell in cells)  # not markup
            assert not any(ESC in cell for cell in cells)
            screen = app.export_screenshot()
            assert ESC not in screen
    finally:
        runtime.close()


@pytest.mark.parametrize("command", [["metrics"], ["health"], ["audit", "verify"],
                                     ["audit", "export"], ["schedule", "list"],
                                     ["provider", "list"], ["evidence", "show", "exe-1"]])
def test_a_read_only_command_never_creates_a_database(tmp_path: Path, command: list[str],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    typo = tmp_path / "cavra-typo.db"
    code, out, err = run_cli(capsys, "--db", f"sqlite:///{typo}", *command)
    assert (code, out) == (2, "")
    assert err == (f"cavra: error: database: {typo} does not exist (this command only reads, "
                   "and creates nothing: check --db / CAVRA_DB_URL)\n")
    assert not typo.exists()
