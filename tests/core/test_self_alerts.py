"""The loop reports its own failure (issue 13.5): one message per condition while it lasts,
one when it clears, to the operations providers; PagerDuty gets a trigger and the resolve of
the same incident; the state lives in the audit chain, so a new process neither repeats nor
forgets; the scheduler leader runs the check. Real loopback servers, real databases."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from scheduler.runner import SELF_ALERT_JOB_ID, SchedulerService
from store.audit import verify_chain
from store.services.acknowledgements import acknowledge
from store.services.escalation import build_plan
from store.services.recovery import import_recovery_items
from tests.core.helpers import item
from tests.loopback import LoopbackHTTP
from workflows.delivery import deliver_escalation
from workflows.self_alerts import run_self_alerts

pytestmark = pytest.mark.backends

CONFIG = """
[providers.bad-hook]
kind = "webhook"
url_env = "CAVRA_TEST_BAD_URL"
audience = ["executive"]

[providers.ops-hook]
kind = "webhook"
url_env = "CAVRA_TEST_OPS_URL"

[providers.pager]
kind = "pagerduty"
routing_key_env = "CAVRA_TEST_PD_KEY"
events_url = "{pd_url}"

[routing]
critical = ["bad-hook"]
warning = ["bad-hook"]
fallback = "outbox"
"""


@pytest.fixture
def failing(make_runtime: Any, write_config: Any, http_server: LoopbackHTTP, clock: Any,
            monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """A plan whose only delivery failed with HTTP 400: `permanent_error`, critical."""
    monkeypatch.setenv("CAVRA_TEST_BAD_URL", http_server.url("/bad"))
    monkeypatch.setenv("CAVRA_TEST_OPS_URL", http_server.url("/ops"))
    monkeypatch.setenv("CAVRA_TEST_PD_KEY", "R0UTINGKEY")
    runtime = make_runtime(write_config(CONFIG.format(pd_url=http_server.url("/pd"))))
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])
    plan = build_plan(runtime.ctx)
    http_server.answer(400)
    [failed] = deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
    assert (failed.provider, failed.status_code) == ("bad-hook", 400)
    http_server.requests.clear()
    return runtime, plan.plan_id


def _sent(server: LoopbackHTTP, path: str) -> list[dict[str, Any]]:
    """What arrived at ``path``: a webhook's message, or PagerDuty's whole event."""
    bodies = [r.json() for r in server.requests if r.path == path]
    return [body["message"] if path != "/pd" else body for body in bodies]


def test_one_message_while_it_lasts_and_one_when_it_clears(
        failing: tuple[Any, str], http_server: LoopbackHTTP, make_runtime: Any,
        clock: Any) -> None:
    runtime, plan_id = failing
    [raised] = run_self_alerts(runtime.ctx, runtime.registry)
    assert (raised.announcement.state, raised.announcement.code) == ("raised", "permanent_error")
    [ops] = _sent(http_server, "/ops")
    assert (ops["state"], ops["code"]) == ("raised", "permanent_error")
    assert "bad-hook" in ops["detail"]  # what to fix
    assert _sent(http_server, "/bad") == []  # not an operations provider
    [trigger] = _sent(http_server, "/pd")
    assert trigger["event_action"] == "trigger"
    assert trigger["payload"]["severity"] == "critical"

    for _ in range(3):  # still failing: nothing more, from this process or a new one
        clock.advance(minutes=5)
        assert run_self_alerts(runtime.ctx, runtime.registry) == []
    again = make_runtime(Path(runtime.config.base_dir or ".") / "cavra.toml")
    assert run_self_alerts(again.ctx, again.registry) == []
    assert len(_sent(http_server, "/ops")) == 1

    acknowledge(runtime.ctx, plan_id, "bad-hook", "dismissed")  # settled: no longer failing
    [cleared] = run_self_alerts(runtime.ctx, runtime.registry)
    assert cleared.announcement.state == "cleared"
    assert [m["state"] for m in _sent(http_server, "/ops")] == ["raised", "cleared"]
    resolve = _sent(http_server, "/pd")[-1]
    assert resolve == {"routing_key": "R0UTINGKEY", "event_action": "resolve",
                       "dedup_key": trigger["dedup_key"]}  # the incident the raise opened
    assert run_self_alerts(runtime.ctx, runtime.registry) == []
    assert len(_sent(http_server, "/ops")) == 2

    with runtime.db.read() as session:
        assert verify_chain(session).ok
    # Each raise and clear is audited, naming the deliveries that carried it.
    from sqlalchemy import select

    from store.tables import AuditEventRow, AuditTargetRow
    with runtime.db.read() as session:
        events = session.execute(select(AuditEventRow).where(
            AuditEventRow.action == "health.self_alert").order_by(AuditEventRow.seq)).scalars()
        details = [(e.detail.split(" ")[0], e.seq) for e in events]
        named = session.execute(select(AuditTargetRow.target_id).where(
            AuditTargetRow.seq == details[0][1])).scalars().all()
    assert [state for state, _ in details] == ["raised", "cleared"]
    assert raised.deliveries and {d.delivery_id for d in raised.deliveries} <= set(named)


def test_a_quiet_window_for_critical_holds_the_message_back(
        failing: tuple[Any, str], http_server: LoopbackHTTP) -> None:
    from store.services.quiet_windows import add_quiet_window

    runtime, _ = failing
    add_quiet_window(runtime.ctx, name="pager-maint", providers=["pager"], starts="now",
                     ends="+2h", severities=["critical"])
    [raised] = run_self_alerts(runtime.ctx, runtime.registry)
    assert raised.silenced == ["pager"]
    assert _sent(http_server, "/pd") == [] and len(_sent(http_server, "/ops")) == 1


def test_the_leader_runs_the_check_when_an_operations_provider_exists(
        failing: tuple[Any, str], http_server: LoopbackHTTP) -> None:
    runtime, _ = failing
    assert runtime.config.self_alert_interval() == 5

    async def lead() -> list[str]:
        service = SchedulerService(runtime.ctx, runtime.registry, lease_ttl_s=3, poll_s=0.2)
        service.start()
        try:
            for _ in range(100):
                await asyncio.sleep(0.05)
                if _sent(http_server, "/ops"):
                    break
            return service.job_ids()
        finally:
            service.shutdown()

    jobs = asyncio.run(lead())
    assert SELF_ALERT_JOB_ID in jobs
    assert [m["state"] for m in _sent(http_server, "/ops")] == ["raised"]


def test_without_an_operations_channel_beyond_the_outbox_it_is_off(
        make_runtime: Any) -> None:
    assert make_runtime().config.self_alert_interval() == 0


def test_the_pagerduty_events_match_what_pagerdutys_own_client_sends(
        failing: tuple[Any, str], http_server: LoopbackHTTP) -> None:
    """Reference: the official `pagerduty` client's Events API v2 trigger and resolve for the
    same incident — our raise carries every field it sends, with the same values, and our
    clear is exactly its resolve."""
    import json

    import httpx2
    import pagerduty

    runtime, plan_id = failing
    run_self_alerts(runtime.ctx, runtime.registry)
    acknowledge(runtime.ctx, plan_id, "bad-hook", "dismissed")
    run_self_alerts(runtime.ctx, runtime.registry)
    ours_trigger, ours_resolve = _sent(http_server, "/pd")

    captured: list[dict[str, Any]] = []

    def answer(request: Any) -> Any:  # the client's own transport hook: nothing leaves
        captured.append(json.loads(request.content))
        return httpx2.Response(202, json={"status": "success", "dedup_key": "k"})

    client = pagerduty.EventsApiV2Client("R0UTINGKEY", transport=httpx2.MockTransport(answer))
    payload = ours_trigger["payload"]
    client.trigger(payload["summary"], payload["source"], dedup_key=ours_trigger["dedup_key"],
                   severity=payload["severity"], custom_details=payload["custom_details"])
    client.resolve(ours_trigger["dedup_key"])
    reference_trigger, reference_resolve = captured

    def flat(event: dict[str, Any]) -> dict[str, Any]:
        return {**{k: v for k, v in event.items() if k != "payload"},
                **{f"payload.{k}": v for k, v in event.get("payload", {}).items()}}

    theirs, ours = flat(reference_trigger), flat(ours_trigger)
    assert {k: ours.get(k) for k in theirs} == theirs
    assert ours_resolve == reference_resolve
