"""Data never becomes markup in a channel: an imported name shaped like a mention, a link or a
script arrives as text (Slack: escaped and valid per Slack's own SDK; email: no foreign tags)."""

from __future__ import annotations

import json
import re

import pytest
from slack_sdk.models.blocks import Block

from tests.connectors.conftest import LoopbackHTTP, SMTPServer
from tests.connectors.helpers import Cli, config_text

HOSTILE = ["<!channel> ping", "<https://example.invalid|click here>", "<@U0CAVRA> & co"]
# What Slack parses as markup in mrkdwn: anything between < and >.
MARKUP = re.compile(r"<[^>]*>")


def _mrkdwn_texts(body: dict[str, object]) -> list[str]:
    texts = [str(body["text"])]
    for block in body["blocks"]:  # type: ignore[attr-defined]
        text = block.get("text")
        if isinstance(text, dict) and text.get("type") == "mrkdwn":
            texts.append(text["text"])
        for element in block.get("elements", []):
            if element.get("type") == "mrkdwn":
                texts.append(element["text"])
    return texts


def test_a_hostile_connector_name_is_no_mention_or_link(cli: Cli, http_server: LoopbackHTTP,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAVRA_SLACK_URL", http_server.url("/services/T0/B0/x"))
    cli.configure(config_text({"team-slack": {"kind": "slack", "url_env": "CAVRA_SLACK_URL",
                                              "timeout_s": 2}}))
    items = cli.tmp_path / "hostile.json"
    items.write_text(json.dumps([
        {"recovery_id": f"rec-{n}", "connector": name, "category": "rollback",
         "opened_at": "2026-01-01T00:00:00Z"} for n, name in enumerate(HOSTILE)]))
    cli.json("recovery", "import", str(items))
    plan = cli.json("escalation", "plan")
    cli.json("escalation", "deliver", plan["plan_id"])
    [request] = http_server.requests
    body = request.json()
    for block in body["blocks"]:
        Block.parse(block).validate_json()  # the SDK's own model accepts every block
    texts = _mrkdwn_texts(body)
    joined = "\n".join(texts)
    assert MARKUP.findall(joined) == []  # no live mention, channel ping or link
    assert "&lt;!channel&gt; ping" in joined
    assert "&lt;https://example.invalid|click here&gt;" in joined
    assert "&lt;@U0CAVRA&gt; &amp; co" in joined


def test_hostile_names_in_email_html_stay_text(cli: Cli, smtp_server: SMTPServer) -> None:
    """The HTML part has only the tags cavra writes; the names arrive as escaped text."""
    from html.parser import HTMLParser

    from tests.connectors.test_connector_shapes import _email_config

    cli.configure(_email_config(smtp_server))
    items = cli.tmp_path / "hostile.json"
    items.write_text(json.dumps([
        {"recovery_id": "rec-1", "connector": "<script>alert(1)</script>",
         "category": "<img src=x onerror=alert(2)>", "opened_at": "2026-01-01T00:00:00Z"}]))
    cli.json("recovery", "import", str(items))
    plan = cli.json("escalation", "plan")
    cli.json("escalation", "deliver", plan["plan_id"])
    [(_, _, mail)] = smtp_server.behaviour.messages
    html_part = next(part for part in mail.walk() if part.get_content_type() == "text/html")
    markup = html_part.get_content()

    class Tags(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: set[str] = set()
            self.text: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.add(tag)

        def handle_data(self, data: str) -> None:
            self.text.append(data)

    parser = Tags()
    parser.feed(markup)
    assert parser.tags <= {"html", "body", "h2", "p", "ul", "li", "hr", "small"}
    text = "".join(parser.text)
    assert "<script>alert(1)</script>" in text and "<img src=x onerror=alert(2)>" in text
