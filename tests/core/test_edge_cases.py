"""The cases the upstream design left untested (SPEC §5)."""

from __future__ import annotations

from typing import Any

import pytest

from store.config import load_config
from store.errors import NotFound, UserError
from store.services.acknowledgements import acknowledge
from store.services.escalation import build_plan
from store.services.recovery import import_recovery_items
from store.services.retry import build_retry_plan
from tests.core.helpers import WEBHOOK_CONFIG, item
from tests.loopback import LoopbackHTTP
from workflows.delivery import deliver_escalation
from workflows.worker import run_retry_worker

pytestmark = pytest.mark.backends


@pytest.fixture
def runtime(make_runtime: Any, write_config: Any, http_server: LoopbackHTTP,
            monkeypatch: pytest.MonkeyPatch, clock: Any) -> Any:
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url())
    monkeypatch.setenv("CAVRA_TEST_HOOK_SECRET", "s")
    runtime = make_runtime(write_config(WEBHOOK_CONFIG))
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])
    return runtime


def test_delivering_an_unknown_plan_is_refused(runtime: Any) -> None:
    with pytest.raises(NotFound, match="escalation plan 'esc-nope' not found"):
        deliver_escalation(runtime.ctx, runtime.registry, "esc-nope")


def test_latest_before_any_plan_is_refused(make_runtime: Any) -> None:
    runtime = make_runtime()
    with pytest.raises(NotFound, match="no escalation plan yet"):
        deliver_escalation(runtime.ctx, runtime.registry, "latest")


def test_latest_means_the_newest_plan(runtime: Any, clock: Any) -> None:
    build_plan(runtime.ctx)
    clock.advance(minutes=1)
    newest = build_plan(runtime.ctx)
    [delivery] = deliver_escalation(runtime.ctx, runtime.registry, "latest")
    assert delivery.plan_id == newest.plan_id


def test_provider_not_configured_is_refused(runtime: Any) -> None:
    plan = build_plan(runtime.ctx)
    with pytest.raises(UserError, match="provider 'pager' is not configured"):
        deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id, ["pager"])
    with pytest.raises(UserError, match="not one of"):
        deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id, ["outbox"])


def test_ack_of_unknown_plan_or_undelivered_provider_is_rejected(runtime: Any) -> None:
    plan = build_plan(runtime.ctx)
    with pytest.raises(NotFound, match="not found"):
        acknowledge(runtime.ctx, "esc-missing", "ops-webhook", "accepted")
    with pytest.raises(NotFound, match="was not delivered to provider 'ops-webhook'"):
        acknowledge(runtime.ctx, plan.plan_id, "ops-webhook", "accepted")
    deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
    with pytest.raises(NotFound, match="was not delivered to provider 'slack'"):
        acknowledge(runtime.ctx, plan.plan_id, "slack", "accepted")
    with pytest.raises(UserError, match="unknown acknowledgement state 'ok'"):
        acknowledge(runtime.ctx, plan.plan_id, "ops-webhook", "ok")
    assert acknowledge(runtime.ctx, plan.plan_id, "ops-webhook", "accepted").state == "accepted"


def test_worker_skips_a_provider_no_longer_configured(runtime: Any, http_server: LoopbackHTTP,
                                                      clock: Any, write_config: Any,
                                                      make_runtime: Any) -> None:
    plan = build_plan(runtime.ctx)
    http_server.answer(500)
    deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
    acknowledge(runtime.ctx, plan.plan_id, "ops-webhook", "accepted")
    clock.advance(minutes=20)
    # The operator removes the provider from the config; the failed pair remains.
    without = make_runtime(write_config("[routing]\nfallback = 'outbox'\n"))
    result = run_retry_worker(without.ctx, without.registry, live=True)
    assert [(e.status, e.reason) for e in result.executions] == [
        ("skipped", "provider_not_configured")]
    assert result.run.summary["skipped"] == 1


def test_disabled_provider_is_suppressed(runtime: Any, http_server: LoopbackHTTP, clock: Any,
                                         write_config: Any, make_runtime: Any) -> None:
    plan = build_plan(runtime.ctx)
    http_server.answer(500)
    deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
    clock.advance(minutes=20)
    disabled = make_runtime(write_config(WEBHOOK_CONFIG.replace(
        "timeout_s = 2", "timeout_s = 2\nenabled = false")))
    [decision] = build_retry_plan(disabled.ctx).decisions
    assert (decision.action, decision.reason) == ("suppress", "provider_disabled")


def test_routing_falls_back_when_no_provider_is_usable(write_config: Any) -> None:
    config = load_config(write_config(
        "[providers.hook]\nkind='webhook'\nurl_env='X'\nenabled=false\n"
        "[routing]\ncritical=['hook']\n"))
    from store.rules.escalation import providers_for

    assert providers_for("critical", config) == ["outbox"]
    assert providers_for("warning", config) == ["outbox"]
