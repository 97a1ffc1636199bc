"""Data never becomes markup in Slack: an imported connector named like a mention or a link
arrives escaped, in a body Slack's own SDK parses as valid blocks."""

from __future__ import annotations

import json
import re

import pytest
from slack_sdk.models.blocks import Block

from tests.connectors.conftest import LoopbackHTTP
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
