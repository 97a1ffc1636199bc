"""PagerDuty Events API v2: ``trigger`` for escalations (and drills), ``resolve`` when the
pair is resolved. ``dedup_key`` is the delivery's idempotency key, so a resend after a crash
or an ``unknown`` outcome lands on the same incident instead of paging twice.

The routing key is the secret: it travels only in the request body, never in the URL, the
target or an error.
"""

from __future__ import annotations

import json
from typing import Any

from workflows.connectors.base import Connector, MissingSecret, OutboundMessage, Outcome, redact_url
from workflows.connectors.http import idempotency_header, post_json
from workflows.connectors.render import render
from workflows.connectors.secrets import from_env

SUMMARY_LIMIT = 1024  # Events API v2 limit for payload.summary
SOURCE = "cavra"


def pagerduty_event(message: OutboundMessage, routing_key: str) -> dict[str, Any]:
    if message.kind == "resolve":
        return {"routing_key": routing_key, "event_action": "resolve",
                "dedup_key": message.idempotency_key}
    # A self-alert's raise opens one incident per condition; its clear resolves that one.
    incident = (str(message.message.get("incident_key")) if message.kind == "self_alert"
                else None)
    if incident and message.message.get("state") == "cleared":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": incident}
    rendered = render(message.kind, message.message)
    summary = rendered.title
    details: dict[str, Any] = {"kind": message.kind, "delivery_id": message.delivery_id,
                               "attempt": message.attempt, "details": rendered.lines}
    for name, value in (("plan_id", message.plan_id), ("run_id", message.schedule_run_id)):
        if value:
            details[name] = value
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": incident or message.idempotency_key,
        "client": "CAVRA recovery console",
        "payload": {
            "summary": summary[:SUMMARY_LIMIT],
            "source": SOURCE,
            "severity": rendered.severity,
            "component": message.provider,
            "group": message.plan_id or message.schedule_run_id or "drill",
            "class": f"cavra.{message.kind}",
            "custom_details": details,
        },
    }


class PagerDutyConnector(Connector):
    kind = "pagerduty"

    def target(self) -> str:
        return redact_url(self.settings.events_url)

    def send(self, message: OutboundMessage) -> Outcome:
        try:
            routing_key = from_env(self.settings.routing_key_env)
        except MissingSecret as exc:
            return Outcome(status="failed", error=f"missing_secret: {exc}")
        body = json.dumps(pagerduty_event(message, routing_key), sort_keys=True).encode()
        # The Events API dedupes on dedup_key and ignores this header; it is sent (in the same
        # form as the other HTTP kinds) so a proxy or a recorded request can dedupe too.
        return post_json(self.settings.events_url, body, idempotency_header(
            message.idempotency_key, self.settings.idempotency_key_header), self.timeout_s)
