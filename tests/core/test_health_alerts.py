"""The alerts of issue 10's honest health: each turns on with its condition and clears when
it is gone; `--json` carries the figures behind each, and every figure is checked against an
independent SQL count; `--record` stores an audited snapshot."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cavra_tui.cli import main
from store.services.acknowledgements import acknowledge
from store.services.escalation import build_plan
from store.services.health import HealthAlert, read_health
from store.services.reports import create_schedule_run
from tests.core.helpers import EXEC_HOOK, WEBHOOK_CONFIG, hooked_runtime
from tests.loopback import LoopbackHTTP
from workflows.delivery import deliver_escalation, deliver_report
from workflows.worker import run_retry_worker


def _alerts(runtime: Any) -> dict[str, HealthAlert]:
    return {alert.code: alert for alert in read_health(runtime.ctx).alerts}


@pytest.fixture
def runtime(make_runtime: Any, write_config: Any, http_server: LoopbackHTTP, clock: Any,
            monkeypatch: pytest.MonkeyPatch) -> Any:
    runtime = hooked_runtime(make_runtime, write_config, http_server.url(), clock, monkeypatch)
    return runtime


def _failed_accepted_pair(runtime: Any, server: LoopbackHTTP, clock: Any,
                          status: int = 500) -> str:
    plan = build_plan(runtime.ctx)
    server.answer(status)
    deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
    acknowledge(runtime.ctx, plan.plan_id, "ops-webhook", "accepted")
    clock.advance(minutes=20)
    return plan.plan_id


def test_failed_executions_clear_once_the_pair_is_delivered(
        runtime: Any, http_server: LoopbackHTTP, clock: Any, db_path: Path) -> None:
    _failed_accepted_pair(runtime, http_server, clock)
    http_server.answer(500)
    run_retry_worker(runtime.ctx, runtime.registry, live=True)
    failed = _alerts(runtime)["failed_executions"]
    with sqlite3.connect(db_path) as db:  # the figures, counted independently
        [(pairs, executions)] = db.execute(
            "SELECT COUNT(DISTINCT plan_id || provider), COUNT(*) FROM execution_records "
            "WHERE status = 'failed'").fetchall()
    assert (failed.figures["pairs"], failed.figures["executions"]) == (pairs, executions) == (1, 1)
    clock.advance(minutes=40)
    run_retry_worker(runtime.ctx, runtime.registry, live=True)  # the server answers 200
    assert "failed_executions" not in _alerts(runtime)  # within the window, but recovered


def test_failed_executions_clear_once_the_pair_is_settled(
        runtime: Any, http_server: LoopbackHTTP, clock: Any) -> None:
    plan_id = _failed_accepted_pair(runtime, http_server, clock)
    http_server.answer(500)
    run_retry_worker(runtime.ctx, runtime.registry, live=True)
    assert "failed_executions" in _alerts(runtime)
    acknowledge(runtime.ctx, plan_id, "ops-webhook", "dismissed")
    assert "failed_executions" not in _alerts(runtime)


def test_unknown_and_skipped_executions_are_counted(
        runtime: Any, http_server: LoopbackHTTP, clock: Any, make_runtime: Any,
        write_config: Any) -> None:
    _failed_accepted_pair(runtime, http_server, clock)
    http_server.answer(200, delay_s=3)  # longer than the 2 s timeout: sent, no answer
    run_retry_worker(runtime.ctx, runtime.registry, live=True)
    unknown = _alerts(runtime)["unknown_executions"]
    assert (unknown.severity, unknown.figures["executions"]) == ("warning", 1)
    clock.advance(hours=25)
    assert "unknown_executions" not in _alerts(runtime)
    # The provider leaves the config: the pair is skipped (provider_not_configured).
    without = make_runtime(write_config('[routing]\ncritical = ["outbox"]\n'))
    clock.advance(hours=1)
    [skipped] = run_retry_worker(without.ctx, without.registry, live=True).executions
    assert (skipped.status, skipped.reason) == ("skipped", "provider_not_configured")
    alert = _alerts(without)["skipped_executions"]
    assert (alert.severity, alert.figures["executions"]) == ("warning", 1)
    clock.advance(hours=25)
    assert "skipped_executions" not in _alerts(without)


def test_a_permanent_error_asks_for_a_configuration_fix(
        runtime: Any, http_server: LoopbackHTTP, clock: Any) -> None:
    plan_id = _failed_accepted_pair(runtime, http_server, clock, status=404)
    alert = _alerts(runtime)["permanent_error"]
    assert alert.severity == "critical"
    assert alert.figures == {"pairs": 1, "providers": ["ops-webhook"], "status_codes": [404]}
    assert "fix the configuration of ops-webhook" in alert.message
    acknowledge(runtime.ctx, plan_id, "ops-webhook", "resolved")
    assert "permanent_error" not in _alerts(runtime)


def test_an_exhausted_executive_delivery_is_critical(
        runtime: Any, http_server: LoopbackHTTP, clock: Any) -> None:
    run, _, _ = create_schedule_run(runtime.ctx)
    for _ in range(3):  # max_attempts = 3
        http_server.answer(503)
        [failed] = deliver_report(runtime.ctx, runtime.registry, run.run_id, ["exec-hook"])
        assert failed.status == "failed"
        clock.advance(hours=2)
    alerts = _alerts(runtime)
    assert "executive_delivery_failed" not in alerts  # suppressed: no longer retryable …
    exhausted = alerts["executive_delivery_exhausted"]  # … and not silently dropped
    assert exhausted.severity == "critical"
    assert exhausted.figures == {"runs": [run.run_id], "providers": ["exec-hook"], "pairs": 1}
    assert read_health(runtime.ctx).status == "critical"
    # Delivered by hand at last: the pair is closed and the alert clears.
    [ok] = deliver_report(runtime.ctx, runtime.registry, run.run_id, ["exec-hook"])
    assert ok.status == "delivered"
    assert "executive_delivery_exhausted" not in _alerts(runtime)


def test_health_json_and_record(runtime: Any, http_server: LoopbackHTTP, clock: Any,
                                db_path: Path, write_config: Any,
                                capsys: pytest.CaptureFixture[str]) -> None:
    _failed_accepted_pair(runtime, http_server, clock, status=400)
    argv = ["--db", f"sqlite:///{db_path}", "--config",
            str(write_config(WEBHOOK_CONFIG + EXEC_HOOK))]
    assert main([*argv, "health", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    [alert] = [a for a in shown["alerts"] if a["code"] == "permanent_error"]
    assert alert["figures"]["status_codes"] == [400]
    assert main([*argv, "health", "--record", "--json"]) == 0
    snapshot = json.loads(capsys.readouterr().out)
    assert snapshot["status"] == shown["status"]
    with sqlite3.connect(db_path) as db:
        [(status, alerts)] = db.execute("SELECT status, alerts FROM health_snapshots").fetchall()
        [(action,)] = db.execute("SELECT action FROM audit_events WHERE target_ids LIKE ?",
                                 (f'%{snapshot["snapshot_id"]}%',)).fetchall()
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE health_snapshots SET status = 'healthy'")
    assert (status, action) == (shown["status"], "health.record")
    assert [a["code"] for a in json.loads(alerts)] == [a["code"] for a in shown["alerts"]]
    assert main([*argv, "audit", "verify"]) == 0, capsys.readouterr()


def test_thresholds_come_from_the_health_section(make_runtime: Any, write_config: Any,
                                                 clock: Any) -> None:
    runtime = make_runtime(write_config(
        WEBHOOK_CONFIG + "\n[health]\nlookback_hours = 2\nexpected_worker_interval_minutes = 5\n"
        "stale_plan_minutes = 7\n"))
    health = runtime.ctx.config.health
    assert (health.lookback_hours, health.expected_worker_interval_minutes,
            health.stale_plan_minutes) == (2, 5, 7)
