"""Gates and races: separation of duties, honest previews, stale decisions, two writers at
once on one pair or run (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from store.errors import Conflict, StaleDecision, UserError
from store.policy import authorize, current_user
from store.rules.messages import escalation_message
from store.services.acknowledgements import acknowledge
from store.services.escalation import build_plan
from store.services.locks import try_acquire
from store.services.metrics import read_metrics
from store.services.recovery import import_recovery_items
from store.services.reports import create_schedule_run
from store.services.retry import build_retry_plan
from store.tables import AuditEventRow, DeliveryRow
from tests.core.helpers import WEBHOOK_CONFIG, item
from tests.loopback import LoopbackHTTP
from workflows.delivery import deliver_escalation, deliver_report, send_one
from workflows.worker import LIVE_LOCK, run_retry_worker

pytestmark = pytest.mark.backends
ME = current_user()
TWO_PROVIDERS = WEBHOOK_CONFIG.replace('critical = ["ops-webhook"]',
                                       'critical = ["ops-webhook", "ops2"]') + """
[providers.ops2]
kind = "webhook"
url_env = "CAVRA_TEST_HOOK_URL"

[providers.exec-a]
kind = "webhook"
url_env = "CAVRA_TEST_HOOK_URL"
audience = ["executive"]

[providers.exec-off]
kind = "outbox"
audience = ["executive"]
enabled = false
"""


@pytest.fixture
def runtime(make_runtime: Any, write_config: Any, http_server: LoopbackHTTP, clock: Any,
            monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url())
    monkeypatch.setenv("CAVRA_TEST_HOOK_SECRET", "s")
    roles = f'[roles]\nrelease_manager = ["{ME}"]\nseparate_duties = true\n'
    runtime = make_runtime(write_config(TWO_PROVIDERS + roles))
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])
    return runtime


def _failed_plan(runtime: Any, http_server: LoopbackHTTP, clock: Any) -> str:
    plan = build_plan(runtime.ctx)
    http_server.answer(500)
    http_server.answer(500)
    deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
    clock.advance(minutes=20)
    return plan.plan_id


def _denials(runtime: Any) -> list[AuditEventRow]:
    with runtime.db.read() as session:
        return list(session.query(AuditEventRow).filter(AuditEventRow.decision == "deny"))


def test_the_accepter_stays_blocked_after_a_later_acknowledgement(
        runtime: Any, http_server: LoopbackHTTP, clock: Any) -> None:
    plan_id = _failed_plan(runtime, http_server, clock)
    acknowledge(runtime.ctx, plan_id, "ops-webhook", "accepted")
    acknowledge(runtime.ctx, plan_id, "ops-webhook", "acknowledged")  # same person again
    sent = len(http_server.requests)
    result = run_retry_worker(runtime.ctx, runtime.registry, live=True)
    reasons = {e.provider: (e.status, e.reason) for e in result.executions}
    assert reasons["ops-webhook"] == ("blocked", "separation_of_duties")
    assert len(http_server.requests) == sent
    [denial] = [d for d in _denials(runtime) if d.action == "retry.deliver"]
    assert "separate_duties" in denial.policy_rule and plan_id in denial.target_ids


def test_the_dry_run_preview_shows_what_live_would_block(runtime: Any,
                                                         http_server: LoopbackHTTP,
                                                         clock: Any) -> None:
    _failed_plan(runtime, http_server, clock)
    dry = run_retry_worker(runtime.ctx, runtime.registry)
    assert {e.reason for e in dry.executions} == {"live_would_block: acknowledgement_required"}
    assert dry.acknowledgement_pending == 2
    live = run_retry_worker(runtime.ctx, runtime.registry, live=True)
    assert live.acknowledgement_pending == 2
    assert {e.reason for e in live.executions} == {"acknowledgement_required"}


def test_a_refused_second_live_run_is_audited(runtime: Any, clock: Any) -> None:
    assert try_acquire(runtime.ctx, LIVE_LOCK, "wrk-elsewhere", 600, clock.now)
    with pytest.raises(Conflict):
        run_retry_worker(runtime.ctx, runtime.registry, live=True)
    [denial] = _denials(runtime)
    assert (denial.action, denial.target_ids) == ("retry.run.live", ["wrk-elsewhere"])


def test_a_decision_made_stale_by_a_manual_success_is_not_sent(
        runtime: Any, http_server: LoopbackHTTP, clock: Any) -> None:
    plan_id = _failed_plan(runtime, http_server, clock)
    decision = next(d for d in build_retry_plan(runtime.ctx).decisions
                    if d.provider == "ops2" and d.action == "retry")
    deliver_escalation(runtime.ctx, runtime.registry, plan_id, ["ops2"])  # succeeds
    sent = len(http_server.requests)
    with pytest.raises(StaleDecision, match="was delivered since the retry plan was built"):
        send_one(runtime.ctx, runtime.registry, kind="escalation", provider="ops2",
                 plan_id=plan_id, schedule_run_id=None, attempt=decision.attempt,
                 key=decision.idempotency_key, message={}, action="retry.deliver",
                 decision=authorize(runtime.identity, "retry.run.live"),
                 sent_by_run_id="wrk-stale")
    assert len(http_server.requests) == sent


def test_a_plan_is_open_from_its_first_delivery_until_every_pair_settles(
        runtime: Any, http_server: LoopbackHTTP, clock: Any) -> None:
    plan = build_plan(runtime.ctx)
    assert read_metrics(runtime.ctx, clock.now).open_escalations == 0  # never sent
    deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
    metrics = read_metrics(runtime.ctx, clock.now)
    assert (metrics.open_escalations, metrics.alert_level) == (1, "critical")
    acknowledge(runtime.ctx, plan.plan_id, "ops-webhook", "resolved")
    assert read_metrics(runtime.ctx, clock.now).open_escalations == 1
    acknowledge(runtime.ctx, plan.plan_id, "ops2", "dismissed")
    metrics = read_metrics(runtime.ctx, clock.now)
    assert (metrics.open_escalations, metrics.alert_level) == (0, "healthy")


def test_disabled_executive_channel_is_refused_and_left_out(runtime: Any) -> None:
    run, _, _ = create_schedule_run(runtime.ctx)
    with pytest.raises(UserError, match="'exec-off' is disabled"):
        deliver_report(runtime.ctx, runtime.registry, run.run_id, ["exec-off"])
    sent = deliver_report(runtime.ctx, runtime.registry, run.run_id)
    assert "exec-off" not in {d.provider for d in sent}


def _race(*actions: Callable[[], Any]) -> list[Any]:
    """Start the actions together on separate threads (separate sessions, like processes)."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = actions[index]()
        except Exception as exc:  # collected for the assertions
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_concurrent_resolves_close_the_plan(runtime: Any, http_server: LoopbackHTTP,
                                            clock: Any) -> None:
    for _ in range(5):
        plan = build_plan(runtime.ctx)
        deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
        _race(lambda p=plan.plan_id: acknowledge(runtime.ctx, p, "ops-webhook", "resolved"),
              lambda p=plan.plan_id: acknowledge(runtime.ctx, p, "ops2", "resolved"))
    assert read_metrics(runtime.ctx, clock.now).open_escalations == 0


def test_concurrent_report_deliveries_send_once(runtime: Any, http_server: LoopbackHTTP,
                                                clock: Any) -> None:
    for _ in range(5):
        clock.advance(minutes=1)
        run, _, _ = create_schedule_run(runtime.ctx)
        _race(*[lambda r=run.run_id: deliver_report(runtime.ctx, runtime.registry, r,
                                                    ["exec-a"])] * 3)
        with runtime.db.read() as session:
            sends = session.query(DeliveryRow).filter(DeliveryRow.run_id == run.run_id).count()
        assert sends == 1


def test_concurrent_manual_sends_to_one_pair_send_once(runtime: Any, clock: Any,
                                                       http_server: LoopbackHTTP) -> None:
    plan = build_plan(runtime.ctx)
    message = escalation_message(plan, "ops2", 1)
    allow = authorize(runtime.identity, "escalation.deliver")
    results = _race(*[lambda: send_one(
        runtime.ctx, runtime.registry, kind="escalation", provider="ops2", plan_id=plan.plan_id,
        schedule_run_id=None, attempt=1, key=f"cavra:{plan.plan_id}:ops2:1", message=message,
        action="escalation.deliver", decision=allow)] * 3)
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))


def test_a_confirmed_live_run_sends_only_what_was_previewed(
        runtime: Any, http_server: LoopbackHTTP, clock: Any) -> None:
    plan_id = _failed_plan(runtime, http_server, clock)
    for provider in ("ops-webhook", "ops2"):
        acknowledge(runtime.ctx, plan_id, provider, "acknowledged")
    preview = run_retry_worker(runtime.ctx, runtime.registry)
    shown = frozenset(e.idempotency_key for e in preview.executions if e.provider == "ops2")
    live = run_retry_worker(runtime.ctx, runtime.registry, live=True, previewed=shown)
    assert [(e.provider, e.status) for e in live.executions] == [("ops2", "delivered")]


def test_a_send_still_in_flight_does_not_hold_back_the_other_providers(
        runtime: Any, http_server: LoopbackHTTP) -> None:
    """A dead leader left one provider in flight: resuming the run still reaches the rest."""
    from store.digest import sha256_of
    from store.services.deliveries import begin_delivery

    run, _, _ = create_schedule_run(runtime.ctx)
    with runtime.ctx.write() as session:
        begin_delivery(runtime.ctx, session, kind="executive", provider="exec-a", plan_id=None,
                       schedule_run_id=run.run_id, attempt=1, idempotency_key="k", target="t",
                       payload={}, payload_sha256=sha256_of({}), timeout_s=60)
    with pytest.raises(Conflict, match=r"exec-a is still in flight.*sent: outbox delivered"):
        deliver_report(runtime.ctx, runtime.registry, run.run_id, ["exec-a", "outbox"])
    with runtime.db.read() as session:
        statuses = dict(session.query(DeliveryRow.provider, DeliveryRow.status).filter(
            DeliveryRow.run_id == run.run_id).all())
    assert statuses == {"exec-a": "in_flight", "outbox": "delivered"}
