"""The action registry drives the keys, the footer, the palette, gating and help: a gated
key says why, the config's `[keys]` rebinds, a bad one stops the console with one line, the
palette goes to an action's screen first, modals show their own keys, and the README's key
table is the registry's. The real app on a real SQLite file, under Pilot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from textual.widgets import Markdown

from cavra_tui import actions
from cavra_tui.app import StartingCavraApp
from cavra_tui.bootstrap import Runtime
from cavra_tui.console import ConsoleOptions
from cavra_tui.screens.escalations import EscalationsScreen
from cavra_tui.screens.forms.confirm_send import ConfirmSend
from cavra_tui.screens.forms.schedule_form import ScheduleForm
from cavra_tui.screens.record_detail import RecordDetail
from cavra_tui.screens.start_failed import StartFailedScreen
from cavra_tui.widgets.record_table import RecordTable
from store.services.listing import list_deliveries, list_retry_plans, list_worker_runs
from store.tables import AuditEventRow
from tests.tui.conftest import make_app, settle

README = Path(__file__).resolve().parents[2] / "README.md"


def notices(app: object) -> list[str]:
    return [n.message for n in app._notifications]  # type: ignore[attr-defined]


def footer_keys(app: object) -> dict[str, str]:
    """What the footer of the screen on top offers: key → label."""
    return {key: active.binding.description
            for key, active in app.screen.active_bindings.items()  # type: ignore[attr-defined]
            if active.binding.show}


async def test_a_read_only_key_says_why_and_does_nothing(
        open_runtime: Callable[..., Runtime]) -> None:
    runtime = open_runtime(read_only=True)
    app = make_app(runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await settle(pilot)
        assert app.screen.active_bindings["r"].enabled is False  # greyed in the footer
        await pilot.press("r")
        await settle(pilot)
        [said] = [text for text in notices(app) if "read-only" in text]
        assert said.startswith("build a retry plan") and "nothing was done" in said
    assert list_retry_plans(runtime.ctx).items == []


async def test_a_key_the_role_lacks_is_greyed_and_refused_with_the_reason_audited(
        open_runtime: Callable[..., Runtime]) -> None:
    runtime = open_runtime('[roles]\noperator = ["dana"]\n')
    app = make_app(runtime)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("5")
        await settle(pilot)
        assert app.screen.active_bindings["n"].enabled is False  # schedule.change
        assert app.screen.active_bindings["s"].enabled is True  # an operator may run
        await pilot.press("n")
        await settle(pilot)
        assert not isinstance(app.screen, ScheduleForm)
        assert any("schedule.change needs release_manager" in text for text in notices(app))
    with runtime.db.read() as session:
        denial = session.execute(select(AuditEventRow).order_by(AuditEventRow.seq.desc())
                                 .limit(1)).scalar_one()
    assert (denial.action, denial.decision) == ("schedule.change", "deny")


async def test_a_keymap_in_the_config_rebinds_an_action(
        open_runtime: Callable[..., Runtime]) -> None:
    runtime = open_runtime('[keys]\ndry_run = "D"\n')
    app = make_app(runtime)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("4")
        await settle(pilot)
        assert footer_keys(app).get("D") == "Dry-run" and "y" not in footer_keys(app)
        await pilot.press("y")  # the old key does nothing now
        await settle(pilot)
        assert list_worker_runs(runtime.ctx).items == []
        await pilot.press("D")
        await settle(pilot)
        assert [run.mode for run in list_worker_runs(runtime.ctx).items] == ["dry_run"]
        await pilot.press("question_mark")
        await settle(pilot)
        assert "| `D` | retry worker dry-run" in app.screen.query_one(Markdown).source


@pytest.mark.parametrize(("keys", "said"), [
    ('nope = "x"', "[keys] nope: no such action"),
    ('dry_run = "r"', "[keys] dry_run and retry_plan would share the key 'r' on retry_runs"),
    ('dry_run = "two words"', "[keys] dry_run: 'two words' is not a key name"),
])
async def test_a_bad_keymap_stops_the_console_with_one_line(tmp_path: Path, keys: str,
                                                            said: str) -> None:
    config = tmp_path / "cavra.toml"
    config.write_text(f"[keys]\n{keys}\n", encoding="utf-8")
    options = ConsoleOptions(db_url=f"sqlite:///{tmp_path / 'cavra.db'}",
                             config_path=str(config))
    app = StartingCavraApp(options.open_runtime, start_scheduler=False, live_refresh=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, StartFailedScreen)
        assert said in app.screen.reason
        await pilot.press("q")
    assert app.return_code == 2


async def test_help_lists_this_screens_keys_first_then_the_global_ones(
        seeded: Runtime) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        source = app.screen.query_one(Markdown).source
        rows = [line for line in source.splitlines() if line.startswith("| `")]
        executive = [entry.shown_key for entry in actions.for_screen("executive")]
        assert [row.split("`")[1] for row in rows[:len(executive)]] == executive
        assert "## Keys — Executive" in source and "| `?` |" in source
        # The footer is the help screen's own: closing keys, not the Executive's.
        assert "Close" in footer_keys(app).values() and "s" not in footer_keys(app)


async def test_a_modal_shows_its_own_keys_in_the_footer(seeded: Runtime) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        assert footer_keys(app).get("d") == "Deliver"
        app.screen.query_one("#plans", RecordTable).focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RecordDetail)
        shown = footer_keys(app)
        assert shown.get("escape") == "Back" and "d" not in shown and "p" not in shown


async def test_the_palette_goes_to_the_actions_screen_and_acts_on_its_highlight(
        seeded: Runtime) -> None:
    """From the Dashboard, "Deliver escalation plan" opens Escalations first and asks about
    the plan highlighted there; Cancel sends nothing."""
    before = len(list_deliveries(seeded.ctx, limit=500).items)
    app = make_app(seeded)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"deliver escalation plan")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        confirm = app.screen
        assert isinstance(confirm, ConfirmSend)
        escalations = app.screen_stack[-2]
        assert isinstance(escalations, EscalationsScreen)
        highlighted = escalations.query_one("#plans", RecordTable).selected_id()
        assert highlighted is not None and highlighted in confirm.preview.what
        await pilot.press("escape")
        await settle(pilot)
    assert len(list_deliveries(seeded.ctx, limit=500).items) == before


async def test_c_copies_the_highlighted_id(seeded: Runtime) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        plans = app.screen.query_one("#plans", RecordTable)
        plans.focus()
        await pilot.press("c")
        await settle(pilot)
        assert app.clipboard == plans.selected_id()
        assert any(f"copied {plans.selected_id()}" in text for text in notices(app))


def test_the_readme_key_table_is_the_registrys() -> None:
    readme = README.read_text(encoding="utf-8")
    start, end = "<!-- keys: generated by python -m cavra_tui.actions -->", "<!-- /keys -->"
    assert start in readme and end in readme
    table = readme.split(start, 1)[1].split(end, 1)[0].strip()
    assert table == actions.markdown_key_table().strip()


def test_every_key_of_a_screen_is_distinct_and_every_action_has_a_method() -> None:
    from cavra_tui.app import CavraApp

    actions.check_keymap({})  # the defaults never collide
    for entry in actions.ACTIONS:
        if entry.runs.startswith("app."):
            assert hasattr(CavraApp, f"action_{entry.name}"), entry.id


async def test_f_on_escalations_records_a_follow_up_dry_run_and_sends_nothing(
        seeded: Runtime) -> None:
    from store.services.records import read_record

    before = len(list_deliveries(seeded.ctx, limit=500).items)
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        assert footer_keys(app).get("f") == "Follow-up"
        await pilot.press("f")
        await settle(pilot)
        [said] = [text for text in notices(app) if text.startswith("follow-up dry-run fup-")]
    run_id = said.split()[2].rstrip(":")
    record = read_record(seeded.ctx, run_id)
    assert record is not None and record["mode"] == "dry_run"
    assert len(list_deliveries(seeded.ctx, limit=500).items) == before
