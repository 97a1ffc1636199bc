"""PagerDuty incidents are resolved when their escalation pair is resolved."""

from __future__ import annotations

import pytest

from tests.connectors.conftest import LoopbackHTTP
from tests.connectors.helpers import Cli, config_text


@pytest.fixture
def pager(cli: Cli, http_server: LoopbackHTTP, monkeypatch: pytest.MonkeyPatch) -> Cli:
    http_server.default_status = 202
    monkeypatch.setenv("CAVRA_PD_KEY", "rk-123")
    monkeypatch.setenv("CAVRA_URL", http_server.url("/hook"))
    cli.configure(config_text({
        "pager": {"kind": "pagerduty", "routing_key_env": "CAVRA_PD_KEY",
                  "events_url": http_server.url("/v2/enqueue"), "timeout_s": 2},
        "hook": {"kind": "webhook", "url_env": "CAVRA_URL", "timeout_s": 2}}))
    return cli


def _events(server: LoopbackHTTP) -> list[dict[str, object]]:
    return [r.json() for r in server.requests if r.path == "/v2/enqueue"]


def test_resolved_ack_sends_one_resolve_with_the_trigger_dedup_key(
        pager: Cli, http_server: LoopbackHTTP) -> None:
    plan = pager.seed_plan()
    deliveries = pager.json("escalation", "deliver", plan["plan_id"])
    trigger = next(d for d in deliveries if d["provider"] == "pager")

    acked = pager.json("escalation", "ack", plan["plan_id"], "--provider", "pager",
                       "--state", "acknowledged")
    assert "resolve_deliveries" not in acked and len(_events(http_server)) == 1

    resolved = pager.json("escalation", "ack", plan["plan_id"], "--provider", "pager",
                          "--state", "resolved", "--notes", "fixed by rollback")
    [resolve] = resolved["resolve_deliveries"]
    assert (resolve["kind"], resolve["status"], resolve["plan_id"]) == (
        "resolve", "delivered", plan["plan_id"])
    assert resolve["idempotency_key"] == trigger["idempotency_key"]
    assert _events(http_server)[-1] == {"routing_key": "rk-123", "event_action": "resolve",
                                        "dedup_key": trigger["idempotency_key"]}

    # Recording "resolved" again does not resend; nor does resolving the other provider.
    again = pager.json("escalation", "ack", plan["plan_id"], "--provider", "pager",
                       "--state", "resolved")
    pager.json("escalation", "ack", plan["plan_id"], "--provider", "hook", "--state", "resolved")
    assert "resolve_deliveries" not in again
    assert [e["event_action"] for e in _events(http_server)] == ["trigger", "resolve"]
    # A resolve is neither an escalation delivery nor a failure.
    assert pager.json("metrics")["failed_deliveries"]["escalation"] == 0
    assert b"fixed by rollback" not in http_server.requests[-1].body


def test_failed_resolve_is_recorded_and_retried_on_the_next_resolved_ack(
        pager: Cli, http_server: LoopbackHTTP) -> None:
    plan = pager.seed_plan()
    pager.json("escalation", "deliver", plan["plan_id"], "--provider", "pager")
    http_server.answer(500)
    first = pager.json("escalation", "ack", plan["plan_id"], "--provider", "pager",
                       "--state", "resolved")
    [failed] = first["resolve_deliveries"]
    assert (failed["status"], failed["error"], failed["attempt"]) == (
        "failed", "server_error: HTTP 500", 1)
    second = pager.json("escalation", "ack", plan["plan_id"], "--provider", "pager",
                        "--state", "resolved")
    [ok] = second["resolve_deliveries"]
    assert (ok["status"], ok["attempt"]) == ("delivered", 2)


def test_dismissing_every_pair_resolves_the_incident(pager: Cli,
                                                     http_server: LoopbackHTTP) -> None:
    plan = pager.seed_plan()
    pager.json("escalation", "deliver", plan["plan_id"])
    for provider in ("pager", "hook"):
        pager.json("escalation", "ack", plan["plan_id"], "--provider", provider,
                   "--state", "dismissed")
    assert [e["event_action"] for e in _events(http_server)] == ["trigger", "resolve"]
