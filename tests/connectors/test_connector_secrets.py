"""No secret of any kind lands in the database, outbox, log, output or export (SPEC §7),
whatever the provider answered, including the texts of httpx and smtplib errors."""

from __future__ import annotations

import base64
import json
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

URL_TOKEN = "T0SECRET/B0SECRET/urlTOKENsecret123"
QUERY_TOKEN = "QUERYtokenSECRET456"
HMAC_SECRET = "HMACsecret789"
ROUTING_KEY = "ROUTINGkeySECRET0abc"
SMTP_SECRET = SMTP_PASSWORD  # what the loopback SMTP server accepts
SECRETS = (URL_TOKEN, "urlTOKENsecret123", QUERY_TOKEN, HMAC_SECRET, ROUTING_KEY, SMTP_SECRET,
           base64.b64encode(SMTP_SECRET.encode()).decode())


def _url(fault: str, server: LoopbackHTTP) -> str:
    path = f"/services/{URL_TOKEN}?token={QUERY_TOKEN}"
    if fault == "refused":
        return f"http://127.0.0.1:{closed_port()}{path}"
    if fault == "dns":
        return f"http://hooks.invalid{path}"
    if fault == "tls":
        return server.url(path, scheme="https")
    if fault == "malformed":
        return f"http://[{URL_TOKEN}{path}"
    if fault == "500":
        server.default_status = 500
    if fault == "slow":
        server.answer(200, delay_s=1.2)
    return server.url(path)


def _run_everything(cli: Cli, provider: str) -> dict[str, Any]:
    plan = cli.seed_plan()
    [delivery] = cli.json("escalation", "deliver", plan["plan_id"])
    cli.run("provider", "test", provider, "--json")
    cli.json("provider", "list")
    cli.json("metrics")
    cli.json("evidence", "show", delivery["delivery_id"])
    cli.json("escalation", "ack", plan["plan_id"], "--provider", provider, "--state",
             "acknowledged")
    cli.json("retry", "run", "--live")
    code, _, err = cli.run("audit", "export")
    assert code == 0, err
    return delivery


def _assert_no_secret(cli: Cli) -> None:
    everything = cli.every_byte()
    assert (cli.tmp_path / "data" / "cavra.log").exists()
    for secret in SECRETS:
        assert secret.encode() not in everything, secret


# Slack carries its secret in the URL path and query: every fault. The others reuse the same
# HTTP path, so each gets the faults whose error texts could quote its own secret.
CASES = [("slack", f) for f in ("ok", "500", "refused", "dns", "tls", "slow", "malformed")] + [
    ("webhook", f) for f in ("ok", "500", "refused", "malformed")] + [
    ("pagerduty", f) for f in ("ok", "500", "tls", "slow")]


@pytest.mark.parametrize(("kind", "fault"), CASES)
def test_http_kinds_never_leak(kind: str, fault: str, cli: Cli, http_server: LoopbackHTTP,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    url = _url(fault, http_server)
    settings: dict[str, Any] = {"kind": kind, "timeout_s": 0.5}
    if kind == "pagerduty":
        # The events URL is config, not a secret; the routing key is.
        monkeypatch.setenv("CAVRA_PD_KEY", ROUTING_KEY)
        settings.update(routing_key_env="CAVRA_PD_KEY", events_url=url.split("?")[0].replace(
            URL_TOKEN, "v2/enqueue"))
    else:
        monkeypatch.setenv("CAVRA_URL", url)
        settings["url_env"] = "CAVRA_URL"
        if kind == "webhook":
            monkeypatch.setenv("CAVRA_SECRET", HMAC_SECRET)
            settings["secret_env"] = "CAVRA_SECRET"
    cli.configure(config_text({"p": settings}, extra="[retry]\nallow_immediate = true\n"
                              "base_delay_minutes = 0\n"))
    delivery = _run_everything(cli, "p")
    assert delivery["status"] == ("delivered" if fault == "ok" else
                                  "unknown" if fault == "slow" else "failed")
    if kind == "pagerduty" and fault in ("ok", "500", "slow"):
        assert any(json.loads(r.body).get("routing_key") == ROUTING_KEY
                   for r in http_server.requests)  # the secret did travel, in the body only
    _assert_no_secret(cli)


@pytest.mark.parametrize("fault", ["ok", "wrong_password", "refused", "tls"])
def test_email_password_never_leaks(fault: str, cli: Cli, smtp_server: SMTPServer,
                                    smtp_tls_server: SMTPServer,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAVRA_SMTP_PASSWORD", SMTP_SECRET)
    server = smtp_tls_server if fault == "tls" else smtp_server
    port = closed_port() if fault == "refused" else server.port
    cli.configure(config_text({"mail": {
        "kind": "email", "host": "127.0.0.1", "port": port, "starttls": fault == "tls",
        "username": SMTP_USER if fault != "wrong_password" else "someone-else",
        "password_env": "CAVRA_SMTP_PASSWORD", "sender": "cavra@example.test",
        "to": ["oncall@example.test"], "timeout_s": 1}},
        extra="[retry]\nallow_immediate = true\nbase_delay_minutes = 0\n"))
    delivery = _run_everything(cli, "mail")
    expected = {"ok": ("delivered", None), "wrong_password": ("failed", "auth_failed: SMTP 535"),
                "refused": ("failed", "connection_refused"), "tls": ("failed", "tls_error")}
    assert (delivery["status"], delivery["error"]) == expected[fault]
    _assert_no_secret(cli)
