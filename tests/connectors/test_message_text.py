"""Messages a person reads in ten seconds: words, not field names, on every channel.

Real channels (an aiosmtpd server keeping the raw bytes, loopback HTTP for Slack and the
webhook), a frozen clock, and the real services: the mail parses under ``email.policy.strict``,
its HTML under html5lib with no parse error, Slack's blocks under slack_sdk, and the text says
how long in hours, how many with the right plural, when in a named zone, and exactly how to
acknowledge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import html5lib
import pytest
from aiosmtpd.controller import Controller
from slack_sdk.models.blocks import Block

from store.models import RecoveryItem
from store.rules.messages import duration_words, plural, sparkline, window_words
from store.services.acknowledgements import acknowledge
from store.services.escalation import build_plan
from store.services.recovery import import_recovery_items
from store.services.reports import create_schedule_run
from store.services.schedules import add_schedule
from tests.connectors.conftest import LoopbackHTTP, closed_port
from tests.connectors.helpers import config_text
from workflows.delivery import deliver_escalation, deliver_report
from workflows.provider_drill import send_drill

HOSTILE = "<!channel> & <b>co</b>"
PRIVATE = ("PRIVATE-NOTE-7f3a", "INC-PRIVATE-42")
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")  # a raw timestamp a person should not read
FIELD_NAMES = ("past_slo", "in_flight", "unknown", "slo_breached", "failed_or_unconfirmed",
               "closure_trend", "key_risks", "provider_summary", "business_impact",
               "oldest_minutes", "at_risk", "on_track")
MARKUP = re.compile(r"<[^>]*>")  # what Slack would parse as a mention or link in mrkdwn


class RawSMTP:
    """Keeps each message exactly as it came over the wire."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.raw.append(bytes(envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"

    def mails(self) -> list[EmailMessage]:
        # strict: any defect in the message (headers, MIME structure) raises here.
        parsed = [message_from_bytes(raw, policy=policy.strict) for raw in self.raw]
        assert all(isinstance(mail, EmailMessage) for mail in parsed)
        return parsed  # type: ignore[return-value]


@pytest.fixture
def smtp() -> Iterator[tuple[int, RawSMTP]]:
    handler = RawSMTP()
    port = closed_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=5)
    controller.start()
    yield port, handler
    controller.stop()


@pytest.fixture
def runtime(make_runtime: Any, write_config: Any, http_server: LoopbackHTTP,
            smtp: tuple[int, RawSMTP], monkeypatch: pytest.MonkeyPatch, clock: Any) -> Any:
    monkeypatch.setenv("CAVRA_SLACK_URL", http_server.url("/slack"))
    monkeypatch.setenv("CAVRA_EXEC_SLACK_URL", http_server.url("/exec-slack"))
    monkeypatch.setenv("CAVRA_HOOK_URL", http_server.url("/hook"))
    both = ["operations", "executive"]
    runtime = make_runtime(write_config(config_text({
        "mail": {"kind": "email", "host": "127.0.0.1", "port": smtp[0], "starttls": False,
                 "sender": "cavra@example.test", "to": ["oncall@example.test"],
                 "audience": both, "timeout_s": 2},
        "ops-slack": {"kind": "slack", "url_env": "CAVRA_SLACK_URL", "timeout_s": 2},
        "exec-slack": {"kind": "slack", "url_env": "CAVRA_EXEC_SLACK_URL",
                       "audience": ["executive"], "timeout_s": 2},
        "hook": {"kind": "webhook", "url_env": "CAVRA_HOOK_URL", "audience": both,
                 "timeout_s": 2}}, route=["mail", "ops-slack", "hook"])))
    now = clock.now
    import_recovery_items(runtime.ctx, [
        RecoveryItem(recovery_id=rid, connector=connector, category=category,
                     opened_at=now - timedelta(minutes=age), failure_count=failures)
        for rid, connector, category, age, failures in (
            ("rec-old", "payments-api", "rollback", 540, 2),
            ("rec-new", "auth-gateway", "rollback", 10, 0),
            ("rec-r", "ledger-db", "restore", 300, 0),
            ("rec-h", HOSTILE, "cache-flush", 30, 1))])
    return runtime


def _html_errors(markup: str) -> list[Any]:
    parser = html5lib.HTMLParser(strict=False)
    parser.parse(markup)
    return list(parser.errors)


def _parts(mail: EmailMessage) -> tuple[str, str]:
    plain, rich = mail.get_body(("plain",)), mail.get_body(("html",))
    assert isinstance(plain, EmailMessage) and isinstance(rich, EmailMessage)
    # As sent over SMTP: CRLF line ends.
    return (str(plain.get_content()).replace("\r\n", "\n"),
            str(rich.get_content()).replace("\r\n", "\n"))


def _slack_texts(body: dict[str, Any]) -> list[str]:
    """Every mrkdwn string Slack would parse: text, section text, fields, context."""
    texts = [str(body["text"])]
    for block in body["blocks"]:
        Block.parse(block).validate_json()  # the SDK's own model accepts every block
        text = block.get("text")
        if isinstance(text, dict) and text.get("type") == "mrkdwn":
            texts.append(text["text"])
        texts += [f["text"] for f in block.get("fields", []) if f.get("type") == "mrkdwn"]
        texts += [e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return texts


def _bodies(http_server: LoopbackHTTP, path: str) -> list[Any]:
    return [r.json() for r in http_server.requests if r.path == path]


def test_escalation_says_what_how_bad_how_long_and_how_to_acknowledge(
        runtime: Any, http_server: LoopbackHTTP, smtp: tuple[int, RawSMTP]) -> None:
    plan = build_plan(runtime.ctx)
    deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
    [mail] = smtp[1].mails()
    plain, rich = _parts(mail)
    ack = f"cavra escalation ack {plan.plan_id} --provider mail --state accepted"
    assert mail["Subject"] == (
        f"CAVRA critical escalation {plan.plan_id}: 2 recoveries past the 4 h SLO "
        "(longest open 9 h), 2 within SLO")
    assert f"  {ack}\n" in plain and ack in rich
    assert "Alert level: critical — 4 routes: 2 critical, 2 warning" in plain
    assert ("critical: payments-api/rollback breached the 4 h SLO: open 9 h, 2 failed "
            "recovery attempts; next step: page owner + executive visibility") in plain
    assert "critical: ledger-db/restore breached the 4 h SLO: open 5 h;" in plain
    assert "warning: auth-gateway/rollback open 10 min, within the 4 h SLO;" in plain
    assert "1 failed recovery attempt;" in plain  # the singular
    assert "Plan built Fri 27 Nov 2026, 12:00 UTC." in plain
    for text in (plain, rich):
        assert "540 min" not in text and "slo_breached" not in text
        assert not re.search(r"\bage \d", text)
        assert not ISO_TIME.search(text)
    # Well-formed but for the doctype: escalation mail still opens with a bare <html>, which
    # tests/connectors/test_connector_shapes.py pins.
    assert [error[1] for error in _html_errors(rich)] == ["expected-doctype-but-got-start-tag"]
    assert "&lt;!channel&gt; &amp; &lt;b&gt;co&lt;/b&gt;" in rich  # data is text, not markup

    [slack] = _bodies(http_server, "/slack")
    texts = _slack_texts(slack)
    assert len(slack["blocks"]) == 3  # header, one section, context
    assert f"`cavra escalation ack {plan.plan_id} --provider ops-slack --state accepted`" in (
        texts[1])
    assert MARKUP.findall("\n".join(texts)) == []

    [hook] = _bodies(http_server, "/hook")
    message = hook["message"]
    assert {"type", "plan_id", "alert_level", "provider", "attempt", "summary", "counts",
            "routes", "created_at"} <= set(message)  # the keys consumers already read
    assert message["ack_command"] == (
        f"cavra escalation ack {plan.plan_id} --provider hook --state accepted")
    assert message["routes"][0]["age"] == "9 h"


def test_executive_report_reads_as_a_table_a_chart_and_actions(
        runtime: Any, http_server: LoopbackHTTP, smtp: tuple[int, RawSMTP]) -> None:
    plan = build_plan(runtime.ctx)
    deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
    acknowledge(runtime.ctx, plan.plan_id, "mail", "accepted", PRIVATE[1], PRIVATE[0])
    schedule = add_schedule(runtime.ctx, name="exec-ny", cron="0 7 * * *",
                            timezone="America/New_York",
                            providers=["mail", "exec-slack", "hook"])
    run, report, _ = create_schedule_run(runtime.ctx, schedule.schedule_id,
                                         scheduled_for=datetime(2026, 11, 27, 12, 0, 30,
                                                                       tzinfo=UTC))
    deliver_report(runtime.ctx, runtime.registry, run.run_id)
    mail = smtp[1].mails()[-1]
    plain, rich = _parts(mail)
    window = "Thu 26 Nov, 07:00 – Fri 27 Nov 2026, 07:00 America/New_York"
    assert mail["Subject"] == (f"CAVRA executive recovery report {report.report_id}: "
                               "Critical, 2 recoveries past SLO in 2 areas")
    html5lib.HTMLParser(strict=True).parse(rich)  # raises on the first parse error
    for text in (plain, rich):
        assert f"Window: {window}" in text
        assert "Status: Critical — 2 recoveries past SLO in 2 areas" in text
        assert not ISO_TIME.search(text)
        assert not any(name in text for name in FIELD_NAMES)
    assert re.search(r"rollback\s+critical\s+2\s+1\s+9 h\s+payments-api", plain)
    assert re.search(r"restore\s+critical\s+1\s+1\s+5 h\s+ledger-db", plain)
    assert re.search(r"mail\s+1\s+0\s+0\s+0", plain)  # delivered, failed, unconfirmed, sending
    assert re.search(r"opened [▁▂▃▄▅▆▇█]{7}  0 0 0 0 0 0 4", plain)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", rich)
    first = cells.index("rollback")
    assert cells[first:first + 6] == ["rollback", "critical", "2", "1", "9 h", "payments-api"]
    assert len(re.findall(r'title="opened \d+"', rich)) == 7  # one bar per day
    assert len(re.findall(r'title="closed \d+"', rich)) == 7
    assert "<li>Page the risk owners (ledger-db, payments-api) about the 2 recoveries past " \
           "SLO and review their recovery playbooks</li>" in rich

    [slack] = _bodies(http_server, "/exec-slack")
    texts = _slack_texts(slack)
    fields = [f["text"] for b in slack["blocks"] for f in b.get("fields", [])]
    assert "*rollback*\nSeverity: critical · Open: 2 · Past SLO: 1 · Oldest: 9 h · Owner: " \
           "payments-api" in fields
    assert any(f.startswith("*mail*\nDelivered: 1") for f in fields)
    assert any(re.search(r"`opened [▁▂▃▄▅▆▇█]{7}", t) for t in texts)
    assert MARKUP.findall("\n".join(texts)) == []
    assert any("&lt;!channel&gt; &amp; &lt;b&gt;co&lt;/b&gt;" in f for f in fields)

    [hook] = _bodies(http_server, "/hook")[-1:]
    message = hook["message"]
    assert {"type", "run_id", "report_id", "provider", "attempt", "status", "window",
            "summary", "business_impact", "key_risks", "provider_summary",
            "recommended_actions"} <= set(message)
    assert message["window"]["text"] == window
    assert message["window"]["timezone"] == "America/New_York"
    sent = b"\n".join(smtp[1].raw + [r.body for r in http_server.requests])
    assert not any(secret.encode() in sent for secret in PRIVATE)  # public-safe


def test_drill_mail_is_a_well_formed_document(runtime: Any, smtp: tuple[int, RawSMTP]) -> None:
    send_drill(runtime.ctx, runtime.registry, "mail")
    [mail] = smtp[1].mails()
    plain, rich = _parts(mail)
    html5lib.HTMLParser(strict=True).parse(rich)
    assert "No action is needed." in plain and "Sent Fri 27 Nov 2026, 12:00 UTC." in plain


def test_a_quiet_report_says_so_in_words(make_runtime: Any, write_config: Any,
                                         tmp_path: Path) -> None:
    runtime = make_runtime(write_config(""))
    run, report, _ = create_schedule_run(runtime.ctx)
    deliver_report(runtime.ctx, runtime.registry, run.run_id)  # the built-in outbox
    assert report.body["recommended_actions"] == ["No action needed: recovery loop healthy"]
    [outbox] = tmp_path.rglob("outbox.jsonl")
    message = json.loads(outbox.read_text().splitlines()[-1])["message"]
    assert message["headline"] == "On track — no open recoveries, every notification delivered"
    assert message["window"]["text"] == "Thu 26 Nov, 12:00 – Fri 27 Nov 2026, 12:00 UTC"


@pytest.mark.parametrize(("minutes", "words"), [
    (0, "0 min"), (10, "10 min"), (59, "59 min"), (60, "1 h"), (90, "1 h 30 min"),
    (540, "9 h"), (1439, "23 h 59 min"), (1440, "1 day"), (1500, "1 day 1 h"),
    (3000, "2 days 2 h")])
def test_durations_are_words(minutes: int, words: str) -> None:
    assert duration_words(minutes) == words


@pytest.mark.parametrize(("count", "words"), [
    (0, "0 recoveries"), (1, "1 recovery"), (2, "2 recoveries")])
def test_plurals_agree(count: int, words: str) -> None:
    assert plural(count, "recovery", "recoveries") == words


def test_windows_and_sparklines() -> None:
    end = datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert window_words(end - timedelta(hours=4), end) == "Fri 27 Nov 2026, 08:00–12:00 UTC"
    assert window_words(end - timedelta(days=1), end, "Europe/Berlin") == (
        "Thu 26 Nov, 13:00 – Fri 27 Nov 2026, 13:00 Europe/Berlin")
    assert window_words(end - timedelta(days=1), end, "Not/AZone") == (
        "Thu 26 Nov, 12:00 – Fri 27 Nov 2026, 12:00 UTC")  # an unknown zone says UTC
    assert window_words(datetime(2025, 12, 31, 12, tzinfo=UTC),
                        datetime(2026, 1, 1, 12, tzinfo=UTC)) == (
        "Wed 31 Dec 2025, 12:00 – Thu 1 Jan 2026, 12:00 UTC")
    assert sparkline([0, 1, 4, 8]) == "▁▂▅█"  # zero is the floor, any count rises above it
    assert sparkline([0, 0]) == "▁▁"
