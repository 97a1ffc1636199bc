"""One live worker at a time; a crash mid-send leaves `unknown`, never a blind resend."""

from __future__ import annotations

from typing import Any

import pytest

from store.digest import sha256_of
from store.errors import Conflict
from store.services.acknowledgements import acknowledge
from store.services.deliveries import begin_delivery
from store.services.escalation import build_plan
from store.services.locks import release, try_acquire
from store.services.recovery import import_recovery_items
from store.tables import DeliveryRow
from tests.core.helpers import WEBHOOK_CONFIG, item
from tests.loopback import LoopbackHTTP
from workflows.delivery import deliver_escalation
from workflows.worker import LIVE_LOCK, run_retry_worker

pytestmark = pytest.mark.backends


@pytest.fixture
def failed_pair(make_runtime: Any, write_config: Any, clock: Any, http_server: LoopbackHTTP,
                monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url())
    monkeypatch.setenv("CAVRA_TEST_HOOK_SECRET", "s")
    runtime = make_runtime(write_config(WEBHOOK_CONFIG))
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])
    plan = build_plan(runtime.ctx)
    http_server.answer(502)
    deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
    acknowledge(runtime.ctx, plan.plan_id, "ops-webhook", "accepted")
    clock.advance(minutes=20)
    return runtime, plan.plan_id


def test_a_second_live_run_is_refused(failed_pair: tuple[Any, str], clock: Any,
                                      http_server: LoopbackHTTP) -> None:
    runtime, _ = failed_pair
    assert try_acquire(runtime.ctx, LIVE_LOCK, "wrk-othercons", 600, clock.now)
    sent = len(http_server.requests)
    with pytest.raises(Conflict, match=r"another live retry worker run \(wrk-othercons\)"):
        run_retry_worker(runtime.ctx, runtime.registry, live=True)
    assert len(http_server.requests) == sent
    # Dry runs are not serialised: previews stay available during a live run.
    assert run_retry_worker(runtime.ctx, runtime.registry).executions[0].status == "dry_run"
    release(runtime.ctx, LIVE_LOCK, "wrk-othercons")
    assert run_retry_worker(runtime.ctx, runtime.registry, live=True).executions[0].status == (
        "delivered")


def test_an_expired_lock_from_a_dead_process_is_taken_over(failed_pair: tuple[Any, str],
                                                           clock: Any) -> None:
    runtime, _ = failed_pair
    assert try_acquire(runtime.ctx, LIVE_LOCK, "wrk-crashed", 60, clock.now)
    clock.advance(minutes=2)
    assert run_retry_worker(runtime.ctx, runtime.registry, live=True).run.mode == "live"


def test_in_flight_after_a_crash_becomes_unknown_and_the_key_is_reused(
        failed_pair: tuple[Any, str], clock: Any, http_server: LoopbackHTTP) -> None:
    runtime, plan_id = failed_pair
    # A process recorded an attempt, then died before it could record the outcome.
    with runtime.ctx.write() as session:
        crashed = begin_delivery(runtime.ctx, session, kind="escalation", provider="ops-webhook",
                                 plan_id=plan_id, schedule_run_id=None, attempt=2,
                                 idempotency_key=f"cavra:{plan_id}:ops-webhook:2",
                                 target="http://127.0.0.1/***", payload={},
                                 payload_sha256=sha256_of({}), timeout_s=2)
    # While it may still be sending, nobody else sends to that pair.
    with pytest.raises(Conflict, match="still in flight"):
        deliver_escalation(runtime.ctx, runtime.registry, plan_id)
    clock.advance(minutes=20)
    result = run_retry_worker(runtime.ctx, runtime.registry, live=True)
    with runtime.db.read() as session:
        swept = session.get(DeliveryRow, crashed.delivery_id)
        assert swept is not None and swept.status == "unknown"
        assert "interrupted" in (swept.error or "")
    # The sweep sent nothing: the unknown outcome counts as a failure and backs off.
    assert result.executions == []
    clock.advance(hours=2)
    retry = run_retry_worker(runtime.ctx, runtime.registry, live=True)
    [execution] = retry.executions
    assert execution.idempotency_key == f"cavra:{plan_id}:ops-webhook:2"
    assert http_server.requests[-1].idempotency_key == execution.idempotency_key


def test_a_stale_in_flight_does_not_block_a_new_delivery_forever(
        failed_pair: tuple[Any, str], clock: Any) -> None:
    runtime, plan_id = failed_pair
    with runtime.ctx.write() as session:
        crashed = begin_delivery(runtime.ctx, session, kind="escalation", provider="ops-webhook",
                                 plan_id=plan_id, schedule_run_id=None, attempt=2,
                                 idempotency_key=f"cavra:{plan_id}:ops-webhook:2",
                                 target="http://127.0.0.1/***", payload={},
                                 payload_sha256=sha256_of({}), timeout_s=2)
    clock.advance(minutes=5)
    [delivery] = deliver_escalation(runtime.ctx, runtime.registry, plan_id)
    assert delivery.status == "delivered"
    assert delivery.idempotency_key == f"cavra:{plan_id}:ops-webhook:2"  # same attempt
    with runtime.db.read() as session:
        settled = session.get(DeliveryRow, crashed.delivery_id)
        assert settled is not None and settled.status == "unknown"


def test_reopening_a_database_keeps_everything(failed_pair: tuple[Any, str],
                                               make_runtime: Any) -> None:
    runtime, plan_id = failed_pair
    again = make_runtime()
    from store.services.escalation import get_plan

    assert get_plan(again.ctx, plan_id).plan_id == plan_id


def test_evidence_is_append_only_in_the_database(failed_pair: tuple[Any, str]) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    runtime, plan_id = failed_pair
    for statement in ("UPDATE escalation_plans SET alert_level = 'healthy'",
                      "DELETE FROM audit_events", "DELETE FROM deliveries",
                      "UPDATE deliveries SET status = 'delivered'"):
        with pytest.raises(DBAPIError, match="append-only|only out of in_flight"), \
                runtime.db.write_engine.begin() as conn:
            conn.execute(text(statement))
