"""Slack incoming webhook: a readable summary (``text`` fallback plus Block Kit blocks).

The webhook URL is the secret (its path is the token): it comes from ``url_env`` and is
stored only as ``https://hooks.slack.com/***``.
"""

from __future__ import annotations

import json
from typing import Any

from workflows.connectors.base import Connector, MissingSecret, OutboundMessage, Outcome, redact_url
from workflows.connectors.http import post_json
from workflows.connectors.render import render
from workflows.connectors.secrets import from_env

HEADER_LIMIT = 150  # Slack's limit for a header block
SECTION_LIMIT = 3000


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mrkdwn(text: str) -> str:
    """Slack's own escaping for mrkdwn text: data can never become a mention (``<!channel>``,
    ``<@U123>``) or a link (``<https://…|click>``), which Slack only parses between < and >."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(message: OutboundMessage) -> dict[str, Any]:
    rendered = render(message.kind, message.message)
    details = "\n".join(rendered.lines)
    return {
        # The fallback text is parsed as mrkdwn too (notifications, search).
        "text": _clip(mrkdwn(rendered.title), SECTION_LIMIT),
        "blocks": [
            # plain_text is shown as written: no mentions or links are parsed there.
            {"type": "header", "text": {"type": "plain_text",
                                        "text": _clip(rendered.title, HEADER_LIMIT)}},
            {"type": "section", "text": {"type": "mrkdwn",
                                         "text": _clip(mrkdwn(details), SECTION_LIMIT)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn(
                f"{message.kind} · delivery {message.delivery_id} · "
                f"key {message.idempotency_key}")}]},
        ],
    }


class SlackConnector(Connector):
    kind = "slack"

    def target(self) -> str:
        try:
            return redact_url(from_env(self.settings.url_env))
        except MissingSecret:
            return f"env:{self.settings.url_env} (unset)"

    def send(self, message: OutboundMessage) -> Outcome:
        try:
            url = from_env(self.settings.url_env)
        except MissingSecret as exc:
            return Outcome(status="failed", error=f"missing_secret: {exc}")
        body = json.dumps(slack_body(message), sort_keys=True).encode()
        # Slack ignores the header, but it lets a proxy or a recorded request dedupe.
        return post_json(url, body, {"Idempotency-Key": message.idempotency_key},
                         self.timeout_s)
