"""Slack incoming webhook: a readable summary (``text`` fallback plus Block Kit blocks).

The webhook URL is the secret (its path is the token): it comes from ``url_env`` and is
stored only as ``https://hooks.slack.com/***``.
"""

from __future__ import annotations

import json
from typing import Any

from workflows.connectors.base import Connector, MissingSecret, OutboundMessage, Outcome, redact_url
from workflows.connectors.http import idempotency_header, post_json
from workflows.connectors.render import (
    Bullets,
    Command,
    Part,
    Table,
    Trend,
    plain,
    render,
    trend_lines,
)
from workflows.connectors.secrets import from_env

HEADER_LIMIT = 150  # Slack's limit for a header block
SECTION_LIMIT = 3000
FIELDS_LIMIT = 10  # Block Kit: at most ten fields in a section, 2000 characters each
FIELD_LIMIT = 2000
MAX_BLOCKS = 50


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mrkdwn(text: str) -> str:
    """Slack's own escaping for mrkdwn text: data can never become a mention (``<!channel>``,
    ``<@U123>``) or a link (``<https://…|click>``), which Slack only parses between < and >."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _part_mrkdwn(part: Part) -> str:
    """A text part in Slack's mrkdwn: data escaped, the command in a code span."""
    if isinstance(part, Command):
        return f"{mrkdwn(part.intro)}\n`{mrkdwn(part.command)}`"
    if isinstance(part, Trend):
        lines = trend_lines(part)
        return f"*{mrkdwn(part.heading)}*\n" + "\n".join(
            f"`{mrkdwn(line.strip())}`" for line in lines)
    if isinstance(part, Bullets):
        return f"*{mrkdwn(part.heading)}*\n" + "\n".join(f"• {mrkdwn(i)}" for i in part.items)
    return mrkdwn("\n".join(plain(part)))


def _table_section(table: Table) -> dict[str, Any]:
    """One Block Kit field per row (at most ten): the first column bold, the rest labelled."""
    heading = {"type": "mrkdwn", "text": f"*{mrkdwn(table.heading)}*"}
    if not table.rows:
        heading["text"] += f"\n{mrkdwn(table.empty.capitalize())}"
        return {"type": "section", "text": heading}
    rows = table.rows if len(table.rows) <= FIELDS_LIMIT else table.rows[:FIELDS_LIMIT - 1]
    fields = [{"type": "mrkdwn", "text": _clip(
        f"*{mrkdwn(row[0])}*\n" + " · ".join(f"{mrkdwn(name)}: {mrkdwn(value)}" for name, value
                                            in zip(table.columns[1:], row[1:], strict=True)),
        FIELD_LIMIT)} for row in rows]
    if len(rows) < len(table.rows):
        fields.append({"type": "mrkdwn", "text": f"… and {len(table.rows) - len(rows)} more"})
    return {"type": "section", "text": heading, "fields": fields}


def _sections(parts: tuple[Part, ...]) -> list[dict[str, Any]]:
    """Text parts next to each other share a section; a table (as fields) and a trend are
    sections of their own. An escalation (text only) is one section."""
    sections: list[dict[str, Any]] = []
    texts: list[str] = []

    def flush() -> None:
        if texts:
            sections.append({"type": "section", "text": {
                "type": "mrkdwn", "text": _clip("\n".join(texts), SECTION_LIMIT)}})
            texts.clear()

    for part in parts:
        if isinstance(part, Table):
            flush()
            sections.append(_table_section(part))
        elif isinstance(part, Trend):
            flush()
            texts.append(_part_mrkdwn(part))
            flush()
        else:
            texts.append(_part_mrkdwn(part))
    flush()
    return sections


def slack_body(message: OutboundMessage) -> dict[str, Any]:
    rendered = render(message.kind, message.message)
    return {
        # The fallback text is parsed as mrkdwn too (notifications, search).
        "text": _clip(mrkdwn(rendered.title), SECTION_LIMIT),
        "blocks": [
            # plain_text is shown as written: no mentions or links are parsed there.
            {"type": "header", "text": {"type": "plain_text",
                                        "text": _clip(rendered.title, HEADER_LIMIT)}},
            *_sections(rendered.parts)[:MAX_BLOCKS - 2],
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
        return post_json(url, body, idempotency_header(
            message.idempotency_key, self.settings.idempotency_key_header), self.timeout_s)
