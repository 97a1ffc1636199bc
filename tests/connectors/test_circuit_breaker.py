"""The per-provider circuit breaker: open after N consecutive failures, skipped by the worker,
visible in metrics, half-open after the cool-down."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from cavra_tui.bootstrap import Runtime
from store.models import RecoveryItem
from store.services.acknowledgements import acknowledge
from store.services.escalation import build_plan
from store.services.metrics import read_metrics
from store.services.recovery import import_recovery_items
from tests.conftest import SteppingClock
from tests.connectors.conftest import LoopbackHTTP
from tests.connectors.helpers import Cli, config_text
from workflows.delivery import deliver_escalation
from workflows.worker import run_retry_worker

pytestmark = pytest.mark.backends  # the service-level cases also run on PostgreSQL

BREAKER = """
[circuit]
failure_threshold = 2
cooldown_s = 300

[retry]
base_delay_minutes = 0
allow_immediate = true
max_attempts = 10
"""


def _configure(cli_or_path: Cli | Path, server: LoopbackHTTP,
               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAVRA_URL", server.url("/hook"))
    text = config_text({"p": {"kind": "webhook", "url_env": "CAVRA_URL", "timeout_s": 2}},
                       extra=BREAKER)
    if isinstance(cli_or_path, Cli):
        cli_or_path.configure(text)
    else:
        cli_or_path.write_text(text)


def test_open_circuit_is_skipped_by_the_worker_and_shown_in_metrics(
        cli: Cli, http_server: LoopbackHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    http_server.default_status = 500
    _configure(cli, http_server, monkeypatch)
    plan = cli.seed_plan()

    cli.json("escalation", "deliver", plan["plan_id"])
    providers = cli.json("metrics")["providers"]
    assert providers["p"]["state"] == "closed" and providers["p"]["consecutive_failures"] == 1

    cli.json("escalation", "deliver", plan["plan_id"])
    metrics = cli.json("metrics")
    assert metrics["providers"]["p"]["state"] == "open"
    assert metrics["providers"]["p"]["consecutive_failures"] == 2
    [health] = cli.rows("provider_health")
    assert health["last_error"] == "server_error: HTTP 500"

    cli.json("escalation", "ack", plan["plan_id"], "--provider", "p", "--state", "acknowledged")
    dry = cli.json("retry", "run")
    assert [(e["status"], e["reason"]) for e in dry["executions"]] == [
        ("skipped", "provider_circuit_open")]
    live = cli.json("retry", "run", "--live")
    assert [(e["status"], e["reason"], e["delivery_id"]) for e in live["executions"]] == [
        ("skipped", "provider_circuit_open", None)]
    assert live["summary"]["skipped"] == 1 and live["summary"]["failed"] == 0

    assert len(http_server.requests) == 2  # the worker did not hammer the provider
    assert len(cli.rows("deliveries")) == 2
    [stored] = cli.rows("execution_records", "run_id = ?", live["run_id"])
    assert (stored["status"], stored["reason"]) == ("skipped", "provider_circuit_open")


def test_success_resets_the_count(cli: Cli, http_server: LoopbackHTTP,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _configure(cli, http_server, monkeypatch)
    http_server.answer(500)
    plan = cli.seed_plan()
    cli.json("escalation", "deliver", plan["plan_id"])
    cli.json("escalation", "deliver", plan["plan_id"])  # 200: resets
    http_server.answer(503)
    cli.json("escalation", "deliver", plan["plan_id"])
    assert cli.json("metrics")["providers"]["p"] == {
        "state": "closed", "consecutive_failures": 1, "opened_until": None}


@pytest.fixture
def runtime(make_runtime: Callable[..., Runtime], tmp_path: Path, http_server: LoopbackHTTP,
            monkeypatch: pytest.MonkeyPatch) -> Runtime:
    config = tmp_path / "cavra.toml"
    _configure(config, http_server, monkeypatch)
    return make_runtime(config)


def _critical_plan(runtime: Runtime, clock: SteppingClock) -> str:
    import_recovery_items(runtime.ctx, [RecoveryItem(
        recovery_id="rec-1", connector="payments-api", category="rollback",
        opened_at=clock.now - timedelta(hours=10))])
    return build_plan(runtime.ctx).plan_id


def test_half_open_after_cooldown_then_closed_by_a_success(
        runtime: Runtime, clock: SteppingClock, http_server: LoopbackHTTP) -> None:
    plan_id = _critical_plan(runtime, clock)
    http_server.answer(500)
    http_server.answer(500)
    deliver_escalation(runtime.ctx, runtime.registry, plan_id)
    deliver_escalation(runtime.ctx, runtime.registry, plan_id)
    acknowledge(runtime.ctx, plan_id, "p", "acknowledged")
    snapshot = read_metrics(runtime.ctx, clock())
    assert snapshot.providers["p"]["state"] == "open"
    assert snapshot.providers["p"]["opened_until"] == (
        clock.now + timedelta(seconds=300)).isoformat()

    clock.advance(seconds=299)
    skipped = run_retry_worker(runtime.ctx, runtime.registry, live=True)
    assert [e.reason for e in skipped.executions] == ["provider_circuit_open"]

    clock.advance(seconds=2)
    assert read_metrics(runtime.ctx, clock()).providers["p"]["state"] == "half_open"
    trial = run_retry_worker(runtime.ctx, runtime.registry, live=True)
    assert [e.status for e in trial.executions] == ["delivered"]
    assert read_metrics(runtime.ctx, clock()).providers["p"] == {
        "state": "closed", "consecutive_failures": 0, "opened_until": None}
    assert len(http_server.requests) == 3


def test_failed_trial_reopens_and_retry_after_lengthens_the_cooldown(
        runtime: Runtime, clock: SteppingClock, http_server: LoopbackHTTP) -> None:
    plan_id = _critical_plan(runtime, clock)
    http_server.answer(500)
    http_server.answer(500)
    deliver_escalation(runtime.ctx, runtime.registry, plan_id)
    deliver_escalation(runtime.ctx, runtime.registry, plan_id)
    acknowledge(runtime.ctx, plan_id, "p", "acknowledged")
    clock.advance(seconds=301)
    http_server.answer(429, {"Retry-After": "900"})
    trial = run_retry_worker(runtime.ctx, runtime.registry, live=True)
    assert [e.status for e in trial.executions] == ["failed"]
    state = read_metrics(runtime.ctx, clock()).providers["p"]
    assert state["state"] == "open" and state["consecutive_failures"] == 3
    assert state["opened_until"] == (clock.now + timedelta(seconds=900)).isoformat()
