"""Parallel live sends (``[retry] concurrency``) on a real SQLite file and a real PostgreSQL
server, to loopback HTTP servers: each key sent once, every record bound, the evidence
intact, the counters true, and a slow provider holding back nobody else."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from store.services.acknowledgements import acknowledge
from store.services.escalation import build_plan
from store.services.recovery import import_recovery_items
from store.tables import AuditEventRow, DeliveryRow, ExecutionRecordRow, PairStateRow, WorkerRunRow
from tests.core.helpers import item, run_cli
from tests.loopback import LoopbackHTTP, running_loopback
from workflows.delivery import deliver_escalation
from workflows.worker import run_retry_worker

pytestmark = pytest.mark.backends


def _config(providers: dict[str, str], *, threshold: int = 1000, cooldown_s: int = 300) -> str:
    """Webhook providers (name → the environment variable holding its URL), routed for
    every severity, with room for 100 pairs in one run."""
    blocks = "".join(f'[providers.{name}]\nkind = "webhook"\nurl_env = "{env}"\ntimeout_s = 5\n\n'
                     for name, env in providers.items())
    names = ", ".join(f'"{name}"' for name in providers)
    return (f'{blocks}[routing]\ncritical = [{names}]\nwarning = [{names}]\nfallback = "outbox"\n'
            "\n[retry]\nmax_deliveries = 100\nconcurrency = 8\n"
            f"\n[circuit]\nfailure_threshold = {threshold}\ncooldown_s = {cooldown_s}\n")


def _failed_and_accepted(runtime: Any, clock: Any, plans: int,
                         servers: list[LoopbackHTTP]) -> list[str]:
    """``plans`` plans delivered to every provider, each send failing once, every pair
    accepted; then past the backoff, with the servers answering 200."""
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])
    for server in servers:
        server.default_status = 500
    plan_ids = []
    for _ in range(plans):
        plan = build_plan(runtime.ctx)
        for delivery in deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id):
            assert delivery.status == "failed"
            acknowledge(runtime.ctx, plan.plan_id, delivery.provider, "accepted")
        plan_ids.append(plan.plan_id)
    clock.advance(minutes=20)
    for server in servers:
        server.default_status = 200
        server.requests.clear()
    return plan_ids


def _retry_deliver_order(runtime: Any) -> list[str]:
    """Providers of the run's deliveries, in the order their outcomes were recorded."""
    with runtime.db.read() as session:
        events = session.execute(select(AuditEventRow.target_ids).where(
            AuditEventRow.action == "retry.deliver").order_by(AuditEventRow.seq)).scalars()
        providers = dict(session.execute(select(DeliveryRow.delivery_id, DeliveryRow.provider))
                         .all())
        return [providers[targets[0]] for targets in events]


def test_a_parallel_run_of_100_pairs_sends_each_key_once_with_every_record_bound(
        make_runtime: Any, write_config: Any, http_server: LoopbackHTTP, clock: Any,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        db_url: str) -> None:
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url())
    providers = {f"p{i}": "CAVRA_TEST_HOOK_URL" for i in range(10)}
    runtime = make_runtime(write_config(_config(providers)))
    _failed_and_accepted(runtime, clock, 10, [http_server])

    result = run_retry_worker(runtime.ctx, runtime.registry, live=True, max_deliveries=100)

    assert [e.status for e in result.executions] == ["delivered"] * 100
    keys = Counter(r.idempotency_key for r in http_server.requests)
    assert set(keys.values()) == {1}
    assert set(keys) == {e.idempotency_key for e in result.executions}
    run = result.run
    assert (run.summary["selected"], run.summary["delivered"]) == (100, 100)
    with runtime.db.read() as session:
        rows = session.execute(select(ExecutionRecordRow, DeliveryRow).join(
            DeliveryRow, DeliveryRow.delivery_id == ExecutionRecordRow.delivery_id).where(
            ExecutionRecordRow.run_id == run.run_id)).all()
        assert len(rows) == 100
        for execution, delivery in rows:
            assert (delivery.worker_run_id, delivery.retry_plan_id) == (
                run.run_id, run.retry_plan_id) == (execution.run_id, execution.retry_plan_id)
            assert (delivery.plan_id, delivery.provider, delivery.idempotency_key,
                    delivery.attempt, delivery.payload_sha256, delivery.status) == (
                execution.plan_id, execution.provider, execution.idempotency_key,
                execution.attempt, execution.payload_sha256, execution.status)
        assert session.execute(select(func.count()).select_from(DeliveryRow).where(
            DeliveryRow.status == "in_flight")).scalar_one() == 0

    code, out, err = run_cli(capsys, "--db", db_url, "audit", "verify")
    assert code == 0, err + out
    code, out, err = run_cli(capsys, "--db", db_url, "--json", "metrics")
    assert code == 0, err
    metrics = json.loads(out)
    with runtime.db.read() as session:
        executions = dict(session.execute(select(ExecutionRecordRow.status, func.count())
                                          .group_by(ExecutionRecordRow.status)).all())
        runs = dict(session.execute(select(WorkerRunRow.mode, func.count())
                                    .group_by(WorkerRunRow.mode)).all())
        failed = session.execute(select(func.count()).select_from(DeliveryRow).where(
            DeliveryRow.kind == "escalation", DeliveryRow.status.in_(("failed", "unknown")))
        ).scalar_one()
        pending = session.execute(select(func.count()).select_from(PairStateRow).where(
            PairStateRow.ack_pending.is_(True))).scalar_one()
    assert {s: n for s, n in metrics["retry_executions"].items() if n} == executions
    assert metrics["retry_worker_runs"] == {"dry_run": runs.get("dry_run", 0),
                                            "live": runs.get("live", 0)}
    assert metrics["failed_deliveries"]["escalation"] == failed == 100
    assert metrics["acknowledgement_pending"] == pending == 0


@pytest.fixture
def slow_server() -> Iterator[LoopbackHTTP]:
    with running_loopback() as server:
        yield server


def test_a_provider_answering_after_2_s_holds_back_no_other_provider(
        make_runtime: Any, write_config: Any, http_server: LoopbackHTTP,
        slow_server: LoopbackHTTP, clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url())
    monkeypatch.setenv("CAVRA_TEST_SLOW_URL", slow_server.url())
    providers = {"fast-a": "CAVRA_TEST_HOOK_URL", "fast-b": "CAVRA_TEST_HOOK_URL",
                 "fast-c": "CAVRA_TEST_HOOK_URL", "slow": "CAVRA_TEST_SLOW_URL"}
    runtime = make_runtime(write_config(_config(providers)))
    _failed_and_accepted(runtime, clock, 5, [http_server, slow_server])
    for _ in range(5):
        slow_server.answer(200, delay_s=2)

    result = run_retry_worker(runtime.ctx, runtime.registry, live=True, max_deliveries=100)

    assert [e.status for e in result.executions] == ["delivered"] * 20
    order = _retry_deliver_order(runtime)
    assert len(order) == 20 and order.count("slow") == 5
    # Every fast provider's pair was recorded before the first slow answer came back.
    assert order[:15] == [p for p in order if p != "slow"]
    assert len(slow_server.requests) == 5 and len(http_server.requests) == 15


def test_a_half_open_provider_gets_one_trial_and_the_rest_see_how_it_went(
        make_runtime: Any, write_config: Any, http_server: LoopbackHTTP, clock: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a sequential run: each provider's circuit opened during set-up and is half-open
    now (the 60 s cool-down is over), so each gets one trial first. The trial that fails
    opens the circuit again and that provider's other pairs are skipped; the one that
    succeeds closes it and the rest go out."""
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url())
    with running_loopback() as flaky:
        monkeypatch.setenv("CAVRA_TEST_FLAKY_URL", flaky.url())
        providers = {"flaky": "CAVRA_TEST_FLAKY_URL", "steady": "CAVRA_TEST_HOOK_URL"}
        runtime = make_runtime(write_config(_config(providers, threshold=1, cooldown_s=60)))
        _failed_and_accepted(runtime, clock, 4, [http_server, flaky])
        flaky.default_status = 503  # still down

        result = run_retry_worker(runtime.ctx, runtime.registry, live=True,
                                  max_deliveries=100)

        assert len(flaky.requests) == 1
    outcomes = Counter((e.provider, e.status, e.reason) for e in result.executions)
    assert outcomes == {("flaky", "failed", "server_error: HTTP 503"): 1,
                        ("flaky", "skipped", "provider_circuit_open"): 3,
                        ("steady", "delivered", "delivered"): 4}
    assert len(http_server.requests) == 4
