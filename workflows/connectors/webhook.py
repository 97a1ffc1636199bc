"""Generic webhook: JSON POST, ``Idempotency-Key``, optional HMAC-SHA256 signature."""

from __future__ import annotations

import hashlib
import hmac
import json

from workflows.connectors.base import Connector, MissingSecret, OutboundMessage, Outcome, redact_url
from workflows.connectors.http import post_json
from workflows.connectors.secrets import from_env

SIGNATURE_HEADER = "X-Cavra-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookConnector(Connector):
    kind = "webhook"

    def target(self) -> str:
        try:
            return redact_url(from_env(self.settings.url_env))
        except MissingSecret:
            return f"env:{self.settings.url_env} (unset)"

    def body(self, message: OutboundMessage) -> bytes:
        return json.dumps({
            "delivery_id": message.delivery_id, "kind": message.kind,
            "provider": message.provider, "idempotency_key": message.idempotency_key,
            "plan_id": message.plan_id, "run_id": message.run_id, "attempt": message.attempt,
            "message": message.message,
        }, sort_keys=True).encode()

    def send(self, message: OutboundMessage) -> Outcome:
        try:
            url = from_env(self.settings.url_env)
            secret = from_env(self.settings.secret_env) if self.settings.secret_env else None
        except MissingSecret as exc:
            return Outcome(status="failed", error=f"missing_secret: {exc}")
        body = self.body(message)
        headers = {"Idempotency-Key": message.idempotency_key}
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, body)
        return post_json(url, body, headers, self.timeout_s)
