"""`cavra provider test NAME`: a clearly marked drill, recorded as a drill delivery."""

from __future__ import annotations

import pytest

from tests.connectors.conftest import LoopbackHTTP, SMTPServer, closed_port
from tests.connectors.helpers import Cli, config_text


def _slack(cli: Cli, url: str, monkeypatch: pytest.MonkeyPatch, **extra: object) -> None:
    monkeypatch.setenv("CAVRA_SLACK_URL", url)
    cli.configure(config_text({"team-slack": {"kind": "slack", "url_env": "CAVRA_SLACK_URL",
                                              "timeout_s": 1, **extra}}))


def test_drill_is_marked_and_recorded_as_drill(cli: Cli, http_server: LoopbackHTTP,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _slack(cli, http_server.url("/services/T/B/x"), monkeypatch)
    [delivery] = cli.json("provider", "test", "team-slack")

    assert delivery["kind"] == "drill" and delivery["status"] == "delivered"
    assert delivery["plan_id"] is None and delivery["run_id"] is None
    [request] = http_server.requests
    body = request.json()
    assert body["text"] == "[DRILL] CAVRA provider test for team-slack: no action needed"
    assert "No action is needed" in body["blocks"][1]["text"]["text"]
    [row] = cli.rows("deliveries")
    assert (row["kind"], row["status"], row["provider"]) == ("drill", "delivered", "team-slack")
    [event] = cli.rows("audit_events", "action = 'provider.test'")
    assert row["delivery_id"] in event["target_ids"]

    # A drill is not an escalation: no counts, no pair, nothing for the retry plan.
    metrics = cli.json("metrics")
    assert metrics["failed_deliveries"] == {"escalation": 0, "executive": 0}
    assert metrics["last_24h"]["delivered"] == 0
    assert metrics["acknowledgement_pending"] == 0
    assert cli.rows("pair_state") == []
    assert cli.json("retry", "plan")["decisions"] == []


def test_failed_drill_exits_3_and_is_recorded(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    _slack(cli, f"http://127.0.0.1:{closed_port()}/x", monkeypatch)
    code, out, _ = cli.run("provider", "test", "team-slack")
    assert code == 3
    assert "failed" in out and "connection_refused" in out
    [row] = cli.rows("deliveries")
    assert (row["kind"], row["status"], row["error"]) == ("drill", "failed", "connection_refused")
    assert cli.json("metrics")["failed_deliveries"]["escalation"] == 0
    # ... but it does tell the breaker about the provider.
    assert cli.json("metrics")["providers"]["team-slack"]["consecutive_failures"] == 1


def test_email_drill(cli: Cli, smtp_server: SMTPServer) -> None:
    cli.configure(config_text({"mail": {
        "kind": "email", "host": "127.0.0.1", "port": smtp_server.port, "starttls": False,
        "sender": "cavra@example.test", "to": ["oncall@example.test"], "timeout_s": 2}}))
    [delivery] = cli.json("provider", "test", "mail")
    assert delivery["kind"] == "drill" and delivery["status"] == "delivered"
    [(_, _, mail)] = smtp_server.behaviour.messages
    assert mail["Subject"] == "[DRILL] CAVRA provider test for mail: no action needed"
    assert mail["X-Cavra-Kind"] == "drill"


def test_pagerduty_drill_triggers_then_resolves(cli: Cli, http_server: LoopbackHTTP,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    http_server.default_status = 202
    monkeypatch.setenv("CAVRA_PD_KEY", "rk")
    cli.configure(config_text({"pager": {"kind": "pagerduty", "routing_key_env": "CAVRA_PD_KEY",
                                         "events_url": http_server.url("/v2/enqueue")}}))
    drill, resolve = cli.json("provider", "test", "pager")
    assert (drill["kind"], resolve["kind"]) == ("drill", "resolve")
    trigger_event, resolve_event = (r.json() for r in http_server.requests)
    assert trigger_event["event_action"] == "trigger"
    assert trigger_event["payload"]["severity"] == "info"
    assert trigger_event["payload"]["summary"].startswith("[DRILL]")
    assert resolve_event == {"routing_key": "rk", "event_action": "resolve",
                             "dedup_key": trigger_event["dedup_key"]}
    assert drill["idempotency_key"] == resolve["idempotency_key"] == trigger_event["dedup_key"]


@pytest.mark.parametrize(("name", "message"), [
    ("nope", "provider 'nope' is not configured"),
    ("team-slack", "provider 'team-slack' is disabled in the config"),
])
def test_refused_drill_writes_nothing(name: str, message: str, cli: Cli,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _slack(cli, "http://127.0.0.1:9/x", monkeypatch, enabled=False)
    code, _, err = cli.run("provider", "test", name)
    assert code == 2
    assert err.startswith(f"cavra: error: {message}") and err.count("\n") == 1
    assert cli.rows("deliveries") == [] and cli.rows("audit_events") == []


def test_read_only_drill_is_refused(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    _slack(cli, "http://127.0.0.1:9/x", monkeypatch)
    code, _, err = cli.run("--read-only", "provider", "test", "team-slack")
    assert code == 2 and "read-only" in err
    assert cli.rows("deliveries") == []


def test_provider_list_shows_redacted_targets_and_circuit(
        cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    _slack(cli, "https://hooks.slack.example/services/T/B/SECRETPATH", monkeypatch)
    cli.json("escalation", "plan")  # a read-only command never creates the database
    rows = cli.json("provider", "list")
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {"outbox", "team-slack"}
    assert by_name["team-slack"]["target"] == "https://hooks.slack.example/***"
    assert by_name["team-slack"]["circuit"] == "closed"
    assert "SECRETPATH" not in cli.outputs[-1]
