"""`cavra quiet add|list|remove` through the command line (the real clock): bad input is one
line, exit 2, nothing written; only release_manager changes windows, refusals are audited;
an edited window shows in `audit verify`; a PostgreSQL login role granted with `cavra db
grant` manages windows but cannot delete one."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from store.policy import current_user
from tests import pg_roles_fixtures
from tests.core.helpers import run_cli, run_cli_json, table_dump
from tests.pg_roles_fixtures import GrantedDatabase

pg_granted = pg_roles_fixtures.pg_granted  # the shared fixture, used by the last test

ME = current_user()
ITEMS = [{"recovery_id": "rec-1", "connector": "payments-api", "category": "rollback",
          "opened_at": "2026-01-01T00:00:00Z"}]
CONFIG = """
[providers.ops-webhook]
kind = "webhook"
url_env = "CAVRA_TEST_HOOK_URL"
timeout_s = 2

[routing]
critical = ["ops-webhook"]
warning = ["ops-webhook"]
fallback = "outbox"
"""


@pytest.fixture
def seeded(tmp_path: Path, capsys: pytest.CaptureFixture[str],
           monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], Path]:
    """A database with a plan and one active window ``maint``; the global options to use."""
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", "http://127.0.0.1:9/hook")
    db_path = tmp_path / "cli.db"
    config = tmp_path / "cavra.toml"
    config.write_text(CONFIG, encoding="utf-8")
    source = tmp_path / "items.json"
    source.write_text(json.dumps(ITEMS), encoding="utf-8")
    options = ["--db", f"sqlite:///{db_path}", "--config", str(config)]
    run_cli_json(capsys, *options, "recovery", "import", str(source))
    run_cli_json(capsys, *options, "escalation", "plan")
    run_cli_json(capsys, *options, "quiet", "add", "maint", "--provider", "ops-webhook",
                 "--from", "now", "--until", "+2h")
    return options, db_path


BAD: list[tuple[str, list[str], str]] = [
    ("unknown provider", ["add", "w1", "--provider", "sms", "--from", "now", "--until", "+1h"],
     "provider 'sms' is not configured"),
    ("until before from", ["add", "w1", "--provider", "ops-webhook", "--from", "+2h",
                           "--until", "+1h"], "must be later than --from"),
    ("until equals from", ["add", "w1", "--provider", "ops-webhook", "--from",
                           "2030-01-01T10:00:00+01:00", "--until", "2030-01-01T09:00:00Z"],
     "must be later than --from"),
    ("until passed", ["add", "w1", "--provider", "ops-webhook", "--from",
                      "2020-01-01T00:00:00Z", "--until", "2020-01-01T01:00:00Z"], "has passed"),
    ("bad time", ["add", "w1", "--provider", "ops-webhook", "--from", "tomorrow", "--until",
                  "+1h"], "--from 'tomorrow': use ISO 8601 with an offset"),
    ("bad duration", ["add", "w1", "--provider", "ops-webhook", "--from", "now", "--until",
                      "+2 hours"], "--until '+2 hours'"),
    ("no offset", ["add", "w1", "--provider", "ops-webhook", "--from",
                   "2030-01-01T10:00:00", "--until", "+1h"], "has no offset"),
    ("too long", ["add", "w1", "--provider", "ops-webhook", "--from", "now", "--until",
                  "2099-01-01T00:00:00Z"], "at most 366 days"),
    ("duplicate name", ["add", "maint", "--provider", "ops-webhook", "--from", "now",
                        "--until", "+1h"], "a quiet window named 'maint' already exists"),
    ("bad name", ["add", "Maint!", "--provider", "ops-webhook", "--from", "now", "--until",
                  "+1h"], "quiet window name 'Maint!'"),
    ("name too long", ["add", "a" * 51, "--provider", "ops-webhook", "--from", "now",
                       "--until", "+1h"], "use 1–50 of a-z"),
    ("control character", ["add", "ma\x1bint", "--provider", "ops-webhook", "--from", "now",
                           "--until", "+1h"], "must be printable"),
    ("bad severity", ["add", "w1", "--provider", "ops-webhook", "--from", "now", "--until",
                      "+1h", "--severity", "info"], "invalid choice: 'info'"),
    ("no provider", ["add", "w1", "--from", "now", "--until", "+1h"],
     "the following arguments are required: --provider"),
    ("no until", ["add", "w1", "--provider", "ops-webhook", "--from", "now"],
     "the following arguments are required: --until"),
    ("unknown name on remove", ["remove", "nightly"], "quiet window 'nightly' not found"),
    ("unknown ID on remove", ["remove", "qwn-0000000000"], "'qwn-0000000000' not found"),
]


@pytest.mark.parametrize(("label", "args", "message"), BAD, ids=[c[0] for c in BAD])
def test_bad_input_is_one_line_exit_2_nothing_written(
        label: str, args: list[str], message: str, seeded: tuple[list[str], Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    options, db_path = seeded
    before = table_dump(db_path)
    code, out, err = run_cli(capsys, *options, "quiet", *args)
    assert code == 2, (label, out, err)
    assert err.count("\n") == 1 and err.startswith("cavra: error: "), err
    assert message in err, err
    assert "Traceback" not in out + err
    assert table_dump(db_path) == before


def test_list_remove_and_deliver_through_the_cli(seeded: tuple[list[str], Path],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    options, db_path = seeded
    [listed] = run_cli_json(capsys, *options, "quiet", "list")
    assert (listed["name"], listed["state"], listed["providers"], listed["severities"]) == (
        "maint", "active", ["ops-webhook"], ["warning"])
    code, out, _ = run_cli(capsys, *options, "quiet", "list")
    assert code == 0 and out.startswith(f"{listed['window_id']}  maint  active  ")

    # The plan is a critical one (rec-1 is days past its SLO): a warning window lets it go.
    code, out, err = run_cli(capsys, *options, "quiet", "add", "all-quiet", "--provider",
                             "ops-webhook", "--from", "now", "--until", "+1h", "--severity",
                             "critical")
    assert code == 0, err
    [skipped] = run_cli_json(capsys, *options, "escalation", "deliver", "latest")
    assert (skipped["provider"], skipped["status"], skipped["reason"],
            skipped["delivery_id"]) == ("ops-webhook", "skipped", "quiet_window: all-quiet", None)
    code, out, _ = run_cli(capsys, *options, "escalation", "deliver", "latest")
    assert code == 0 and "ops-webhook" in out and "skipped   quiet_window: all-quiet" in out
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*) FROM deliveries").fetchone() == (0,)
    conn.close()

    code, out, err = run_cli(capsys, *options, "quiet", "remove", "all-quiet")
    assert code == 0 and out.startswith("removed qwn-"), err
    assert [w["name"] for w in run_cli_json(capsys, *options, "quiet", "list")] == ["maint"]
    every = run_cli_json(capsys, *options, "quiet", "list", "--all")
    assert sorted((w["name"], w["state"]) for w in every) == [("all-quiet", "removed"),
                                                             ("maint", "active")]
    code, out, err = run_cli(capsys, *options, "audit", "verify")
    assert code == 0, out + err


def test_a_missing_role_is_refused_and_audited(seeded: tuple[list[str], Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    options, db_path = seeded
    config = tmp_path / "operator.toml"
    config.write_text(CONFIG + f'[roles]\noperator = ["{ME}"]\n', encoding="utf-8")
    as_operator = [options[0], options[1], "--config", str(config)]
    conn = sqlite3.connect(db_path)
    windows = conn.execute("SELECT * FROM quiet_windows").fetchall()
    events = conn.execute("SELECT count(*) FROM audit_events").fetchone()[0]
    conn.close()
    for args in (["add", "w2", "--provider", "ops-webhook", "--from", "now", "--until", "+1h"],
                 ["remove", "maint"]):
        code, out, err = run_cli(capsys, *as_operator, "quiet", *args)
        assert code == 2 and err.count("\n") == 1, err
        assert "refused" in err and "quiet.change needs release_manager" in err
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT * FROM quiet_windows").fetchall() == windows
    denials = conn.execute("SELECT action, decision, role FROM audit_events WHERE seq > ? "
                           "ORDER BY seq", (events,)).fetchall()
    conn.close()
    assert denials == [("quiet.change", "deny", "operator")] * 2
    code, out, err = run_cli(capsys, *options, "audit", "verify")
    assert code == 0, out + err


def test_a_window_edited_behind_cavras_back_is_detected(
        seeded: tuple[list[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    options, db_path = seeded
    conn = sqlite3.connect(db_path)
    with pytest.raises(sqlite3.DatabaseError, match="changes only by being removed"):
        conn.execute("UPDATE quiet_windows SET ends_at = '2099-01-01 00:00:00.000000'")
    # An attacker who can write the file drops the trigger first.
    conn.execute("DROP TRIGGER quiet_windows_only_removal")
    conn.execute("UPDATE quiet_windows SET ends_at = '2099-01-01 00:00:00.000000', "
                 "severities = '[\"warning\", \"critical\"]'")
    conn.commit()
    [window_id] = conn.execute("SELECT window_id FROM quiet_windows").fetchone()
    conn.close()
    code, out, err = run_cli(capsys, *options, "audit", "verify")
    assert code == 3, out + err
    assert f"{window_id} (quiet_windows) differs from what audit event seq" in out + err
    assert "trigger quiet_windows_only_removal is missing" in out + err


def test_a_granted_login_role_adds_and_removes_but_cannot_delete(
        pg_granted: GrantedDatabase, capsys: pytest.CaptureFixture[str]) -> None:
    url = pg_granted.roles[0].url
    added: Any = run_cli_json(capsys, "--db", url, "quiet", "add", "maint", "--provider",
                              "outbox", "--from", "now", "--until", "+1h")
    eng = pg_roles_fixtures.engine(url)
    try:
        with eng.connect() as conn, pytest.raises(DBAPIError) as refused:
            conn.execute(text("DELETE FROM quiet_windows"))
        assert "permission denied for table quiet_windows" in str(refused.value.orig)
        with eng.connect() as conn, pytest.raises(DBAPIError) as refused:
            conn.execute(text("UPDATE quiet_windows SET ends_at = ends_at + interval '1 day'"))
        assert "a quiet window changes only by being removed" in str(refused.value.orig)
    finally:
        eng.dispose()
    code, out, err = run_cli(capsys, "--db", url, "quiet", "remove", added["window_id"])
    assert code == 0, err
    assert run_cli_json(capsys, "--db", url, "quiet", "list") == []
    code, out, err = run_cli(capsys, "--db", url, "audit", "verify")
    assert code == 0, out + err
