"""The whole recovery loop on a real SQLite file and a real loopback webhook (SPEC §5)."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from store.services.acknowledgements import acknowledge
from store.services.escalation import build_plan
from store.services.metrics import read_metrics
from store.services.recovery import import_recovery_items
from store.services.retry import build_retry_plan
from store.tables import DeliveryRow, ExecutionRecordRow
from tests.core.helpers import WEBHOOK_CONFIG, item
from tests.loopback import LoopbackHTTP
from workflows.delivery import deliver_escalation
from workflows.worker import run_retry_worker

pytestmark = pytest.mark.backends

SECRET = "hmac-signing-secret-5f1e"


@pytest.fixture
def loop(make_runtime: Any, write_config: Any, http_server: LoopbackHTTP,
         monkeypatch: pytest.MonkeyPatch, clock: Any) -> Any:
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url("/hooks/T0KEN"))
    monkeypatch.setenv("CAVRA_TEST_HOOK_SECRET", SECRET)
    runtime = make_runtime(write_config(WEBHOOK_CONFIG))
    import_recovery_items(runtime.ctx, [
        item("rec-1", clock.now, 300, failure_count=2),  # past the 240 min SLO → critical
        item("rec-2", clock.now, 30, connector="checkout-web"),
        item("rec-3", clock.now, 900, closure_state="resolved"),
    ])
    return runtime


def test_plan_routes_breached_items_critical_first(loop: Any) -> None:
    plan = build_plan(loop.ctx)
    assert plan.alert_level == "critical"
    assert [r.severity for r in plan.routes] == ["critical", "warning"]
    assert plan.routes[0].slo_status == "breached"
    assert plan.routes[0].recommended_action == "page owner + executive visibility"
    assert plan.counts["open_recovery"] == 2  # the resolved item is not escalated
    assert plan.selected_providers == ["ops-webhook"]


def test_whole_loop_fail_then_succeed(loop: Any, http_server: LoopbackHTTP, clock: Any) -> None:
    ctx, registry = loop.ctx, loop.registry
    plan = build_plan(ctx)

    http_server.answer(500)
    [first] = deliver_escalation(ctx, registry, plan.plan_id)
    assert (first.status, first.status_code, first.attempt) == ("failed", 500, 1)
    assert first.target == f"http://127.0.0.1:{http_server.port}/***"

    # Backoff: right after the failure the pair waits 15 minutes.
    [decision] = build_retry_plan(ctx).decisions
    assert (decision.action, decision.reason, decision.retry_count) == ("wait", "backoff", 1)
    clock.advance(minutes=16)
    [decision] = build_retry_plan(ctx).decisions
    assert decision.action == "retry"

    # Dry run: shows what would be sent, sends nothing.
    sent_before = len(http_server.requests)
    dry = run_retry_worker(ctx, registry)
    assert len(http_server.requests) == sent_before
    [preview] = dry.executions
    assert (preview.status, preview.provider, preview.plan_id) == ("dry_run", "ops-webhook",
                                                                   plan.plan_id)
    assert preview.idempotency_key == f"cavra:{plan.plan_id}:ops-webhook:2"
    assert len(preview.payload_sha256) == 64 and preview.delivery_id is None

    # Live without an acknowledgement: blocked, nothing sent.
    blocked = run_retry_worker(ctx, registry, live=True)
    assert [(e.status, e.reason) for e in blocked.executions] == [
        ("blocked", "acknowledgement_required")]
    assert blocked.acknowledgement_pending == 1
    assert len(http_server.requests) == sent_before

    # Latest acknowledgement wins: deferred, then accepted.
    acknowledge(ctx, plan.plan_id, "ops-webhook", "deferred")
    acknowledge(ctx, plan.plan_id, "ops-webhook", "accepted", external_ref="INC-1")
    http_server.answer(200)
    live = run_retry_worker(ctx, registry, live=True)
    [execution] = live.executions
    assert execution.status == "delivered"
    assert (execution.worker_run_id, execution.retry_plan_id, execution.plan_id,
            execution.provider) == (live.run.run_id, live.run.retry_plan_id, plan.plan_id,
                                    "ops-webhook")
    assert execution.payload_sha256 == preview.payload_sha256  # the preview was exact

    request = http_server.requests[-1]
    assert request.path == "/hooks/T0KEN"
    assert request.idempotency_key == preview.idempotency_key
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Cavra-Signature"] == f"sha256={expected}"
    assert request.json()["plan_id"] == plan.plan_id

    with loop.db.read() as session:
        delivery = session.get(DeliveryRow, execution.delivery_id)
        assert delivery is not None
        assert (delivery.worker_run_id, delivery.retry_plan_id, delivery.status) == (
            live.run.run_id, live.run.retry_plan_id, "delivered")

    # A success closes the pair: it is never retried again.
    clock.advance(hours=5)
    assert build_retry_plan(ctx).decisions == []
    assert run_retry_worker(ctx, registry, live=True).executions == []

    metrics = read_metrics(loop.ctx, clock.now)
    assert metrics.retry_worker_runs == {"dry_run": 1, "live": 3}
    assert metrics.retry_executions["dry_run"] == 1
    assert metrics.retry_executions["blocked"] == 1
    assert metrics.retry_executions["delivered"] == 1
    assert metrics.failed_deliveries["escalation"] == 1
    assert metrics.acknowledgement_pending == 0
    with loop.db.read() as session:
        assert session.query(ExecutionRecordRow).count() == sum(
            metrics.retry_executions.values())


def test_retry_after_keeps_the_pair_waiting(loop: Any, http_server: LoopbackHTTP,
                                            clock: Any) -> None:
    plan = build_plan(loop.ctx)
    http_server.answer(429, {"Retry-After": "3600"})
    [delivery] = deliver_escalation(loop.ctx, loop.registry, plan.plan_id)
    assert (delivery.status, delivery.status_code, delivery.retry_after_s) == ("failed", 429, 3600)
    clock.advance(minutes=30)  # past the 15 min backoff, not past Retry-After
    [decision] = build_retry_plan(loop.ctx).decisions
    assert (decision.action, decision.reason) == ("wait", "retry_after")
    assert decision.failed_status_codes == [429]
    clock.advance(minutes=31)
    assert build_retry_plan(loop.ctx).decisions[0].action == "retry"


def test_max_attempts_and_dismissal_suppress(loop: Any, http_server: LoopbackHTTP,
                                             clock: Any) -> None:
    ctx, registry = loop.ctx, loop.registry
    plan = build_plan(ctx)
    for _ in range(3):
        http_server.answer(503)
    deliver_escalation(ctx, registry, plan.plan_id)
    acknowledge(ctx, plan.plan_id, "ops-webhook", "acknowledged")
    for wait_minutes in (16, 31):
        clock.advance(minutes=wait_minutes)
        run_retry_worker(ctx, registry, live=True)
    [decision] = build_retry_plan(ctx).decisions
    assert (decision.action, decision.reason, decision.retry_count) == (
        "suppress", "max_attempts_reached", 3)
    assert decision.failed_status_codes == [503, 503, 503]

    second = build_plan(ctx)
    http_server.answer(500)
    deliver_escalation(ctx, registry, second.plan_id)
    acknowledge(ctx, second.plan_id, "ops-webhook", "dismissed")
    clock.advance(hours=2)
    decisions = {d.plan_id: d for d in build_retry_plan(ctx).decisions}
    assert (decisions[second.plan_id].action, decisions[second.plan_id].reason) == (
        "suppress", "settled")
    sent = len(http_server.requests)
    assert run_retry_worker(ctx, registry, live=True).executions == []
    assert len(http_server.requests) == sent


def test_no_history_window_old_failures_still_count(loop: Any, http_server: LoopbackHTTP,
                                                    clock: Any, db_backend: str) -> None:
    """520 newer deliveries do not push an old failure out of view (the upstream design's
    500-record window dropped it)."""
    if db_backend != "sqlite":
        pytest.skip("the rule is the same on every backend; 520 sends are slow on a server")
    ctx, registry = loop.ctx, loop.registry
    failing = build_plan(ctx)
    http_server.answer(500)
    deliver_escalation(ctx, registry, failing.plan_id)
    newer = build_plan(ctx)
    for _ in range(520):
        clock.advance(seconds=1)
        deliver_escalation(ctx, registry, newer.plan_id)  # the server answers 200
    clock.advance(hours=1)
    assert [d.plan_id for d in build_retry_plan(ctx).decisions] == [failing.plan_id]


def test_outbox_is_the_embedded_default(make_runtime: Any, clock: Any, tmp_path: Path) -> None:
    runtime = make_runtime()
    import_recovery_items(runtime.ctx, [item("rec-9", clock.now, 10)])
    plan = build_plan(runtime.ctx)
    assert plan.selected_providers == ["outbox"]
    [delivery] = deliver_escalation(runtime.ctx, runtime.registry, "latest")
    assert delivery.status == "delivered" and delivery.plan_id == plan.plan_id
    outbox = runtime.registry.get("outbox").path
    # Beside the SQLite file; in the data dir for a server database.
    assert outbox.parent == (tmp_path if runtime.db.is_sqlite else tmp_path / "data")
    lines = outbox.read_text().splitlines()
    entry = json.loads(lines[-1])
    assert entry["delivery_id"] == delivery.delivery_id
    assert entry["idempotency_key"] == delivery.idempotency_key
    assert entry["plan_id"] == plan.plan_id and entry["kind"] == "escalation"
    assert entry["message"]["alert_level"] == "warning"


def test_evidence_binds_execution_to_run_plan_delivery_and_audit(
        loop: Any, http_server: LoopbackHTTP, clock: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    from store.services.evidence import evidence_chain

    plan = build_plan(loop.ctx)
    http_server.answer(500)
    deliver_escalation(loop.ctx, loop.registry, plan.plan_id)
    acknowledge(loop.ctx, plan.plan_id, "ops-webhook", "accepted", notes="call Bob at home")
    clock.advance(minutes=20)
    [execution] = run_retry_worker(loop.ctx, loop.registry, live=True).executions
    chain = evidence_chain(loop.ctx, execution.execution_id).to_json()  # what the CLI prints
    assert chain["execution"]["execution_sha256"] == execution.execution_sha256
    assert chain["worker_run"]["run_id"] == execution.worker_run_id
    assert chain["retry_decision"]["action"] == "retry"
    assert chain["delivery"]["delivery_id"] == execution.delivery_id
    assert chain["delivery"]["status"] == "delivered"
    assert chain["escalation_plan"]["plan_id"] == plan.plan_id
    assert [a["state"] for a in chain["acknowledgements"]] == ["accepted"]
    actions = [event["action"] for event in chain["audit_events"]]
    assert {"escalation.plan", "escalation.deliver", "escalation.ack", "retry.deliver",
            "retry.run.live"} <= set(actions)
    assert "call Bob" not in json.dumps(chain)  # notes never leave the database
    delivery_chain = evidence_chain(loop.ctx, execution.delivery_id or "").to_json()
    assert delivery_chain["delivery"]["worker_run_id"] == execution.worker_run_id
