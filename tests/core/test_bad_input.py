"""Bad input: one line on stderr, exit 2, the database unchanged (SPEC §10)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.core.helpers import run_cli, run_cli_json, table_dump

GOOD_ITEM = {"recovery_id": "rec-1", "connector": "payments-api", "category": "rollback",
             "opened_at": "2026-11-27T06:00:00Z"}


@pytest.fixture
def seeded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, Path]:
    db_path = tmp_path / "cli.db"
    url = f"sqlite:///{db_path}"
    source = tmp_path / "items.json"
    source.write_text(json.dumps([GOOD_ITEM]))
    run_cli_json(capsys, "--db", url, "recovery", "import", str(source))
    plan = run_cli_json(capsys, "--db", url, "escalation", "plan")
    run_cli_json(capsys, "--db", url, "escalation", "deliver", plan["plan_id"])
    return url, db_path


def _bad(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


CASES: list[tuple[str, Any, str]] = [
    ("malformed JSON array", lambda p: ["recovery", "import", _bad(p, "a.json", "[{")],
     "invalid JSON"),
    ("malformed JSON lines", lambda p: ["recovery", "import", _bad(
        p, "b.jsonl", json.dumps(GOOD_ITEM) + "\n{nope\n")], "line 2: invalid JSON"),
    ("unknown field", lambda p: ["recovery", "import", _bad(
        p, "c.json", json.dumps([{**GOOD_ITEM, "owner": "x"}]))], "unknown field 'owner'"),
    ("unknown closure state", lambda p: ["recovery", "import", _bad(
        p, "d.json", json.dumps([{**GOOD_ITEM, "closure_state": "done"}]))],
     "field 'closure_state'"),
    ("negative failure count", lambda p: ["recovery", "import", _bad(
        p, "e.json", json.dumps([{**GOOD_ITEM, "failure_count": -1}]))],
     "field 'failure_count'"),
    ("naive timestamp", lambda p: ["recovery", "import", _bad(
        p, "f.json", json.dumps([{**GOOD_ITEM, "opened_at": "2026-11-27T06:00:00"}]))],
     "should have timezone info"),
    ("huge failure count", lambda p: ["recovery", "import", _bad(
        p, "e2.json", json.dumps([{**GOOD_ITEM, "failure_count": 10**20}]))],
     "field 'failure_count'"),
    ("second item bad, first good", lambda p: ["recovery", "import", _bad(
        p, "g.json", json.dumps([{**GOOD_ITEM, "recovery_id": "rec-2"},
                                 {**GOOD_ITEM, "connector": ""}]))], "item 2"),
    ("not UTF-8", lambda p: ["recovery", "import", _bad(p, "h.json", b"\xff\xfe[")],
     "unreadable"),
    ("missing file", lambda p: ["recovery", "import", str(p / "nope.json")], "no such file"),
    ("unknown ack state", lambda p: ["escalation", "ack", "latest", "--provider", "outbox",
                                     "--state", "happy"], "unknown acknowledgement state"),
    ("unknown plan", lambda p: ["escalation", "deliver", "esc-0000000000"], "not found"),
    ("unknown plan ack", lambda p: ["escalation", "ack", "esc-0000000000", "--provider",
                                    "outbox", "--state", "accepted"], "not found"),
    ("unknown provider", lambda p: ["escalation", "deliver", "latest", "--provider", "sms"],
     "not configured"),
    ("negative SLO", lambda p: ["escalation", "plan", "--slo-minutes", "-5"], "must be 1 or more"),
    ("zero max", lambda p: ["retry", "run", "--max", "0"], "must be 1 or more"),
    ("max above 100", lambda p: ["retry", "run", "--max", "101"], "between 1 and 100"),
    ("non-number max", lambda p: ["retry", "run", "--max", "many"], "not a whole number"),
    ("unknown run", lambda p: ["report", "deliver", "run-0000000000"], "not found"),
    ("unknown evidence", lambda p: ["evidence", "show", "exe-0000000000"], "not found"),
    ("unknown command", lambda p: ["escalation", "explode"], "invalid choice"),
    ("invalid TOML", lambda p: ["--config", _bad(p, "c1.toml", "[providers\n"), "metrics"],
     "invalid TOML"),
    ("unknown config key", lambda p: ["--config", _bad(
        p, "c2.toml", "[retry]\nmax_attempt = 3\n"), "metrics"], "retry.max_attempt: unknown key"),
    ("no live sends at once", lambda p: ["--config", _bad(
        p, "c5.toml", "[retry]\nconcurrency = 0\n"), "metrics"],
     "retry.concurrency: Input should be greater than or equal to 1"),
    ("too many live sends at once", lambda p: ["--config", _bad(
        p, "c6.toml", "[retry]\nconcurrency = 65\n"), "metrics"],
     "retry.concurrency: Input should be less than or equal to 64"),
    ("unknown provider key", lambda p: ["--config", _bad(
        p, "c3.toml", "[providers.h]\nkind='webhook'\nurl_env='U'\nurl='http://x'\n"),
        "metrics"], "providers.h.url: unknown key"),
    ("missing config file", lambda p: ["--config", str(p / "none.toml"), "metrics"],
     "no such file"),
    ("unreadable config", lambda p: ["--config", str(p), "metrics"], "unreadable"),
    ("routing to unknown provider", lambda p: ["--config", _bad(
        p, "c4.toml", "[routing]\ncritical = ['pager']\n"), "metrics"], "unknown provider 'pager'"),
]


@pytest.mark.parametrize(("label", "build_args", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_nothing_written(
        label: str, build_args: Any, message: str, seeded: tuple[str, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    url, db_path = seeded
    before = table_dump(db_path)
    code, out, err = run_cli(capsys, "--db", url, *build_args(tmp_path))
    assert code == 2, (label, out, err)
    assert err.count("\n") == 1 and err.startswith("cavra: error: "), err
    assert message in err
    assert "Traceback" not in err + out
    assert table_dump(db_path) == before


def test_bad_database_url_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "--db", "not a url", "metrics")
    assert code == 2 and err.count("\n") == 1 and "not a database URL" in err


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://cavra:hunter2secret@127.0.0.1:54x32/cavra",  # malformed port
    "postgresql+psycopg://cavra:hunter2secret@127.0.0.1:1/cavra",  # nothing listens there
])
def test_unusable_database_is_one_line_without_the_password(
        url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--db", url, "metrics")
    assert code == 2 and err.count("\n") == 1 and err.startswith("cavra: error: database:")
    assert "hunter2secret" not in out + err


def test_an_offset_in_imported_times_is_kept_as_the_same_instant(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """+02:00 on the way in is the same moment in the database (read back independently)."""
    items = tmp_path / "items.json"
    items.write_text(json.dumps([{"recovery_id": "rec-berlin", "connector": "c",
                                  "category": "rollback",
                                  "opened_at": "2026-11-30T10:00:00+02:00"}]))
    db = tmp_path / "cavra.db"
    code, _, err = run_cli(capsys, "--db", f"sqlite:///{db}", "recovery", "import", str(items))
    assert code == 0, err
    conn = sqlite3.connect(db)
    [(stored,)] = conn.execute("SELECT opened_at FROM recovery_items").fetchall()
    conn.close()
    assert str(stored).startswith("2026-11-30 08:00:00")
