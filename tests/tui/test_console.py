"""Console behaviour beyond single actions: live refresh, the cursor staying put, paging,
the `/` filter, help, NO_COLOR, evidence, and the embedded scheduler's lifecycle."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from rich.console import Console
from textual.widgets import Static

from cavra_tui.app import CavraApp
from cavra_tui.bootstrap import Runtime
from cavra_tui.screens.evidence import EvidenceView
from cavra_tui.screens.help import HelpScreen
from cavra_tui.screens.retry_runs import RetryRunsScreen
from cavra_tui.widgets.record_table import RecordTable
from cavra_tui.widgets.scheduler_pane import SchedulerPane
from scheduler.status import LEADER_LOCK
from store.models import RecoveryItem
from store.services.escalation import build_plan
from store.services.listing import list_executions, list_plans
from store.services.locks import lease_holder
from store.services.recovery import import_recovery_items
from tests.tui.conftest import make_app, settle

SIZE = (100, 32)


def rendered_text(widget: Static) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def plans_table(app: CavraApp) -> RecordTable:
    return app.screen.query_one("#plans", RecordTable)


async def test_changes_by_another_process_show_after_a_poll_and_the_cursor_stays(
        seeded: Runtime, open_runtime: Callable[..., Runtime]) -> None:
    other = open_runtime()  # a second console or the CLI, on the same database
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        app._poll_changes()  # the first poll only learns the current version
        await settle(pilot)
        await pilot.press("down")
        await settle(pilot)
        chosen = plans_table(app).selected_id()
        assert chosen == plans_table(app).record_ids[1]
        new_plan = build_plan(other.ctx)
        assert new_plan.plan_id not in plans_table(app).record_ids  # not yet polled
        app._poll_changes()
        await settle(pilot)
        assert plans_table(app).record_ids[0] == new_plan.plan_id
        assert plans_table(app).selected_id() == chosen
        # Nothing changed since: a poll leaves the table alone.
        rows_before = plans_table(app).record_ids
        app._poll_changes()
        await settle(pilot)
        assert plans_table(app).record_ids == rows_before


async def test_lists_page_in_more_rows_as_the_cursor_reaches_the_end(runtime: Runtime) -> None:
    import_recovery_items(runtime.ctx, [RecoveryItem(
        recovery_id="rec-1", connector="payments-api", category="rollback",
        opened_at=runtime.ctx.clock())])
    for _ in range(60):
        build_plan(runtime.ctx)
    app = make_app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        assert plans_table(app).row_count == 50  # one page
        for _ in range(8):
            await pilot.press("pagedown")
            await settle(pilot)
        assert plans_table(app).record_ids == [p.plan_id for p in list_plans(
            runtime.ctx, limit=60).items]


async def test_filter_narrows_the_list_and_escape_clears_it(seeded: Runtime) -> None:
    target = list_plans(seeded.ctx).items[1].plan_id
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        assert plans_table(app).row_count == 3
        await pilot.press("slash", *target, "enter")
        await settle(pilot)
        assert plans_table(app).record_ids == [target]
        await pilot.press("escape")
        await settle(pilot)
        assert plans_table(app).row_count == 3


async def test_help_lists_the_keys(seeded: Runtime) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_evidence_of_the_highlighted_execution(seeded: Runtime) -> None:
    execution = list_executions(seeded.ctx, limit=1).items[0]
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4", "tab")  # focus the execution records
        await settle(pilot)
        assert app.screen.query_one("#executions", RecordTable).selected_id() == (
            execution.execution_id)
        await pilot.press("e")
        await settle(pilot)
        # On top of the screen it was asked from: Esc comes back to the same execution.
        assert isinstance(app.screen, EvidenceView)
        shown = rendered_text(app.screen.query_one("#evidence-view-body", Static))
        assert f"evidence for {execution.execution_id}" in shown
        assert execution.worker_run_id in shown and execution.plan_id in shown
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, RetryRunsScreen)
        assert app.screen.query_one("#executions", RecordTable).selected_id() == (
            execution.execution_id)


async def test_works_without_colour(seeded: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        assert app.no_color
        svg = app.export_screenshot()
        # Meaning survives without colour: statuses carry a glyph and a word.
        assert "▲&#160;critical" in svg or "▲ critical" in svg


async def test_embedded_scheduler_starts_leads_and_stops(seeded: Runtime) -> None:
    app = CavraApp(seeded, start_scheduler=True, live_refresh=False)
    async with app.run_test(size=SIZE) as pilot:
        service = app.scheduler_service
        assert service is not None and service.running
        for _ in range(100):  # the first lease tick runs in a thread right after start
            if service.is_leader:
                break
            await pilot.pause(0.05)
        assert service.is_leader
        app.refresh_data()
        await settle(pilot)
        assert app.screen.query_one(SchedulerPane).has_class("-leader")
    assert not service.running
    assert lease_holder(seeded.ctx, LEADER_LOCK, seeded.ctx.clock()) is None


def test_command_palette_lists_every_workflow_action() -> None:
    from cavra_tui.actions import ACTIONS
    from cavra_tui.commands import WorkflowCommands

    actions = {name.removeprefix("action_") for name in vars(WorkflowCommands)
               if name.startswith("action_")}
    listed = ({entry.runs.removeprefix("app.") for entry in ACTIONS if entry.title}
              | {entry.id for entry in ACTIONS if entry.title})
    assert actions <= listed
    assert {f"switch_mode('{mode}')" for mode in CavraApp.MODES} <= listed


async def test_a_page_still_loading_is_not_appended_after_the_filter_changes(
        runtime: Runtime) -> None:
    import threading

    from cavra_tui.screens.base import PagedSource

    import_recovery_items(runtime.ctx, [RecoveryItem(
        recovery_id="rec-1", connector="payments-api", category="rollback",
        opened_at=runtime.ctx.clock())])
    made = [build_plan(runtime.ctx).plan_id for _ in range(52)]
    next_page_asked, release = threading.Event(), threading.Event()
    app = make_app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        source = screen._pages["plans"]

        def slow_next_page(cursor: str | None, search: str | None) -> object:
            if cursor is not None:  # the next page: held until the filter has been applied
                next_page_asked.set()
                release.wait(5)
            return source.fetch(cursor, search)

        screen._pages["plans"] = PagedSource(slow_next_page, source.to_row)
        while not next_page_asked.is_set():
            await pilot.press("pagedown")
            await pilot.pause()
        await pilot.press("slash", *made[0], "enter")
        for _ in range(50):
            await pilot.pause()
            if plans_table(app).record_ids == [made[0]]:
                break
        release.set()
        await settle(pilot)
        assert plans_table(app).record_ids == [made[0]]


async def test_an_unknown_evidence_id_is_reported_once_and_then_forgotten(
        seeded: Runtime) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        await settle(pilot)
        await pilot.press("e", *"exe-nope", "enter")
        await settle(pilot)
        body = rendered_text(app.screen.query_one("#evidence-body", Static))
        assert "no evidence for exe-nope" in body
        app.refresh_data()  # e.g. after any later write
        await settle(pilot)
        errors = [n for n in app._notifications if n.title == "load evidence"]
        assert len(errors) == 1


async def test_moving_through_events_unpins_the_evidence_of_an_execution(
        seeded: Runtime) -> None:
    execution = list_executions(seeded.ctx, limit=1).items[0]
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        await settle(pilot)
        await pilot.press("e", *execution.execution_id, "enter")  # an ID typed: pinned
        await settle(pilot)
        pinned = f"evidence for {execution.execution_id}"
        assert pinned in rendered_text(app.screen.query_one("#evidence-body", Static))
        for _ in range(30):
            await pilot.press("down")
            await settle(pilot)
            if pinned not in rendered_text(app.screen.query_one("#evidence-body", Static)):
                break
        shown = rendered_text(app.screen.query_one("#evidence-body", Static))
        assert pinned not in shown and "evidence for" in shown


async def test_escape_closes_the_evidence_id_box(seeded: Runtime) -> None:
    from textual.widgets import Input

    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        await settle(pilot)
        await pilot.press("e")
        await pilot.pause()
        box = app.screen.query_one("#evidence-id", Input)
        assert box.has_focus
        await pilot.press("escape")
        await pilot.pause()
        assert box.has_class("-hidden") and not box.has_focus
        assert app.screen.focused is app.screen.query_one("#events")


async def test_the_audit_chain_status_follows_new_events(
        seeded: Runtime, open_runtime: Callable[..., Runtime]) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        await settle(pilot)
        status = app.screen.query_one("#chain-status", Static)
        before = rendered_text(status)
        build_plan(open_runtime().ctx)  # another process writes one more audit event
        app.refresh_data()
        await settle(pilot)
        after = rendered_text(status)
        assert "intact" in after and after != before


async def test_an_own_action_reloads_once_not_again_on_the_next_poll(seeded: Runtime) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        app._poll_changes()  # the first poll only learns the current version
        await settle(pilot)
        reloads = app.data_generation
        await pilot.press("p")
        await settle(pilot)
        assert app.data_generation == reloads + 1  # the action's own reload
        app._poll_changes()
        await settle(pilot)
        assert app.data_generation == reloads + 1
        await pilot.press("a")
        await pilot.pause()
        await pilot.click("#ack-submit")  # the form's write (here: refused, and audited)
        await settle(pilot)
        reloads = app.data_generation
        app._poll_changes()
        await settle(pilot)
        assert app.data_generation == reloads


async def test_home_and_end_go_to_the_first_and_last_row(seeded: Runtime) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("end")
        await settle(pilot)
        assert plans_table(app).selected_id() == plans_table(app).record_ids[-1]
        await pilot.press("home")
        await settle(pilot)
        assert plans_table(app).selected_id() == plans_table(app).record_ids[0]


async def test_a_plan_timeline_says_when_older_events_are_not_shown(seeded: Runtime) -> None:
    from store.services.acknowledgements import acknowledge

    plan_id = list_plans(seeded.ctx).items[0].plan_id
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        timeline = app.screen.query_one("#timeline", RecordTable)
        assert timeline.border_subtitle is None
        for _ in range(50):  # with the demo's one acknowledgement: more than a page
            acknowledge(seeded.ctx, plan_id, "outbox", "acknowledged")
        app.refresh_data()
        await settle(pilot)
        assert timeline.row_count == 51  # 50 acks and the delivery
        assert "older ones not shown" in str(timeline.border_subtitle)
