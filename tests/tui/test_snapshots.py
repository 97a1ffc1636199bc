"""How each screen looks at 80×24 and 120×40, on the seeded demo database with a frozen
clock and counter-based IDs. Baselines live in __snapshots__/; review the SVG report before
accepting a change with `pytest tests/tui --snapshot-update`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from cavra_tui.bootstrap import Runtime
from store.services.schedules import add_schedule
from tests.tui.conftest import make_app, settle

SCREEN_KEYS = {"dashboard": "1", "escalations": "2", "acknowledgements": "3",
               "retry_runs": "4", "executive": "5", "audit": "6", "health": "7"}
SIZES = {"80x24": (80, 24), "120x40": (120, 40)}
Snap = Callable[..., bool]


def keys_then_settle(*keys: str) -> Callable[[Pilot[None]], Any]:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("screen", SCREEN_KEYS)
def test_screen(seeded: Runtime, snap_compare: Snap, screen: str, size: tuple[int, int]) -> None:
    app = make_app(seeded)
    assert snap_compare(app, terminal_size=size,
                        run_before=keys_then_settle(SCREEN_KEYS[screen]))


def test_scheduler_pane_with_schedules(seeded: Runtime, snap_compare: Snap) -> None:
    add_schedule(seeded.ctx, name="weekly-board", every="7d")  # the demo seeds two more
    app = make_app(seeded)
    assert snap_compare(app, terminal_size=(120, 40), run_before=keys_then_settle())


def test_help(seeded: Runtime, snap_compare: Snap) -> None:
    assert snap_compare(make_app(seeded), run_before=keys_then_settle("question_mark"))


def test_ack_form_with_an_inline_error(seeded: Runtime, snap_compare: Snap) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await keys_then_settle("3", "a")(pilot)
        form = pilot.app.screen
        form.query_one("#ack-provider").value = ""
        form.query_one("#ack-provider").focus()
        await pilot.press("enter")
        # Focus a button, so no text cursor blinks in the picture.
        form.query_one("#ack-cancel").focus()
        await pilot.pause()

    assert snap_compare(make_app(seeded), run_before=run_before)


def test_live_run_confirmation_refused_without_ack(seeded: Runtime, snap_compare: Snap) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await keys_then_settle("4", "L")(pilot)
        # The preview's dry-run is a recorded run: the lists behind the dialog reload for it.
        await pilot.pause(0.2)
        await settle(pilot)

    assert snap_compare(make_app(seeded), terminal_size=(100, 30), run_before=run_before)


# The console's modals at both sizes: a record in full (with its links and what names it),
# a send's confirmation (Cancel focused), this screen's help, and the Messages view.
MODALS = {
    "record_detail": ("4", "tab", "enter"),
    "confirm_send": ("2", "d"),
    "help_executive": ("5", "question_mark"),
    "messages": ("4", "r", "m"),
}


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("modal", MODALS)
def test_modal(seeded: Runtime, snap_compare: Snap, modal: str, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(seeded), terminal_size=size,
                        run_before=keys_then_settle(*MODALS[modal]))
