"""Fair live runs (SPEC §5.5): pairs a gate stops get their record but no slot of
``--max``, so they never starve an accepted pair behind them. Against a loopback server."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from store.services.acknowledgements import acknowledge
from store.services.escalation import build_plan
from store.services.recovery import import_recovery_items
from store.tables import ExecutionRecordRow
from tests.core.helpers import item
from tests.loopback import LoopbackHTTP
from workflows.delivery import deliver_escalation
from workflows.worker import run_retry_worker

pytestmark = pytest.mark.backends

CONFIG = """
[providers.hook]
kind = "webhook"
url_env = "CAVRA_TEST_HOOK_URL"
timeout_s = 5

[routing]
critical = ["hook"]
warning = ["hook"]
fallback = "outbox"
"""


def _failed_plans(runtime: Any, clock: Any, server: LoopbackHTTP, count: int) -> list[str]:
    """``count`` plans whose one delivery failed, in the order the retry plan lists them."""
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])
    server.default_status = 500
    plan_ids = []
    for _ in range(count):
        plan = build_plan(runtime.ctx)
        [delivery] = deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
        assert delivery.status == "failed"
        plan_ids.append(plan.plan_id)
        clock.advance(seconds=1)
    clock.advance(minutes=20)  # past the backoff
    server.default_status = 200
    server.requests.clear()
    return sorted(plan_ids)  # decisions are in plan-id order


@pytest.mark.parametrize("blocked", [1, 5, 50])
def test_blocked_pairs_that_sort_first_never_starve_an_accepted_one(
        blocked: int, make_runtime: Any, write_config: Any, http_server: LoopbackHTTP,
        clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url())
    runtime = make_runtime(write_config(CONFIG))
    plan_ids = _failed_plans(runtime, clock, http_server, blocked + 1)
    accepted = plan_ids[-1]  # sorts after every unacknowledged pair
    acknowledge(runtime.ctx, accepted, "hook", "accepted")

    result = run_retry_worker(runtime.ctx, runtime.registry, live=True, max_deliveries=1)

    sent = [e for e in result.executions if e.status == "delivered"]
    assert [e.plan_id for e in sent] == [accepted]
    assert len(http_server.requests) == 1
    assert http_server.requests[0].idempotency_key.startswith(f"cavra:{accepted}:")
    summary = result.run.summary
    assert (summary["selected"], summary["blocked"], summary["delivered"]) == (1, blocked, 1)
    assert summary["acknowledgement_pending"] == blocked
    # Every blocked pair has its own record, bound to the run (an independent read).
    with runtime.db.read() as session:
        rows = session.execute(select(ExecutionRecordRow.plan_id, ExecutionRecordRow.status,
                                      ExecutionRecordRow.reason).where(
            ExecutionRecordRow.run_id == result.run.run_id)).all()
    assert sorted(rows) == sorted(
        [(p, "blocked", "acknowledgement_required") for p in plan_ids[:-1]]
        + [(accepted, "delivered", "delivered")])


def test_a_dry_run_previews_the_same_fair_choice(
        make_runtime: Any, write_config: Any, http_server: LoopbackHTTP, clock: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url())
    runtime = make_runtime(write_config(CONFIG))
    plan_ids = _failed_plans(runtime, clock, http_server, 3)
    acknowledge(runtime.ctx, plan_ids[-1], "hook", "accepted")

    result = run_retry_worker(runtime.ctx, runtime.registry, live=False, max_deliveries=1)

    reasons = {e.plan_id: e.reason for e in result.executions}
    assert reasons == {plan_ids[0]: "live_would_block: acknowledgement_required",
                       plan_ids[1]: "live_would_block: acknowledgement_required",
                       plan_ids[2]: "would_deliver"}
    assert http_server.requests == []


def test_the_oldest_failure_is_sent_first(
        make_runtime: Any, write_config: Any, http_server: LoopbackHTTP, clock: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url())
    runtime = make_runtime(write_config(CONFIG))
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])
    http_server.default_status = 500
    plans = []
    for _ in range(3):
        plans.append(build_plan(runtime.ctx).plan_id)
        clock.advance(minutes=1)
    for plan_id in reversed(plans):  # the newest plan fails first: oldest failure
        deliver_escalation(runtime.ctx, runtime.registry, plan_id)
        acknowledge(runtime.ctx, plan_id, "hook", "accepted")
        clock.advance(minutes=1)
    clock.advance(minutes=20)
    http_server.default_status = 200

    result = run_retry_worker(runtime.ctx, runtime.registry, live=True, max_deliveries=2)

    assert sorted(e.plan_id for e in result.executions) == sorted(plans[1:][::-1])
    assert plans[0] not in {e.plan_id for e in result.executions}  # newest failure waits
