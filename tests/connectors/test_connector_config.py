"""Config keys of each kind, and the executive-audience gate."""

from __future__ import annotations

import pytest

from tests.connectors.conftest import LoopbackHTTP
from tests.connectors.helpers import Cli, config_text

EMAIL = {"kind": "email", "host": "127.0.0.1", "sender": "a@example.test",
         "to": ["b@example.test"]}


@pytest.mark.parametrize(("providers", "extra", "message"), [
    ({"s": {"kind": "slack", "url_env": "X", "url": "https://hooks"}}, "",
     "providers.s.url: unknown key"),
    ({"m": {**EMAIL, "password": "hunter2"}}, "", "providers.m.password: unknown key"),
    ({"m": {k: v for k, v in EMAIL.items() if k != "sender"}}, "",
     "providers.m.sender: Field required"),
    ({"m": {**EMAIL, "to": []}}, "", "providers.m.to: List should have at least 1 item"),
    ({"pd": {"kind": "pagerduty", "routing_key": "abc"}}, "",
     "providers.pd.routing_key_env: Field required"),
    ({"pd": {"kind": "pagerduty", "routing_key_env": "K", "service": "x"}}, "",
     "providers.pd.service: unknown key"),
    ({}, "[circuit]\nfailure_threshold = 0\n", "circuit.failure_threshold: Input should be"),
    ({}, "[circuit]\ncool_down = 5\n", "circuit.cool_down: unknown key"),
])
def test_bad_keys_are_named_and_nothing_is_written(
        providers: dict[str, dict[str, object]], extra: str, message: str, cli: Cli) -> None:
    cli.configure(config_text(providers, route=[], extra=extra))
    code, _, err = cli.run("metrics")
    assert code == 2
    assert f"{cli.config_path}: {message}" in err and err.count("\n") == 1
    assert not cli.db_path.exists()


def test_defaults(cli: Cli) -> None:
    from store.config import load_config

    cli.configure(config_text({"pd": {"kind": "pagerduty", "routing_key_env": "K"},
                               "m": EMAIL}))
    config = load_config(cli.config_path)
    assert config.providers["pd"].events_url == "https://events.pagerduty.com/v2/enqueue"
    mail = config.providers["m"]
    assert (mail.port, mail.starttls, mail.username, mail.password_env) == (587, True, None, None)
    assert (config.circuit.failure_threshold, config.circuit.cooldown_s) == (5, 300)


def test_report_goes_only_to_executive_channels(cli: Cli, http_server: LoopbackHTTP,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAVRA_OPS_URL", http_server.url("/ops"))
    monkeypatch.setenv("CAVRA_EXEC_URL", http_server.url("/exec"))
    cli.configure(config_text({
        "ops-slack": {"kind": "slack", "url_env": "CAVRA_OPS_URL"},
        "exec-slack": {"kind": "slack", "url_env": "CAVRA_EXEC_URL",
                       "audience": ["executive"]}}, route=["ops-slack"]))
    cli.seed_plan()
    run = cli.json("report", "schedule-run")

    code, _, err = cli.run("report", "deliver", run["run_id"], "--provider", "ops-slack")
    assert code == 2
    assert "provider 'ops-slack' is not an executive channel" in err
    assert http_server.requests == []

    [delivery] = cli.json("report", "deliver", run["run_id"], "--provider", "exec-slack")
    assert (delivery["kind"], delivery["status"]) == ("executive", "delivered")
    [request] = http_server.requests
    assert request.path == "/exec"
    body = request.json()
    assert body["text"].startswith(f"CAVRA executive recovery report {run['report']['report_id']}")
    section = body["blocks"][1]["text"]["text"]
    assert f"Report: {run['report']['report_id']}  run {run['run_id']}" in section
    assert "Business impact:" in section
