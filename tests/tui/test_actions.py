"""Each workflow action from the keyboard: keys pressed → a record in the database → the
screen shows it. The app is the real one, on a real SQLite file, under Pilot."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from textual.command import CommandList
from textual.widgets import Button, Input, Label

from cavra_tui.bootstrap import Runtime
from cavra_tui.screens.forms.ack_form import AckForm
from cavra_tui.screens.forms.confirm_live import ConfirmLiveRun
from cavra_tui.screens.forms.confirm_send import ConfirmSend
from cavra_tui.screens.forms.schedule_form import ScheduleForm
from cavra_tui.widgets.record_table import RecordTable
from store.services.listing import (
    list_acknowledgements,
    list_deliveries,
    list_executions,
    list_plans,
    list_retry_plans,
    list_schedule_runs,
    list_worker_runs,
)
from store.tables import AcknowledgementRow, AuditEventRow
from tests.conftest import SteppingClock
from tests.loopback import LoopbackHTTP, http_server
from tests.tui.conftest import make_app, settle

__all__ = ["http_server"]  # the loopback server fixture, shared with the core tests

SIZE = (100, 32)


def table(app: object, table_id: str) -> RecordTable:
    return app.screen.query_one(f"#{table_id}", RecordTable)  # type: ignore[attr-defined]


def notices(app: object) -> list[str]:
    return [n.message for n in app._notifications]  # type: ignore[attr-defined]


def count_acks(runtime: Runtime) -> int:
    with runtime.db.read() as session:
        return session.execute(select(func.count()).select_from(AcknowledgementRow)).scalar_one()


async def test_build_plan_and_deliver_from_escalations(runtime: Runtime) -> None:
    from store.models import RecoveryItem
    from store.services.recovery import import_recovery_items

    import_recovery_items(runtime.ctx, [RecoveryItem(
        recovery_id="rec-1", connector="payments-api", category="rollback",
        opened_at=runtime.ctx.clock())])
    app = make_app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        assert table(app, "plans").row_count == 0
        await pilot.press("p")
        await settle(pilot)
        plans = list_plans(runtime.ctx).items
        assert len(plans) == 1
        assert table(app, "plans").record_ids == [plans[0].plan_id]
        await pilot.press("d")
        await settle(pilot)
        confirm = app.screen
        assert isinstance(confirm, ConfirmSend)
        assert confirm.preview.rows == [("outbox", confirm.preview.rows[0][1], "1",
                                         f"cavra:{plans[0].plan_id}:outbox:1")]
        assert app.focused is confirm.query_one("#send-cancel")  # Cancel is the default
        await pilot.press("enter")
        await settle(pilot)
        assert list_deliveries(runtime.ctx, plan_id=plans[0].plan_id).items == []
        assert not Path("outbox.jsonl").exists()  # nothing was sent
        await pilot.press("d")
        await settle(pilot)
        await pilot.click("#send-confirm")
        await settle(pilot)
        deliveries = list_deliveries(runtime.ctx, plan_id=plans[0].plan_id).items
        assert [(d.provider, d.status) for d in deliveries] == [("outbox", "delivered")]
        assert table(app, "timeline").record_ids == [deliveries[0].delivery_id]
        assert any("delivered plan" in text for text in notices(app))
    outbox = Path("outbox.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(outbox[-1])["plan_id"] == plans[0].plan_id


async def test_acknowledge_through_the_form(seeded: Runtime) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        pending = table(app, "pending").record_ids
        assert len(pending) == 1  # the demo's deferred pair
        await pilot.press("a")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, AckForm)
        plan_id, provider = pending[0].split("/")
        assert form.query_one("#ack-plan", Input).value == plan_id
        form.query_one("#ack-state").value = "accepted"
        form.query_one("#ack-ref", Input).value = "INC-5000"
        await pilot.click("#ack-submit")
        await settle(pilot)
        acks = list_acknowledgements(seeded.ctx).items
        assert (acks[0].plan_id, acks[0].provider, acks[0].state, acks[0].external_ref) == (
            plan_id, provider, "accepted", "INC-5000")
        assert table(app, "acks").record_ids[0] == acks[0].ack_id
        assert table(app, "pending").row_count == 0


async def test_ack_form_rejects_bad_input_and_writes_nothing(seeded: Runtime) -> None:
    before = count_acks(seeded)
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("a")
        await pilot.pause()
        form = app.screen
        form.query_one("#ack-state").value = "deferred"
        form.query_one("#ack-ref", Input).value = "x" * 300
        await pilot.click("#ack-submit")
        await pilot.pause()
        error = form.query_one("#ack-error", Label)
        assert app.screen is form  # still open
        assert "external ref is longer than 255" in str(error.render())
        assert error.display
        form.query_one("#ack-ref", Input).value = ""
        form.query_one("#ack-provider", Input).value = "  "
        form.query_one("#ack-provider", Input).focus()
        await pilot.press("enter")  # Enter in any field submits
        await pilot.pause()
        assert "provider is required" in str(error.render())
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, AckForm)
    assert count_acks(seeded) == before


async def test_the_ack_state_must_be_chosen_and_a_fixed_field_clears_its_error(
        seeded: Runtime) -> None:
    before = count_acks(seeded)
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("a")
        await pilot.pause()
        form = app.screen
        await pilot.press("enter")  # a plan and provider are filled in; no state chosen
        await settle(pilot)
        error = form.query_one("#ack-error", Label)
        assert app.screen is form and "choose a state" in str(error.render())
        assert count_acks(seeded) == before
        labels = [str(label) for label, _ in form.query_one("#ack-state")._options]
        assert "accepted (unlocks live retry)" in labels and "deferred" in labels
        form.query_one("#ack-state").value = "deferred"
        await pilot.pause()
        assert str(error.render()) == "" and not error.has_class("-shown")
        await pilot.press("escape")
        await settle(pilot)
    assert count_acks(seeded) == before


async def test_ack_for_a_provider_never_delivered_to_is_refused_visibly(seeded: Runtime) -> None:
    before = count_acks(seeded)
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("a")
        await pilot.pause()
        form = app.screen
        form.query_one("#ack-state").value = "acknowledged"
        form.query_one("#ack-provider", Input).value = "pagerduty-nowhere"
        await pilot.click("#ack-submit")
        await settle(pilot)
        # The service refused: the form stays open with the reason and what was typed.
        assert app.screen is form
        assert "was not delivered to provider" in str(form.query_one("#ack-error").render())
        assert form.query_one("#ack-provider", Input).value == "pagerduty-nowhere"
        assert app.is_running
    assert count_acks(seeded) == before


async def test_retry_plan_and_dry_run_from_retry_runs(seeded: Runtime) -> None:
    plans_before = len(list_retry_plans(seeded.ctx).items)
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        retry_plans = list_retry_plans(seeded.ctx).items
        assert len(retry_plans) == plans_before + 1
        assert table(app, "retry-plans").record_ids[0] == retry_plans[0].retry_plan_id
        await pilot.press("y")
        await settle(pilot)
        run = list_worker_runs(seeded.ctx, limit=1).items[0]
        assert run.mode == "dry_run"
        assert table(app, "runs").record_ids[0] == run.run_id
        executions = list_executions(seeded.ctx, worker_run_id=run.run_id).items
        assert [e.status for e in executions] == ["dry_run"]
        assert table(app, "executions").record_ids[0] == executions[0].execution_id


async def test_live_run_refused_without_the_release_manager_role(
        open_runtime: Callable[..., Runtime]) -> None:
    runtime = open_runtime('[roles]\noperator = ["dana"]\n')
    app = make_app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(pilot)
        await pilot.press("L")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmLiveRun)
        assert any("retry.run.live needs release_manager" in text for text in notices(app))
        assert app.is_running
    with runtime.db.read() as session:
        denial = session.execute(select(AuditEventRow).order_by(AuditEventRow.seq.desc())
                                 .limit(1)).scalar_one()
    assert (denial.action, denial.decision) == ("retry.run.live", "deny")
    assert list_worker_runs(runtime.ctx).items == []


async def test_live_run_refused_when_the_pair_lacks_an_acknowledgement(seeded: Runtime) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(pilot)
        await pilot.press("L")
        await settle(pilot)
        confirm = app.screen
        assert isinstance(confirm, ConfirmLiveRun)
        refusal = confirm.query_one("#refusal", Label)
        assert "needs an acknowledgement" in str(refusal.render())
        assert confirm.query_one("#confirm-send", Button).disabled
        await pilot.press("escape")
        await settle(pilot)
    modes = [run.mode for run in list_worker_runs(seeded.ctx).items]
    assert modes[0] == "dry_run"  # the preview; no live run was made
    assert modes.count("live") == 3  # the demo's own


async def test_live_run_after_review_sends_and_shows_the_result(seeded: Runtime) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("a")
        await pilot.pause()
        app.screen.query_one("#ack-state").value = "accepted"
        await pilot.click("#ack-submit")
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        await pilot.press("L")
        await settle(pilot)
        confirm = app.screen
        assert isinstance(confirm, ConfirmLiveRun)
        preview = confirm.preview.dry_run.executions[0]
        cells = confirm.query_one("#preview-table").get_row(preview.execution_id)
        assert preview.idempotency_key in cells and preview.payload_sha256[:12] in cells
        await pilot.click("#confirm-send")
        await settle(pilot)
        run = list_worker_runs(seeded.ctx, limit=1).items[0]
        assert run.mode == "live"
        executions = list_executions(seeded.ctx, worker_run_id=run.run_id).items
        assert [(e.status, e.idempotency_key) for e in executions] == [
            ("delivered", preview.idempotency_key)]
        assert table(app, "runs").record_ids[0] == run.run_id
        assert any(text.startswith(f"live run {run.run_id}") for text in notices(app))


async def test_schedule_run_and_deliver_report_from_executive(seeded: Runtime) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        runs = list_schedule_runs(seeded.ctx).items
        assert len(runs) == 3
        assert table(app, "schedule-runs").record_ids[0] == runs[0].run_id
        # The new run is highlighted, so `d` sends its report (not the one before).
        assert table(app, "schedule-runs").selected_id() == runs[0].run_id
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmSend)
        await pilot.click("#send-confirm")
        await settle(pilot)
        sent = list_deliveries(seeded.ctx, kind="executive", schedule_run_id=runs[0].run_id).items
        assert [(d.provider, d.status) for d in sent] == [("outbox", "delivered")]
        assert table(app, "exec-deliveries").record_ids[0] == sent[0].delivery_id
        preview = str(app.screen.query_one("#report").source)
        assert runs[0].report_id in preview


async def test_command_palette_runs_any_action(seeded: Runtime) -> None:
    before = len(list_retry_plans(seeded.ctx).items)
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"build retry plan")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
    assert len(list_retry_plans(seeded.ctx).items) == before + 1


async def test_errors_show_as_notifications_and_the_app_keeps_running(runtime: Runtime) -> None:
    app = make_app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("d")  # nothing highlighted: no plan yet
        await settle(pilot)
        await pilot.press("5", "d")  # no schedule run yet
        await settle(pilot)
        assert any("highlight a plan first" in text for text in notices(app))
        assert any("highlight a schedule run first" in text for text in notices(app))
        assert app.is_running


async def test_read_only_header_and_refusal(open_runtime: Callable[..., Runtime]) -> None:
    runtime = open_runtime(read_only=True)
    app = make_app(runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        header = str(app.screen.query_one("#header").render())
        assert "READ-ONLY" in header and "dana" in header and "cavra.db" in header
        await pilot.press("4")
        await settle(pilot)
        # Write actions are greyed out: keys do nothing, the palette does not offer them.
        assert app.screen.active_bindings["r"].enabled is False
        assert app.screen.active_bindings["y"].enabled is False
        await pilot.press("r", "y", "L")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmLiveRun)
        await pilot.press("5", "n")
        await settle(pilot)
        assert not isinstance(app.screen, ScheduleForm)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"retry")
        await pilot.pause(0.3)
        hits = app.screen.query_one(CommandList)
        titles = [str(hits.get_option_at_index(i).prompt) for i in range(hits.option_count)]
        assert any("Go to Retry runs" in title for title in titles)  # reading is offered
        assert not any("Build retry plan" in title for title in titles)
        await pilot.press("escape")
    assert list_retry_plans(runtime.ctx).items == []
    assert list_worker_runs(runtime.ctx).items == []


async def test_add_and_toggle_a_schedule_from_executive(seeded: Runtime) -> None:
    from store.services.schedules import list_schedules

    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        demo_schedules = {s.schedule_id for s in list_schedules(seeded.ctx)}
        form.query_one("#sch-name", Input).value = "board-weekly"
        form.query_one("#sch-when", Input).value = "0 8 * * 1-5"
        form.query_one("#sch-timezone", Input).value = "Mars/Olympus"
        form.query_one("#sch-name", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert "not a known IANA zone" in str(form.query_one("#sch-error", Label).render())
        assert {s.schedule_id for s in list_schedules(seeded.ctx)} == demo_schedules
        form.query_one("#sch-timezone", Input).value = "Europe/Berlin"
        await pilot.press("enter")
        await settle(pilot)
        [schedule] = [s for s in list_schedules(seeded.ctx) if s.schedule_id not in demo_schedules]
        assert (schedule.name, schedule.cron, schedule.enabled) == (
            "board-weekly", "0 8 * * 1-5", True)
        schedules = table(app, "schedules")
        assert schedule.schedule_id in schedules.record_ids
        schedules.focus()
        schedules.move_cursor(row=schedules.get_row_index(schedule.schedule_id))
        await pilot.press("t")
        await settle(pilot)
        toggled = {s.schedule_id: s.enabled for s in list_schedules(seeded.ctx)}
        assert toggled[schedule.schedule_id] is False
        assert all(toggled[other] for other in demo_schedules)
        assert "no" in [str(cell) for cell in schedules.get_row(schedule.schedule_id)]


async def test_live_run_refused_for_the_person_who_accepted_the_pair(
        open_runtime: Callable[..., Runtime]) -> None:
    from workflows.demo import seed_demo_data

    runtime = open_runtime('[roles]\nrelease_manager = ["dana"]\nseparate_duties = true\n')
    seed_demo_data(runtime.ctx, runtime.registry)
    app = make_app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("a")
        await pilot.pause()
        app.screen.query_one("#ack-state").value = "accepted"
        await pilot.click("#ack-submit")
        await settle(pilot)
        await pilot.press("4", "L")
        await settle(pilot)
        confirm = app.screen
        assert isinstance(confirm, ConfirmLiveRun)
        assert "separation_of_duties" in str(confirm.query_one("#refusal", Label).render())
        assert confirm.query_one("#confirm-send", Button).disabled


async def test_a_new_plan_is_highlighted_so_deliver_sends_it(seeded: Runtime) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        new_plan = list_plans(seeded.ctx).items[0]
        assert table(app, "plans").selected_id() == new_plan.plan_id
        await pilot.press("d")
        await settle(pilot)
        await pilot.click("#send-confirm")
        await settle(pilot)
    assert [d.plan_id for d in list_deliveries(seeded.ctx, limit=1).items] == [new_plan.plan_id]


async def test_schedule_form_keeps_a_refused_name_and_says_why(seeded: Runtime) -> None:
    from store.services.schedules import list_schedules

    taken = list_schedules(seeded.ctx)[0].name
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        form.query_one("#sch-name", Input).value = taken
        form.query_one("#sch-when", Input).value = "1h"
        await pilot.click("#sch-submit")
        await settle(pilot)
        assert app.screen is form  # the service said no: nothing typed is lost
        assert taken in str(form.query_one("#sch-error", Label).render())
        assert form.query_one("#sch-when", Input).value == "1h"
        form.query_one("#sch-name", Input).value = "a" * 65
        await pilot.click("#sch-submit")
        await settle(pilot)
        assert "1–63 of a-z 0-9" in str(form.query_one("#sch-error", Label).render())
        form.query_one("#sch-when", Input).value = "0 8 * * 1-5 *"  # six fields
        form.query_one("#sch-when", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        error = str(form.query_one("#sch-error", Label).render())
        assert "cron '0 8 * * 1-5 *'" in error and "duration" not in error
        form.query_one("#sch-when", Input).value = "1h"
        form.query_one("#sch-name", Input).value = "board-hourly"
        form.query_one("#sch-name", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is not form
        assert "board-hourly" in [s.name for s in list_schedules(seeded.ctx)]


TWO_WEBHOOKS = """
[providers.ops-webhook]
kind = "webhook"
url_env = "CAVRA_TEST_HOOK_URL"
[providers.ops2]
kind = "webhook"
url_env = "CAVRA_TEST_HOOK_URL"
[routing]
critical = ["ops-webhook", "ops2"]
warning = ["ops-webhook", "ops2"]
fallback = "outbox"
"""


async def test_a_confirmed_live_run_sends_only_what_the_dialog_showed(
        open_runtime: Callable[..., Runtime], http_server: LoopbackHTTP,
        monkeypatch: pytest.MonkeyPatch, clock: SteppingClock) -> None:
    from store.services.acknowledgements import acknowledge
    from store.services.escalation import build_plan
    from store.services.recovery import import_recovery_items
    from tests.core.helpers import item
    from workflows.delivery import deliver_escalation

    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url())
    runtime = open_runtime(TWO_WEBHOOKS)
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])
    plan = build_plan(runtime.ctx)
    http_server.answer(500)
    http_server.answer(500)
    deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)  # both providers fail
    clock.advance(minutes=20)
    acknowledge(runtime.ctx, plan.plan_id, "ops2", "acknowledged")
    app = make_app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4", "L")
        await settle(pilot)
        confirm = app.screen
        assert isinstance(confirm, ConfirmLiveRun)
        assert confirm.preview.blocked_pairs == [(plan.plan_id, "ops-webhook")]
        # While the dialog is open, someone else clears the other pair.
        acknowledge(open_runtime().ctx, plan.plan_id, "ops-webhook", "acknowledged")
        await pilot.click("#confirm-send")
        await settle(pilot)
    [run] = [run for run in list_worker_runs(runtime.ctx).items if run.mode == "live"]
    sent = [(e.provider, e.status)
            for e in list_executions(runtime.ctx, worker_run_id=run.run_id).items]
    assert sent == [("ops2", "delivered")]


async def test_deliver_from_the_palette_off_its_screen_sends_nothing(seeded: Runtime) -> None:
    """From the Dashboard nothing is highlighted: the palette's "Deliver escalation plan"
    refuses instead of re-sending the latest plan."""
    before = len(list_deliveries(seeded.ctx, limit=100).items)
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.action_deliver_plan()
        app.action_deliver_report()
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmSend)
        assert any("highlight a plan first" in text for text in notices(app))
    assert len(list_deliveries(seeded.ctx, limit=100).items) == before


async def test_the_header_names_the_database_briefly_and_help_in_full(
        runtime: Runtime) -> None:
    app = make_app(runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        header = str(app.screen.query_one("#header").render())
        assert header.rstrip().endswith("cavra.db") and "sqlite:///" not in header
        await pilot.press("question_mark")
        await settle(pilot)
        from textual.widgets import Markdown

        shown = app.screen.query_one(Markdown).source
        assert f"cavra --db {runtime.db.describe()} metrics" in shown


async def test_actions_read_the_record_behind_the_row_not_cell_positions(
        seeded: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Columns move (they were moved for 80 columns): reversing the Acknowledgements list's
    columns must not change which pair `a` acknowledges."""
    import cavra_tui.screens.acknowledgements as screen_module

    shown = screen_module.ack_row
    monkeypatch.setattr(screen_module, "ACK_COLUMNS", tuple(reversed(screen_module.ACK_COLUMNS)))
    monkeypatch.setattr(screen_module, "ack_row",
                        lambda ack: (shown(ack)[0], tuple(reversed(shown(ack)[1]))))
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        acks = table(app, "acks")
        acks.focus()
        await pilot.pause()
        [ack] = [a for a in list_acknowledgements(seeded.ctx).items
                 if a.ack_id == acks.selected_id()]
        await pilot.press("a")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, AckForm)
        assert (form._plan_id, form._provider) == (ack.plan_id, ack.provider)
