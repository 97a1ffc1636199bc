"""A live run killed mid-send (SIGKILL of a real `cavra retry run --live` process) never
blocks the next one for longer than its heartbeat lease (SPEC §5.5): within one TTL and a
few seconds a new live run starts, settles the dead run's in-flight delivery as `unknown`,
records the dead run as `abandoned`, and resends under the same idempotency key."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.core.helpers import run_cli, run_cli_json
from tests.loopback import LoopbackHTTP

TTL_S = 30  # the default [retry] lease_ttl_s
TIMEOUT_S = 2  # the provider's: the in-flight deadline is this + 30 s

CONFIG = f"""
[providers.hook]
kind = "webhook"
url_env = "CAVRA_TEST_HOOK_URL"
timeout_s = {TIMEOUT_S}

[routing]
critical = ["hook"]
warning = ["hook"]
fallback = "outbox"

[retry]
base_delay_minutes = 0
allow_immediate = true
"""


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def test_a_killed_live_run_is_abandoned_and_its_pair_resent_with_the_same_key(
        tmp_path: Path, http_server: LoopbackHTTP, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url())
    db = tmp_path / "cavra.db"
    config = tmp_path / "cavra.toml"
    config.write_text(CONFIG, encoding="utf-8")
    base = ["--db", f"sqlite:///{db}", "--config", str(config)]
    items = tmp_path / "items.json"
    items.write_text(json.dumps([{"recovery_id": "rec-1", "connector": "payments-api",
                                  "category": "rollback", "opened_at": "2026-01-01T00:00:00Z"}]))
    run_cli_json(capsys, *base, "recovery", "import", str(items))
    plan = run_cli_json(capsys, *base, "escalation", "plan")["plan_id"]
    http_server.answer(500)
    [failed] = run_cli_json(capsys, *base, "escalation", "deliver", plan)
    assert failed["status"] == "failed"
    run_cli_json(capsys, *base, "escalation", "ack", plan, "--provider", "hook",
                 "--state", "accepted")

    first_key = http_server.requests[0].idempotency_key
    http_server.requests.clear()
    http_server.answer(200, delay_s=90)  # the next request stalls: the run is mid-send
    env = {**os.environ, "CAVRA_TEST_HOOK_URL": http_server.url()}
    worker = subprocess.Popen([sys.executable, "-m", "cavra_tui.cli", *base, "retry", "run",
                               "--live"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not http_server.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert http_server.requests, "the live run never sent"
    sent_at = time.monotonic()
    time.sleep(0.5)  # mid-send: the request is written, the answer is 90 s away
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    [(dead_run,)] = _rows(db, "SELECT worker_run_id FROM deliveries WHERE status = 'in_flight'")
    assert _rows(db, f"SELECT COUNT(*) FROM worker_runs WHERE run_id = '{dead_run}'") == [(0,)]

    # Right after the kill the lease still stands: one live run at a time.
    code, _, err = run_cli(capsys, *base, "retry", "run", "--live")
    assert code == 2 and f"another live retry worker run ({dead_run})" in err

    # Within one TTL (and the in-flight deadline, timeout + 30 s) a new live run starts.
    time.sleep(max(0.0, sent_at + TIMEOUT_S + 30 + 1 - time.monotonic()))
    result = run_cli_json(capsys, *base, "retry", "run", "--live")
    assert time.monotonic() - sent_at < TTL_S + 10
    assert result["summary"]["marked_unknown"] == 1
    assert [e["status"] for e in result["executions"]] == ["delivered"]

    [(mode, trigger, summary)] = _rows(
        db, f"SELECT mode, trigger, summary FROM worker_runs WHERE run_id = '{dead_run}'")
    assert (mode, trigger) == ("abandoned", "unknown")
    assert json.loads(str(summary))["left_in_flight"] == 1
    statuses = _rows(db, f"SELECT status FROM deliveries WHERE worker_run_id = '{dead_run}'")
    assert statuses == [("unknown",)]
    keys = [first_key, *(r.idempotency_key for r in http_server.requests)]
    assert keys == [f"cavra:{plan}:hook:1", f"cavra:{plan}:hook:2", f"cavra:{plan}:hook:2"]
    assert run_cli(capsys, *base, "audit", "verify")[0] == 0
