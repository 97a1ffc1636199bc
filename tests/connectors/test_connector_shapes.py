"""Each kind against a real loopback server: what arrives is checked field by field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.connectors.conftest import SMTP_PASSWORD, SMTP_USER, LoopbackHTTP, SMTPServer
from tests.connectors.helpers import Cli, config_text

SLACK_TOKEN = "T0CAVRA/B0CAVRA/slackTOKEN42"
PD_KEY = "R0UTINGKEY0123456789abcdef"


def test_slack_message_is_a_readable_summary(cli: Cli, http_server: LoopbackHTTP,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAVRA_SLACK_URL", http_server.url(f"/services/{SLACK_TOKEN}"))
    cli.configure(config_text({"team-slack": {"kind": "slack", "url_env": "CAVRA_SLACK_URL",
                                              "timeout_s": 2}}))
    plan = cli.seed_plan()
    [delivery] = cli.json("escalation", "deliver", plan["plan_id"])

    assert delivery["status"] == "delivered" and delivery["status_code"] == 200
    assert delivery["target"] == f"http://127.0.0.1:{http_server.port}/***"
    [request] = http_server.requests
    assert request.path == f"/services/{SLACK_TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == f'"{delivery["idempotency_key"]}"'
    body = request.json()
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith(f"CAVRA critical escalation {plan['plan_id']}")
    header, section, context = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": body["text"]}}
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    text = section["text"]["text"]
    assert f"Plan: {plan['plan_id']}" in text and "Alert level: critical" in text
    assert "payments-api/rollback breached" in text
    assert context["elements"][0]["text"] == (
        f"escalation · delivery {delivery['delivery_id']} · key {delivery['idempotency_key']}")


def test_webhook_body_headers_and_signature(cli: Cli, http_server: LoopbackHTTP,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib
    import hmac

    monkeypatch.setenv("CAVRA_HOOK_URL", http_server.url("/in?token=abc"))
    monkeypatch.setenv("CAVRA_HOOK_SECRET", "hmac-key")
    cli.configure(config_text({"ops-webhook": {"kind": "webhook", "url_env": "CAVRA_HOOK_URL",
                                               "secret_env": "CAVRA_HOOK_SECRET",
                                               "timeout_s": 2}}))
    plan = cli.seed_plan()
    [delivery] = cli.json("escalation", "deliver", plan["plan_id"])

    [request] = http_server.requests
    body = request.json()
    assert body["delivery_id"] == delivery["delivery_id"]
    assert body["kind"] == "escalation" and body["provider"] == "ops-webhook"
    assert body["idempotency_key"] == delivery["idempotency_key"] == (
        f"cavra:{plan['plan_id']}:ops-webhook:1")
    assert body["plan_id"] == plan["plan_id"] and body["run_id"] is None
    assert body["attempt"] == 1
    assert body["message"]["type"] == "cavra.escalation"
    assert body["message"]["alert_level"] == "critical"
    assert request.headers["Idempotency-Key"] == f'"{delivery["idempotency_key"]}"'
    expected = "sha256=" + hmac.new(b"hmac-key", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Cavra-Signature"] == expected


def test_pagerduty_trigger_follows_events_api_v2(cli: Cli, http_server: LoopbackHTTP,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    http_server.default_status = 202
    monkeypatch.setenv("CAVRA_PD_KEY", PD_KEY)
    cli.configure(config_text({"pager": {"kind": "pagerduty", "routing_key_env": "CAVRA_PD_KEY",
                                         "events_url": http_server.url("/v2/enqueue"),
                                         "timeout_s": 2}}))
    plan = cli.seed_plan()
    [delivery] = cli.json("escalation", "deliver", plan["plan_id"])

    assert delivery["status"] == "delivered" and delivery["status_code"] == 202
    assert delivery["target"] == f"http://127.0.0.1:{http_server.port}/***"
    [request] = http_server.requests
    assert request.path == "/v2/enqueue"
    event = request.json()
    assert set(event) == {"routing_key", "event_action", "dedup_key", "client", "payload"}
    assert event["routing_key"] == PD_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == delivery["idempotency_key"]
    payload = event["payload"]
    assert payload["summary"].startswith(f"CAVRA critical escalation {plan['plan_id']}")
    assert payload["source"] == "cavra" and payload["severity"] == "critical"
    assert payload["component"] == "pager" and payload["group"] == plan["plan_id"]
    assert payload["class"] == "cavra.escalation"
    details = payload["custom_details"]
    assert details["delivery_id"] == delivery["delivery_id"]
    assert details["plan_id"] == plan["plan_id"] and details["attempt"] == 1


def _email_config(server: SMTPServer, **overrides: object) -> str:
    keys: dict[str, object] = {"kind": "email", "host": "127.0.0.1", "port": server.port,
                               "starttls": False, "sender": "cavra@example.test",
                               "to": ["oncall@example.test", "lead@example.test"],
                               "timeout_s": 2}
    keys.update(overrides)
    return config_text({"mail": keys})


def test_email_with_starttls_and_login_has_both_parts(
        cli: Cli, smtp_tls_server: SMTPServer, tls_files: tuple[Path, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))  # trust the test certificate
    monkeypatch.setenv("CAVRA_SMTP_PASSWORD", SMTP_PASSWORD)
    cli.configure(_email_config(smtp_tls_server, starttls=True, username=SMTP_USER,
                                password_env="CAVRA_SMTP_PASSWORD"))
    plan = cli.seed_plan()
    [delivery] = cli.json("escalation", "deliver", plan["plan_id"])

    assert delivery["status"] == "delivered", delivery["error"]
    assert delivery["target"] == f"smtp://127.0.0.1:{smtp_tls_server.port}/*** (2 rcpt)"
    assert smtp_tls_server.behaviour.logins == [SMTP_USER]
    [(sender, recipients, mail)] = smtp_tls_server.behaviour.messages
    assert sender == "cavra@example.test"
    assert recipients == ["oncall@example.test", "lead@example.test"]
    assert mail["From"] == "cavra@example.test"
    assert mail["To"] == "oncall@example.test, lead@example.test"
    assert mail["Subject"].startswith(f"CAVRA critical escalation {plan['plan_id']}")
    assert mail["X-Cavra-Kind"] == "escalation"
    assert mail["X-Cavra-Delivery-Id"] == delivery["delivery_id"]
    assert mail["X-Cavra-Idempotency-Key"] == delivery["idempotency_key"]
    assert mail["Message-ID"] == f"<cavra.{plan['plan_id']}.mail.1@cavra.invalid>"
    assert mail.get_content_type() == "multipart/alternative"
    plain = mail.get_body(("plain",))
    rich = mail.get_body(("html",))
    assert plain is not None and rich is not None
    assert f"Plan: {plan['plan_id']}" in plain.get_content()
    assert "payments-api/rollback breached" in plain.get_content()
    html = rich.get_content()
    assert html.startswith("<html>") and f"<h2>{mail['Subject']}</h2>" in html
    assert "<li>critical: payments-api/rollback breached" in html


def test_email_without_tls_or_login(cli: Cli, smtp_server: SMTPServer) -> None:
    cli.configure(_email_config(smtp_server))
    plan = cli.seed_plan()
    [delivery] = cli.json("escalation", "deliver", plan["plan_id"])
    assert delivery["status"] == "delivered" and delivery["status_code"] == 250
    assert smtp_server.behaviour.logins == []
    assert len(smtp_server.behaviour.messages) == 1
