"""Generic webhook: JSON POST, ``Idempotency-Key``, an optional signature.

``signing = "cavra"`` (the default): ``X-Cavra-Signature: sha256=<hex HMAC-SHA256 of the
body>`` when ``secret_env`` is set. ``signing = "standard-webhooks"``: the headers of the
Standard Webhooks spec (``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,…``),
the key being the base64 after the ``whsec_`` prefix of the secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from store.clock import Clock, as_utc, system_clock
from store.config import CavraConfig
from store.errors import UserError
from workflows.connectors.base import Connector, MissingSecret, OutboundMessage, Outcome, redact_url
from workflows.connectors.http import idempotency_header, post_json
from workflows.connectors.secrets import from_env

SIGNATURE_HEADER = "X-Cavra-Signature"
STANDARD_WEBHOOKS = "standard-webhooks"
WHSEC_PREFIX = "whsec_"


class InvalidSecret(ValueError):
    """A Standard Webhooks secret that is not ``whsec_`` followed by base64."""


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (padding optional). The error never
    quotes the secret."""
    if not secret.startswith(WHSEC_PREFIX):
        raise InvalidSecret("the secret does not start with whsec_")
    encoded = secret[len(WHSEC_PREFIX):]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("the secret after whsec_ is not base64") from None
    if not key:
        raise InvalidSecret("the secret after whsec_ is empty")
    return key


def standard_webhooks_headers(key: bytes, msg_id: str, timestamp: int,
                              body: bytes) -> dict[str, str]:
    """``webhook-signature`` signs ``{id}.{timestamp}.{body}`` with HMAC-SHA256, base64."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": f"v1,{digest}"}


class WebhookConnector(Connector):
    kind = "webhook"

    def __init__(self, name: str, settings: Any, config: CavraConfig, *,
                 clock: Clock = system_clock) -> None:
        super().__init__(name, settings, config, clock=clock)
        if settings.signing == STANDARD_WEBHOOKS:
            self.check_secret()

    def check_secret(self) -> None:
        """A Standard Webhooks secret that is set but malformed is a config error, raised as
        the connector is built (the registry builds these first): before anything is
        recorded or sent. An unset variable stays a ``missing_secret`` outcome per send,
        as for every kind."""
        try:
            secret = from_env(self.settings.secret_env)
        except MissingSecret:
            return
        try:
            standard_webhooks_key(secret)
        except InvalidSecret:
            raise UserError(
                f"config: providers.{self.name}: {self.settings.secret_env} does not hold a "
                "Standard Webhooks secret (whsec_ followed by base64)") from None

    def target(self) -> str:
        try:
            return redact_url(from_env(self.settings.url_env))
        except MissingSecret:
            return f"env:{self.settings.url_env} (unset)"

    def body(self, message: OutboundMessage) -> bytes:
        return json.dumps({
            "delivery_id": message.delivery_id, "kind": message.kind,
            "provider": message.provider, "idempotency_key": message.idempotency_key,
            "plan_id": message.plan_id, "run_id": message.schedule_run_id,
            "attempt": message.attempt,
            "message": message.message,
        }, sort_keys=True).encode()

    def send(self, message: OutboundMessage) -> Outcome:
        try:
            url = from_env(self.settings.url_env)
            secret = from_env(self.settings.secret_env) if self.settings.secret_env else None
        except MissingSecret as exc:
            return Outcome(status="failed", error=f"missing_secret: {exc}")
        body = self.body(message)
        headers = idempotency_header(message.idempotency_key,
                                     self.settings.idempotency_key_header)
        if self.settings.signing == STANDARD_WEBHOOKS:
            try:
                key = standard_webhooks_key(secret or "")
            except InvalidSecret:  # changed in the environment since the check
                return Outcome(status="failed", error="invalid_secret: not a whsec_ secret")
            # The idempotency key is the message id: a resend under the same key (after a
            # crash or an unknown outcome) carries the same webhook-id.
            timestamp = int(as_utc(self.clock()).timestamp())
            headers.update(standard_webhooks_headers(key, message.idempotency_key, timestamp,
                                                     body))
        elif secret:
            headers[SIGNATURE_HEADER] = sign(secret, body)
        return post_json(url, body, headers, self.timeout_s)
