"""Every provider failure, reproduced for real on loopback, ends as an honest stored record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.connectors.conftest import (
    SMTP_PASSWORD,
    SMTP_USER,
    LoopbackHTTP,
    SMTPServer,
    closed_port,
)
from tests.connectors.helpers import Cli, config_text

TIMEOUT_S = 0.5
SLOW_S = 1.5  # the server answers after the provider's timeout has passed

HTTP_FAULTS: dict[str, dict[str, Any]] = {
    # fault → what the stored delivery must say
    "refused": {"status": "failed", "status_code": None, "error": "connection_refused"},
    "dns": {"status": "failed", "status_code": None, "error": "dns_failure"},
    "tls": {"status": "failed", "status_code": None, "error": "tls_error"},
    "slow": {"status": "unknown", "status_code": None, "error": "timeout_after_send: ReadTimeout"},
    "500": {"status": "failed", "status_code": 500, "error": "server_error: HTTP 500"},
    "404": {"status": "failed", "status_code": 404, "error": "client_error: HTTP 404"},
    "429": {"status": "failed", "status_code": 429, "error": "rate_limited: HTTP 429",
            "retry_after_s": 120},
}


def _http_url(fault: str, server: LoopbackHTTP, path: str) -> str:
    if fault == "refused":
        return f"http://127.0.0.1:{closed_port()}{path}"
    if fault == "dns":
        return f"http://cavra-test.invalid{path}"  # reserved TLD: fails resolution locally
    if fault == "tls":
        return server.url(path, scheme="https")  # TLS handshake against a plain-HTTP server
    if fault == "slow":
        server.answer(200, delay_s=SLOW_S)
    elif fault == "429":
        server.answer(429, {"Retry-After": "120"})
    elif fault in ("500", "404"):
        server.answer(int(fault))
    return server.url(path)


def _provider(kind: str, url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    if kind == "pagerduty":
        monkeypatch.setenv("CAVRA_PD_KEY", "routing-key")
        return {"kind": "pagerduty", "routing_key_env": "CAVRA_PD_KEY", "events_url": url,
                "timeout_s": TIMEOUT_S}
    monkeypatch.setenv("CAVRA_URL", url)
    return {"kind": kind, "url_env": "CAVRA_URL", "timeout_s": TIMEOUT_S}


@pytest.mark.parametrize("fault", list(HTTP_FAULTS))
@pytest.mark.parametrize("kind", ["webhook", "slack", "pagerduty"])
def test_http_fault_is_recorded(kind: str, fault: str, cli: Cli, http_server: LoopbackHTTP,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    url = _http_url(fault, http_server, "/hook/TOKEN")
    cli.configure(config_text({"p": _provider(kind, url, monkeypatch)}))
    plan = cli.seed_plan()
    code, out, err = cli.run("escalation", "deliver", plan["plan_id"])
    assert code == 0, err  # a provider failure is an outcome, not a crash

    [row] = cli.rows("deliveries")
    expected = HTTP_FAULTS[fault]
    assert row["status"] == expected["status"]
    assert row["status_code"] == expected["status_code"]
    assert row["error"] == expected["error"]
    assert row["retry_after_s"] == expected.get("retry_after_s")
    assert row["finished_at"] is not None and row["in_flight_until"] is None
    assert row["kind"] == "escalation" and row["provider"] == "p"
    assert expected["status"] in out


def test_missing_secret_is_a_failed_record_naming_the_variable(
        cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAVRA_UNSET_URL", raising=False)
    cli.configure(config_text({"p": {"kind": "slack", "url_env": "CAVRA_UNSET_URL"}}))
    plan = cli.seed_plan()
    [delivery] = cli.json("escalation", "deliver", plan["plan_id"])
    assert delivery["status"] == "failed"
    assert delivery["error"] == ("missing_secret: environment variable CAVRA_UNSET_URL "
                                 "is not set")
    assert delivery["target"] == "env:CAVRA_UNSET_URL (unset)"


def test_malformed_url_is_a_failed_record(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAVRA_URL", "not a url at all")
    cli.configure(config_text({"p": {"kind": "webhook", "url_env": "CAVRA_URL"}}))
    plan = cli.seed_plan()
    [delivery] = cli.json("escalation", "deliver", plan["plan_id"])
    assert (delivery["status"], delivery["error"]) == ("failed", "invalid_url")


# --- email -------------------------------------------------------------------------------

def _email(port: int, host: str = "127.0.0.1", **overrides: Any) -> str:
    keys: dict[str, Any] = {"kind": "email", "host": host, "port": port, "starttls": False,
                            "sender": "cavra@example.test", "to": ["oncall@example.test"],
                            "timeout_s": TIMEOUT_S}
    keys.update(overrides)
    return config_text({"mail": keys})


def _deliver_email(cli: Cli, config: str) -> dict[str, Any]:
    cli.configure(config)
    plan = cli.seed_plan()
    code, _, err = cli.run("escalation", "deliver", plan["plan_id"])
    assert code == 0, err
    [row] = cli.rows("deliveries")
    return row


def test_email_refused_connection(cli: Cli) -> None:
    row = _deliver_email(cli, _email(closed_port()))
    assert (row["status"], row["status_code"], row["error"]) == (
        "failed", None, "connection_refused")


def test_email_dns_failure(cli: Cli) -> None:
    row = _deliver_email(cli, _email(25, host="smtp.cavra-test.invalid"))
    assert (row["status"], row["error"]) == ("failed", "dns_failure")


def test_email_untrusted_certificate_is_a_tls_error(cli: Cli,
                                                    smtp_tls_server: SMTPServer) -> None:
    # SSL_CERT_FILE is not pointed at the test certificate: verification must fail.
    row = _deliver_email(cli, _email(smtp_tls_server.port, starttls=True))
    assert (row["status"], row["error"]) == ("failed", "tls_error")
    assert smtp_tls_server.behaviour.messages == []


def test_email_starttls_required_but_not_offered(cli: Cli, smtp_server: SMTPServer) -> None:
    row = _deliver_email(cli, _email(smtp_server.port, starttls=True))
    assert (row["status"], row["error"]) == ("failed", "starttls_unsupported")


def test_email_recipient_rejected(cli: Cli, smtp_server: SMTPServer) -> None:
    smtp_server.behaviour.reject_rcpt = True
    row = _deliver_email(cli, _email(smtp_server.port))
    assert (row["status"], row["status_code"], row["error"]) == (
        "failed", 550, "recipients_refused: SMTP 550")


def test_email_message_rejected(cli: Cli, smtp_server: SMTPServer) -> None:
    smtp_server.behaviour.reject_data = True
    row = _deliver_email(cli, _email(smtp_server.port))
    assert (row["status"], row["status_code"], row["error"]) == (
        "failed", 554, "message_rejected: SMTP 554")


def test_email_wrong_password(cli: Cli, smtp_server: SMTPServer,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAVRA_SMTP_PASSWORD", "wrong-" + SMTP_PASSWORD)
    row = _deliver_email(cli, _email(smtp_server.port, username=SMTP_USER,
                                     password_env="CAVRA_SMTP_PASSWORD"))
    assert (row["status"], row["status_code"], row["error"]) == (
        "failed", 535, "auth_failed: SMTP 535")


def test_email_server_silent_after_data_is_unknown(cli: Cli, smtp_server: SMTPServer) -> None:
    smtp_server.behaviour.data_delay_s = SLOW_S
    row = _deliver_email(cli, _email(smtp_server.port))
    assert row["status"] == "unknown"  # the server may have queued it: never resent blindly
    assert row["error"] == "timeout_after_send"


def test_email_refused_is_counted_as_a_failed_delivery(cli: Cli, tmp_path: Path) -> None:
    _deliver_email(cli, _email(closed_port()))
    metrics = cli.json("metrics")
    assert metrics["failed_deliveries"]["escalation"] == 1
