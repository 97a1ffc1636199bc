"""``signing = "standard-webhooks"`` and the ``Idempotency-Key`` header, against a real loopback
server. What the server received is checked by receivers built on the reference libraries:
``standardwebhooks`` (the spec's own Python package) and ``http_sfv`` (structured fields)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import standardwebhooks.webhooks as sw_module
from http_sfv.item import Item
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from cavra_tui.bootstrap import build_runtime
from tests.conftest import SteppingClock
from tests.connectors.conftest import LoopbackHTTP, Request
from tests.connectors.helpers import Cli, config_text
from workflows.connectors.http import sf_string
from workflows.connectors.registry import ConnectorRegistry
from workflows.delivery import deliver_escalation

SECRET = "whsec_" + base64.b64encode(b"cavra-standard-webhooks-test-key").decode()
URL_ENV, SECRET_ENV = "CAVRA_SW_URL", "CAVRA_SW_SECRET"
RETRY_NOW = "[retry]\nbase_delay_minutes = 0\nallow_immediate = true\n"


def _headers(request: Request) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


def _standard(server: LoopbackHTTP, monkeypatch: pytest.MonkeyPatch, secret: str | None = SECRET,
              **keys: Any) -> str:
    monkeypatch.setenv(URL_ENV, server.url("/in?token=abc"))
    if secret is not None:
        monkeypatch.setenv(SECRET_ENV, secret)
    return config_text({"sw-hook": {"kind": "webhook", "url_env": URL_ENV,
                                    "secret_env": SECRET_ENV, "signing": "standard-webhooks",
                                    "timeout_s": 2, **keys}}, extra=RETRY_NOW)


def _sf_string(value: str) -> str:
    """What a structured-field receiver reads from the header: a String, not a Token."""
    item = Item()
    item.parse(value.encode())
    assert type(item.value) is str, f"{value!r} is not a structured-field string"
    return item.value


def test_a_standard_webhooks_receiver_verifies_what_arrived(
        cli: Cli, http_server: LoopbackHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    cli.configure(_standard(http_server, monkeypatch))
    plan = cli.seed_plan()
    before = int(datetime.now(UTC).timestamp())
    [delivery] = cli.json("escalation", "deliver", plan["plan_id"])
    after = int(datetime.now(UTC).timestamp())

    assert delivery["status"] == "delivered"
    [request] = http_server.requests
    headers = _headers(request)
    # The receiver: verification returns the parsed body, or raises.
    assert Webhook(SECRET).verify(request.body, request.headers) == request.json()
    assert request.json()["delivery_id"] == delivery["delivery_id"]
    assert headers["webhook-id"] == delivery["idempotency_key"]
    assert before <= int(headers["webhook-timestamp"]) <= after
    version, _, signature = headers["webhook-signature"].partition(",")
    assert version == "v1" and len(base64.b64decode(signature, validate=True)) == 32
    assert "x-cavra-signature" not in headers
    assert _sf_string(headers["idempotency-key"]) == delivery["idempotency_key"]
    # The same receiver refuses what was not signed with this key, or was changed on the way.
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(SECRET).verify(request.body.replace(b"critical", b"warning"), request.headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook("whsec_" + base64.b64encode(b"some-other-key-0123456789").decode()).verify(
            request.body, request.headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(SECRET).verify(request.body, {**request.headers, "webhook-id": "cavra:other"})
    # The secret itself travels nowhere: not in a header, not in the body, not in the records.
    key = SECRET.removeprefix("whsec_")
    assert key not in str(request.headers) and key.encode() not in request.body
    assert key.encode() not in cli.every_byte()


def test_the_same_request_replayed_after_the_tolerance_is_rejected(
        cli: Cli, http_server: LoopbackHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    cli.configure(_standard(http_server, monkeypatch))
    plan = cli.seed_plan()
    cli.json("escalation", "deliver", plan["plan_id"])
    [request] = http_server.requests
    Webhook(SECRET).verify(request.body, request.headers)

    def receiver_clock(shift: timedelta) -> type[datetime]:
        class Later(datetime):  # the receiver's now, moved on; the request stays as it was
            @classmethod
            def now(cls, tz: Any = None) -> Any:
                return datetime.now(tz) + shift

        return Later

    monkeypatch.setattr(sw_module, "datetime", receiver_clock(timedelta(minutes=4)))
    Webhook(SECRET).verify(request.body, request.headers)  # within the five minutes
    monkeypatch.setattr(sw_module, "datetime", receiver_clock(timedelta(minutes=6)))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(request.body, request.headers)


def test_the_timestamp_is_the_app_clock_of_the_send(
        cli: Cli, http_server: LoopbackHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    """A send whose app clock is seven minutes behind is stamped with that clock, so the
    receiver (on real time) refuses it as a replay."""
    cli.configure(_standard(http_server, monkeypatch))
    plan = cli.seed_plan()
    clock = SteppingClock(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=7))
    runtime = build_runtime(db_url=f"sqlite:///{cli.db_path}", config_path=str(cli.config_path),
                            clock=clock)
    try:
        registry = ConnectorRegistry(runtime.config, runtime.outbox_dir, clock=runtime.ctx.clock)
        [delivery] = deliver_escalation(runtime.ctx, registry, plan["plan_id"])
    finally:
        runtime.close()

    assert delivery.status == "delivered"
    [request] = http_server.requests
    assert _headers(request)["webhook-timestamp"] == str(int(clock.now.timestamp()))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(request.body, request.headers)


def test_the_default_provider_still_signs_with_x_cavra_signature(
        cli: Cli, http_server: LoopbackHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_ENV, http_server.url("/in"))
    monkeypatch.setenv(SECRET_ENV, "hmac-key")
    cli.configure(config_text({"hook": {"kind": "webhook", "url_env": URL_ENV,
                                        "secret_env": SECRET_ENV, "timeout_s": 2}}))
    plan = cli.seed_plan()
    [delivery] = cli.json("escalation", "deliver", plan["plan_id"])

    [request] = http_server.requests
    headers = _headers(request)
    expected = "sha256=" + hmac.new(b"hmac-key", request.body, hashlib.sha256).hexdigest()
    assert headers["x-cavra-signature"] == expected
    assert [name for name in headers if name.startswith("webhook-")] == []
    assert headers["idempotency-key"] == f'"{delivery["idempotency_key"]}"'
    assert _sf_string(headers["idempotency-key"]) == delivery["idempotency_key"]


HTTP_KINDS = {
    "webhook": {"kind": "webhook", "url_env": URL_ENV},
    "slack": {"kind": "slack", "url_env": URL_ENV},
    "pagerduty": {"kind": "pagerduty", "routing_key_env": "CAVRA_SW_PD_KEY"},
}


@pytest.mark.parametrize("kind", list(HTTP_KINDS))
@pytest.mark.parametrize("style", [None, "quoted", "bare"])
def test_idempotency_key_is_quoted_unless_bare_is_asked_for(
        kind: str, style: str | None, cli: Cli, http_server: LoopbackHTTP,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_ENV, http_server.url("/in"))
    monkeypatch.setenv("CAVRA_SW_PD_KEY", "R0UTINGKEY0123456789abcdef")
    settings: dict[str, Any] = {**HTTP_KINDS[kind], "timeout_s": 2}
    if kind == "pagerduty":
        settings["events_url"] = http_server.url("/v2/enqueue")
    if style is not None:
        settings["idempotency_key_header"] = style
    cli.configure(config_text({"p": settings}))
    plan = cli.seed_plan()
    [delivery] = cli.json("escalation", "deliver", plan["plan_id"])

    [request] = http_server.requests
    sent = _headers(request)["idempotency-key"]
    key = delivery["idempotency_key"]
    if style == "bare":
        assert sent == key
    else:
        assert sent == f'"{key}"' and _sf_string(sent) == key


@pytest.mark.parametrize("value", ["cavra:esc-1:hook:1", 'a "quoted" key', "back\\slash",
                                   "", " spaces at the ends "])
def test_sf_string_is_what_a_structured_field_parser_reads_back(value: str) -> None:
    assert sf_string(value) == str(Item(value))
    assert _sf_string(sf_string(value)) == value


@pytest.mark.parametrize("value", ["tab\there", "caf\u00e9", "line\nbreak"])
def test_sf_string_refuses_what_a_string_cannot_hold(value: str) -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        sf_string(value)


@pytest.mark.parametrize(("keys", "message"), [
    ({"signing": "standard-webhooks"},
     'providers.hook: signing = "standard-webhooks" needs secret_env'),
    ({"signing": "svix", "secret_env": SECRET_ENV}, "providers.hook.signing: Input should be"),
    ({"idempotency_key_header": "unquoted"},
     "providers.hook.idempotency_key_header: Input should be"),
])
def test_bad_signing_keys_are_one_line_and_nothing_is_written(
        keys: dict[str, str], message: str, cli: Cli) -> None:
    cli.configure(config_text({"hook": {"kind": "webhook", "url_env": URL_ENV, **keys}}))
    code, out, err = cli.run("escalation", "plan")
    assert code == 2 and out == ""
    assert f"{cli.config_path}: {message}" in err and err.count("\n") == 1
    assert "Traceback" not in err
    assert not cli.db_path.exists()


def _everything_stored(cli: Cli) -> dict[str, list[dict[str, Any]]]:
    tables = [row["name"] for row in cli.rows("sqlite_master", "type = 'table'")]
    return {table: cli.rows(table) for table in tables}


@pytest.mark.parametrize("secret", [
    "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # base64, but without the whsec_ prefix
    "whsec_",  # nothing after it
    "whsec_not*base64*SECRETvalue",
    "whsec_" + base64.urlsafe_b64encode(b"\xfb\xff" * 12).decode(),  # url-safe alphabet
    "whsec_Q0FWUkExZ",  # no length of base64 is 4n + 1
])
@pytest.mark.parametrize("command", [("escalation", "deliver", "{plan}"),
                                     ("retry", "run", "--live"), ("provider", "test", "sw-hook")])
def test_a_secret_not_in_whsec_form_is_one_config_line_and_nothing_is_written(
        secret: str, command: tuple[str, ...], cli: Cli, http_server: LoopbackHTTP,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cli.configure(_standard(http_server, monkeypatch, secret=secret))
    plan = cli.seed_plan()
    if command[0] == "retry":  # a failed pair the live worker would retry
        monkeypatch.setenv(SECRET_ENV, SECRET)
        http_server.answer(500)
        assert cli.json("escalation", "deliver", plan["plan_id"])[0]["status"] == "failed"
        monkeypatch.setenv(SECRET_ENV, secret)
    stored = _everything_stored(cli)
    sent = len(http_server.requests)

    code, out, err = cli.run(*(part.format(plan=plan["plan_id"]) for part in command))

    assert code == 2 and out == ""
    assert err == (f"cavra: error: config: providers.sw-hook: {SECRET_ENV} does not hold a "
                   "Standard Webhooks secret (whsec_ followed by base64)\n")
    assert len(http_server.requests) == sent
    assert _everything_stored(cli) == stored
    if secret != "whsec_":  # neither the secret nor its key part is echoed or stored
        assert secret.removeprefix("whsec_").encode() not in cli.every_byte()


def test_an_unset_secret_is_a_recorded_missing_secret_like_every_kind(
        cli: Cli, http_server: LoopbackHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    cli.configure(_standard(http_server, monkeypatch, secret=None))
    plan = cli.seed_plan()
    [delivery] = cli.json("escalation", "deliver", plan["plan_id"])
    assert delivery["status"] == "failed"
    assert delivery["error"] == f"missing_secret: environment variable {SECRET_ENV} is not set"
    assert http_server.requests == []


def test_an_unpadded_whsec_secret_is_accepted(cli: Cli, http_server: LoopbackHTTP,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "whsec_" + base64.b64encode(b"twenty-five-bytes-of-key!").decode().rstrip("=")
    assert not secret.endswith("=")
    cli.configure(_standard(http_server, monkeypatch, secret=secret))
    plan = cli.seed_plan()
    assert cli.json("escalation", "deliver", plan["plan_id"])[0]["status"] == "delivered"
    [request] = http_server.requests
    Webhook(secret).verify(request.body, request.headers)
