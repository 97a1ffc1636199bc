"""The `/` filter applies as you type (once typing pauses), matches only what a list shows,
says how many rows match in the list's border, and `!word` leaves rows out (issue 12).

Pilot tests on the seeded demo database, and the services behind the lists on the same file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

import store.services.search
from cavra_tui.app import CavraApp
from cavra_tui.bootstrap import Runtime
from cavra_tui.screens.base import FILTER_PAUSE_S
from cavra_tui.widgets.record_table import RecordTable, match_words
from store.models import Page
from store.services.acknowledgements import acknowledge
from store.services.listing import (
    list_acknowledgements,
    list_audit_events,
    list_deliveries,
    list_executions,
    list_plans,
    list_retry_plans,
    list_schedule_runs,
    list_worker_runs,
)
from store.services.search import SearchedPage, parse_search
from tests.tui.conftest import make_app, settle

SIZE = (120, 40)


def table(app: CavraApp, table_id: str) -> RecordTable:
    return app.screen.query_one(f"#{table_id}", RecordTable)


async def paused(pilot: Pilot[None]) -> None:
    """Wait out the pause after typing (no Enter), until the filter took what was typed."""
    screen: Any = pilot.app.screen
    box = screen.query_one("#filter", Input)
    await pilot.pause(FILTER_PAUSE_S)
    for _ in range(100):
        if screen.search == (box.value.strip() or None):
            break
        await pilot.pause(0.05)
    await settle(pilot)


async def typed_and_paused(pilot: Pilot[None], *keys: str) -> None:
    await pilot.press(*keys)
    await paused(pilot)


async def set_filter(pilot: Pilot[None], text: str) -> None:
    """What a paste does: the box's whole value at once (no key names needed)."""
    pilot.app.screen.query_one("#filter", Input).value = text
    await paused(pilot)


def errors(app: CavraApp) -> list[str]:
    return [f"{m.title}: {m.text}" for m in app.message_log if m.severity == "error"]


async def test_typing_filters_without_enter_and_the_border_counts_the_matches(
        seeded: Runtime) -> None:
    target = list_plans(seeded.ctx).items[1].plan_id
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        plans = table(app, "plans")
        assert plans.row_count == 3 and plans.border_title == "Escalation plans"
        await pilot.press("slash")
        await typed_and_paused(pilot, *target)
        assert plans.record_ids == [target]
        assert plans.border_title == "Escalation plans · 1 match"
        assert app.focused is app.screen.query_one("#filter")  # typing was not interrupted
        await pilot.press("enter")  # Enter still goes to the list, the filter kept
        await settle(pilot)
        assert app.focused is plans and plans.record_ids == [target]
        await pilot.press("escape")
        await settle(pilot)
        assert plans.row_count == 3 and plans.border_title == "Escalation plans"


async def test_no_matches_and_a_word_with_an_exclamation_mark_leaves_rows_out(
        seeded: Runtime) -> None:
    made = [plan.plan_id for plan in list_plans(seeded.ctx).items]
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        plans = table(app, "plans")
        await pilot.press("slash")
        await typed_and_paused(pilot, *"esc-")
        assert plans.row_count == 3 and plans.border_title == "Escalation plans · 3 matches"
        await typed_and_paused(pilot, *" !", *made[0])  # "esc- !esc-…": all but that one
        assert plans.record_ids == made[1:]
        assert plans.border_title == "Escalation plans · 2 matches"
        await set_filter(pilot, "nothing-like-this")
        assert plans.row_count == 0
        assert plans.border_title == "Escalation plans · no matches"
        await set_filter(pilot, "!")  # a word still being typed: no filter yet
        assert plans.row_count == 3 and plans.border_title == "Escalation plans"
    assert errors(app) == []


async def test_a_field_the_list_does_not_show_does_not_match(seeded: Runtime) -> None:
    ack = list_acknowledgements(seeded.ctx).items[0]
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        acks = table(app, "acks")
        await pilot.press("slash")
        await set_filter(pilot, ack.ack_id)  # the row key: not one of the list's columns
        assert acks.row_count == 0 and acks.border_title == "Acknowledgements · no matches"
        await set_filter(pilot, "ack")  # not every "ack-…" row: only what the rows show
        assert [a.state for a in list_acknowledgements(seeded.ctx).items
                if a.ack_id in acks.record_ids] == ["acknowledged"]
        await set_filter(pilot, str(ack.external_ref))  # the Ref column is shown
        assert acks.record_ids == [ack.ack_id]


ODD = "50%_off\\'\""  # LIKE's wildcards, a backslash and both quotes


async def test_wildcards_quotes_and_control_characters_are_matched_literally(
        seeded: Runtime) -> None:
    plan = list_plans(seeded.ctx).items[0]
    odd = acknowledge(seeded.ctx, plan.plan_id, "outbox", "accepted", external_ref=ODD)
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        acks = table(app, "acks")
        await pilot.press("slash")
        for text in ("%", "_", "\\", "'", '"', ODD, "0%_O"):
            await set_filter(pilot, text)
            assert acks.record_ids == [odd.ack_id], text
        for text in ("%%", "\x1b[31m", "a\x00b", "ﬀ", "[red]x[/red]", "*"):
            await set_filter(pilot, text)
            assert acks.row_count == 0, repr(text)
            assert acks.border_title == "Acknowledgements · no matches"
        await set_filter(pilot, "\t")  # only whitespace: no filter
        assert acks.row_count == 4
    assert errors(app) == []


# -- the services behind the lists ----------------------------------------------------------

Lister = Callable[..., Page]


def _hidden_and_shown(ctx: Any) -> list[tuple[str, Lister, str, str]]:
    """(list, its service, a value only a hidden field holds, a value a shown column holds)."""
    ack = list_acknowledgements(ctx).items[0]
    run = list_worker_runs(ctx).items[0]
    execution = list_executions(ctx).items[0]
    schedule_run = list_schedule_runs(ctx).items[0]
    delivery = list_deliveries(ctx, kind="executive").items[0]
    return [
        ("acknowledgements", list_acknowledgements, ack.ack_id, ack.plan_id),
        ("worker runs", list_worker_runs, run.retry_plan_id, run.run_id),
        ("executions", list_executions, execution.worker_run_id, execution.execution_id),
        ("schedule runs", list_schedule_runs, str(schedule_run.schedule_id),
         schedule_run.report_id),
        ("executive deliveries", lambda ctx, **kw: list_deliveries(ctx, kind="executive", **kw),
         delivery.delivery_id, str(delivery.schedule_run_id)),
        # JSON cells match as they read ("outbox", "retry 1, wait 0"), not as stored.
        ("plans", list_plans, '["outbox"]', "outbox"),
        ("retry plans", list_retry_plans, '"wait":', "wait"),
    ]


def test_each_list_matches_what_it_shows_and_not_what_it_hides(seeded: Runtime) -> None:
    for name, lister, hidden, shown in _hidden_and_shown(seeded.ctx):
        assert lister(seeded.ctx, search=hidden).items == [], name
        assert lister(seeded.ctx, search=shown).items, name


def test_a_word_to_leave_out_keeps_rows_whose_column_is_empty(seeded: Runtime) -> None:
    sent = list_deliveries(seeded.ctx, kind="executive").items
    assert any(d.status_code is None for d in sent)  # the Code column is empty there
    kept = list_deliveries(seeded.ctx, kind="executive", search="!500").items
    assert [d.delivery_id for d in kept] == [d.delivery_id for d in sent]


def test_the_match_count_is_bounded(seeded: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    events = list_audit_events(seeded.ctx, search="a", limit=500)
    assert isinstance(events, SearchedPage) and not events.matches_capped
    assert events.matches == len(events.items) > 3
    monkeypatch.setattr(store.services.search, "MATCH_CAP", 3)
    first = list_audit_events(seeded.ctx, search="a", limit=2)
    assert isinstance(first, SearchedPage)
    assert (first.matches, first.matches_capped) == (3, True)  # "3+ matches": counted no further
    plans = list_plans(seeded.ctx, search="esc", limit=2)
    assert isinstance(plans, SearchedPage) and (plans.matches, plans.matches_capped) == (3, False)
    # The next pages carry no count, and an unfiltered list none at all.
    assert not isinstance(list_audit_events(seeded.ctx, search="a", limit=2,
                                            cursor=first.next_cursor), SearchedPage)
    assert not isinstance(list_plans(seeded.ctx), SearchedPage)


def test_match_words_and_search_words() -> None:
    assert [match_words(0), match_words(1), match_words(12), match_words(1000, capped=True)] == [
        "no matches", "1 match", "12 matches", "1,000+ matches"]
    terms = parse_search("  slack !failed ! !!x  ")
    assert (terms.include, terms.exclude) == (("slack",), ("failed", "!x"))
    assert not parse_search("   ") and not parse_search("!")
