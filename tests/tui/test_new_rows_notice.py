"""Rows that arrive above the cursor are announced, not hidden: the list's border says
`↑ N new · Home`, Home jumps to them and the notice goes (SPEC §11)."""

from __future__ import annotations

from cavra_tui.bootstrap import Runtime
from cavra_tui.widgets.record_table import RecordTable
from tests.tui.conftest import make_app, settle
from workflows.worker import run_retry_worker


async def test_new_rows_above_the_cursor_are_announced_and_home_reaches_them(
        seeded: Runtime) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        await settle(pilot)
        runs = app.screen.query_one("#runs", RecordTable)
        runs.focus()
        await pilot.press("end")  # further down the list
        await settle(pilot)
        assert runs.cursor_row > 0
        below = runs.selected_id()
        # Another process (here: the same file, another call) records two worker runs.
        first = run_retry_worker(seeded.ctx, seeded.registry).run.run_id
        second = run_retry_worker(seeded.ctx, seeded.registry).run.run_id
        app.refresh_data()
        await settle(pilot)
        assert runs.selected_id() == below  # the cursor kept its record …
        assert runs.border_subtitle == "↑ 2 new · Home"  # … and says what arrived
        await pilot.press("home")
        await settle(pilot)
        assert runs.selected_id() == second and first in runs.record_ids
        assert runs.border_subtitle is None
