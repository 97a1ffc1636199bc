"""Forgeries that only insert rows (what an INSERT privilege allows) and edits of the state
that gates live sends: each is named by `audit verify`, none is laundered by cavra itself."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.core.audit_attacker import drop_all_triggers, recompute_chain, restore_triggers, sql
from tests.core.test_audit_attacks import KEY, Witnessed
from tests.core.test_audit_attacks import witnessed as witnessed  # noqa: F401 (fixture)


def _verify(state: Witnessed) -> tuple[int, str]:
    code, out, err = state.cli("audit", "verify")
    return code, out + err


def _copy_row(db: Path, table: str, key: str, new_id: str, **changes: object) -> None:
    conn = sqlite3.connect(db)
    try:
        cursor = conn.execute(f"SELECT * FROM {table} LIMIT 1")
        columns = [c[0] for c in cursor.description]
        row = dict(zip(columns, cursor.fetchone(), strict=True))
        row.update({key: new_id, **changes})
        conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                     f"({', '.join('?' for _ in columns)})", list(row.values()))
        conn.commit()
    finally:
        conn.close()


def test_a_forged_row_cannot_hide_behind_the_target_index(witnessed: Witnessed) -> None:
    _copy_row(witnessed.db, "deliveries", "delivery_id", "dlv-f1f1f1f1f1", status="delivered")
    sql(witnessed.db, "INSERT INTO audit_targets VALUES ('dlv-f1f1f1f1f1', 1)")
    code, text = _verify(witnessed)
    assert code == 3
    assert "dlv-f1f1f1f1f1 (deliveries) is vouched for by no audit event" in text


def test_forged_in_flight_and_unfinished_rows_are_named_and_never_laundered(
        witnessed: Witnessed) -> None:
    _copy_row(witnessed.db, "deliveries", "delivery_id", "dlv-f2f2f2f2f2", status="in_flight",
              in_flight_until="2000-01-01 00:00:00", finished_at=None)
    conn = sqlite3.connect(witnessed.db)
    [(plan_id,)] = conn.execute("SELECT plan_id FROM escalation_plans")
    conn.close()
    sql(witnessed.db, "INSERT INTO execution_records VALUES ('exe-f3f3f3f3f3', ?, 'delivered', "
        "'forged', 'wrk-nonexist00', 'rtp-0000000000', ?, 'outbox', NULL, 'k', ?, 1, 'live', "
        "'mallory', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 'mallory')",
        params=("0" * 64, plan_id, "0" * 64))
    code, text = _verify(witnessed)
    assert code == 3
    assert "dlv-f2f2f2f2f2 (deliveries) is vouched for by no audit event" in text
    assert "exe-f3f3f3f3f3 (execution_records) is vouched for by no audit event" in text
    witnessed.ok("retry", "run", "--live")  # the sweep must not settle (and so vouch for) it
    with sqlite3.connect(witnessed.db) as conn:
        assert conn.execute("SELECT status FROM deliveries WHERE delivery_id = "
                            "'dlv-f2f2f2f2f2'").fetchone() == ("in_flight",)
    code, text = _verify(witnessed)
    assert code == 3 and "dlv-f2f2f2f2f2" in text


def test_a_forged_local_checkpoint_does_not_stop_witnessing(witnessed: Witnessed,
                                                            tmp_path: Path) -> None:
    sql(witnessed.db, "INSERT INTO audit_checkpoints VALUES ('ckp-f4f4f4f4f4', 999999999, ?, "
        "'2026-01-01 00:00:00', 'mallory', 'hmac', 'hmac-sha256:00', "
        "'[{\"witness\": \"audit-witness\", \"status\": \"delivered\"}]', "
        "'2026-01-01 00:00:00', 'mallory')", params=("0" * 64,))
    code, text = _verify(witnessed)
    assert code == 3 and "ckp-f4f4f4f4f4" in text and "(local audit_checkpoints)" in text
    # The scheduler's "did the head move since the last checkpoint?" is not fooled by it.
    from cavra_tui.bootstrap import build_runtime
    from workflows.checkpoints import checkpoint_if_moved

    witnessed.ok("retry", "plan")
    runtime = build_runtime(db_url=f"sqlite:///{witnessed.db}",
                            config_path=str(tmp_path / "cavra.toml"))
    try:
        result = checkpoint_if_moved(runtime.ctx, runtime.registry)
    finally:
        runtime.close()
    assert result is not None and result.delivered
    assert len(witnessed.witness.read_text().splitlines()) == 3


def test_a_trigger_replaced_by_one_that_never_fires_is_named(witnessed: Witnessed) -> None:
    sql(witnessed.db, "DROP TRIGGER acknowledgements_no_delete",
        "CREATE TRIGGER acknowledgements_no_delete BEFORE DELETE ON acknowledgements WHEN 0 "
        "BEGIN SELECT RAISE(ABORT, 'acknowledgements is append-only'); END")
    code, text = _verify(witnessed)
    assert code == 3 and "trigger acknowledgements_no_delete was replaced" in text


def test_an_edited_gate_or_schedule_is_named(witnessed: Witnessed) -> None:
    witnessed.ok("schedule", "add", "sweep", "--every", "15m", "--kind", "retry-worker")
    assert _verify(witnessed)[0] == 0
    sql(witnessed.db, "UPDATE pair_state SET latest_ack_state = 'accepted', "
        "latest_ack_id = 'ack-f5f5f5f5f5' WHERE provider = 'ops-webhook'")
    code, text = _verify(witnessed)
    assert code == 3 and "ops-webhook: its state says acknowledgement accepted" in text
    sql(witnessed.db, "UPDATE pair_state SET latest_ack_state = NULL, latest_ack_id = NULL "
        "WHERE provider = 'ops-webhook'")
    assert _verify(witnessed)[0] == 0
    sql(witnessed.db, "UPDATE report_schedules SET live = 1")
    code, text = _verify(witnessed)
    assert code == 3 and "(report_schedules) differs from what audit event" in text


def test_an_upgraded_database_with_older_rows_is_not_a_false_alarm(witnessed: Witnessed) -> None:
    """Rows from before record digests (an upgraded 0003 database): events without digests,
    a delivery the old sweeper settled without an event, executions beyond the old 50-target
    cut. Then new work under the new schema: verify passes and counts the older rows."""
    saved = drop_all_triggers(witnessed.db)
    sql(witnessed.db, "UPDATE audit_events SET records = NULL", "DELETE FROM audit_checkpoints",
        "UPDATE audit_events SET at = datetime(at, '-1 day')",
        "UPDATE deliveries SET created_at = datetime(created_at, '-1 day')",
        "UPDATE escalation_plans SET created_at = datetime(created_at, '-1 day')",
        "UPDATE acknowledgements SET created_at = datetime(created_at, '-1 day')",
        "UPDATE retry_plans SET created_at = datetime(created_at, '-1 day')")
    restore_triggers(witnessed.db, saved)
    recompute_chain(witnessed.db)
    _copy_row(witnessed.db, "deliveries", "delivery_id", "dlv-0ld0ld0ld0", status="unknown")
    witnessed.ok("retry", "plan")  # new work, with digests
    code, text = _verify(witnessed)
    assert code == 0, text
    assert "from before record digests" in text
    # …and a row forged after the upgrade is still named.
    conn = sqlite3.connect(witnessed.db)
    [(now,)] = conn.execute("SELECT datetime(max(created_at), '+1 minute') FROM retry_plans")
    conn.close()
    _copy_row(witnessed.db, "deliveries", "delivery_id", "dlv-f6f6f6f6f6", created_at=now)
    code, text = _verify(witnessed)
    assert code == 3 and "dlv-f6f6f6f6f6" in text


def test_a_deeply_nested_witness_file_is_one_line(witnessed: Witnessed, tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    code, out, err = witnessed.cli("audit", "verify", "--witness", str(deep))
    assert code == 2 and out == "" and len(err.splitlines()) == 1


def test_database_identity_on_sqlite_creates_nothing(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from tests.core.helpers import run_cli

    config = tmp_path / "db-identity.toml"
    config.write_text('[identity]\nsource = "database"\n')
    db = tmp_path / "never.db"
    code, _, err = run_cli(capsys, "--db", f"sqlite:///{db}", "--config", str(config),
                           "metrics")
    assert code == 2 and "needs PostgreSQL" in err
    assert not db.exists()


def test_checkpoint_signatures_use_the_documented_bytes(witnessed: Witnessed,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Independent of our code: HMAC-SHA256 over the canonical JSON the README describes."""
    import hashlib
    import hmac
    import os

    line = json.loads(witnessed.witness.read_text().splitlines()[-1])["message"]
    signed = json.dumps({k: v for k, v in line.items() if k != "signature"},
                        sort_keys=True, separators=(",", ":")).encode()
    expected = hmac.new(os.environ[KEY].encode(), signed, hashlib.sha256).hexdigest()
    assert line["signature"] == f"hmac-sha256:{expected}"
