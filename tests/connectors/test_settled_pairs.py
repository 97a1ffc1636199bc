"""Settled pairs stay settled and permanent errors are not retried (SPEC §5.4), against a
loopback PagerDuty Events API and webhook, through the CLI as an operator types it."""

from __future__ import annotations

import pytest

from tests.connectors.conftest import LoopbackHTTP
from tests.connectors.helpers import Cli, config_text

IMMEDIATE = "[retry]\nbase_delay_minutes = 0\nallow_immediate = true\n"


@pytest.fixture
def pager(cli: Cli, http_server: LoopbackHTTP, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("CAVRA_PD_KEY", "rk-123")
    monkeypatch.setenv("CAVRA_URL", http_server.url("/hook"))
    cli.configure(config_text({
        "pager": {"kind": "pagerduty", "routing_key_env": "CAVRA_PD_KEY",
                  "events_url": http_server.url("/v2/enqueue"), "timeout_s": 2},
        "hook": {"kind": "webhook", "url_env": "CAVRA_URL", "timeout_s": 2}}, extra=IMMEDIATE))
    return cli


def _triggers(server: LoopbackHTTP) -> int:
    return sum(1 for r in server.requests
               if r.path == "/v2/enqueue" and r.json().get("event_action") == "trigger")


def _decision(cli: Cli, plan_id: str, provider: str) -> tuple[str, str]:
    plan = cli.json("retry", "plan")
    [decision] = [d for d in plan["decisions"]
                  if (d["plan_id"], d["provider"]) == (plan_id, provider)]
    return decision["action"], decision["reason"]


@pytest.mark.parametrize("state", ["resolved", "dismissed"])
def test_a_settled_pagerduty_pair_is_never_triggered_again(
        pager: Cli, http_server: LoopbackHTTP, state: str) -> None:
    plan = pager.seed_plan()["plan_id"]
    http_server.default_status = 500
    pager.json("escalation", "deliver", plan, "--provider", "pager")
    http_server.default_status = 202
    pager.json("escalation", "ack", plan, "--provider", "pager", "--state", state)
    assert _triggers(http_server) == 1

    assert _decision(pager, plan, "pager") == ("suppress", "settled")
    run = pager.json("retry", "run", "--live")
    assert run["executions"] == [] and _triggers(http_server) == 1

    # Nor by hand: named, it is refused in one line; by default it is left out.
    code, _, err = pager.run("escalation", "deliver", plan, "--provider", "pager")
    assert code == 2 and err.count("\n") == 1
    assert f"plan {plan} is {state} for pager" in err
    sent = pager.json("escalation", "deliver", plan)
    assert [d["provider"] for d in sent] == ["hook"]
    assert _triggers(http_server) == 1


@pytest.mark.parametrize(("provider", "path"), [("pager", "/v2/enqueue"), ("hook", "/hook")])
def test_a_permanent_error_is_suppressed_not_retried(
        pager: Cli, http_server: LoopbackHTTP, provider: str, path: str) -> None:
    plan = pager.seed_plan()["plan_id"]
    http_server.default_status = 400  # PagerDuty: "invalid event"
    [failed] = pager.json("escalation", "deliver", plan, "--provider", provider)
    assert (failed["status"], failed["status_code"]) == ("failed", 400)
    pager.json("escalation", "ack", plan, "--provider", provider, "--state", "accepted")
    http_server.default_status = 202
    sent_before = sum(1 for r in http_server.requests if r.path == path)

    assert _decision(pager, plan, provider) == ("suppress", "permanent_error: HTTP 400")
    run = pager.json("retry", "run", "--live")
    assert run["executions"] == []
    assert sum(1 for r in http_server.requests if r.path == path) == sent_before


@pytest.mark.parametrize("code", [408, 429, 503])
def test_codes_that_ask_to_try_again_are_retried(pager: Cli, http_server: LoopbackHTTP,
                                                 code: int) -> None:
    plan = pager.seed_plan()["plan_id"]
    http_server.default_status = code
    pager.json("escalation", "deliver", plan, "--provider", "hook")
    pager.json("escalation", "ack", plan, "--provider", "hook", "--state", "accepted")
    http_server.default_status = 202
    assert _decision(pager, plan, "hook")[0] == "retry"
