"""`F` on a list follows it, like `less +F`: as rows arrive on top the cursor goes to the
newest, so it stays in view; the border says so; moving the cursor by hand stops it (issue 12).
"""

from __future__ import annotations

from cavra_tui.bootstrap import Runtime
from cavra_tui.widgets.record_table import RecordTable
from tests.tui.conftest import make_app, settle
from workflows.worker import run_retry_worker

FOLLOWING = "following new rows · F stops"


async def test_follow_keeps_the_newest_row_highlighted_until_the_cursor_moves(
        seeded: Runtime) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        await settle(pilot)
        runs = app.screen.query_one("#runs", RecordTable)
        runs.focus()
        await pilot.press("end")
        await settle(pilot)
        assert runs.cursor_row > 0
        await pilot.press("F")  # back to the newest row, and follow from now on
        await settle(pilot)
        assert runs.following and runs.cursor_row == 0
        assert runs.border_subtitle == FOLLOWING
        for _ in range(2):
            # Another process (here: the same file, another call) records a worker run.
            newest = run_retry_worker(seeded.ctx, seeded.registry).run.run_id
            app.refresh_data()
            await settle(pilot)
            assert runs.selected_id() == newest and runs.cursor_row == 0
            assert runs.scroll_y == 0  # in view
            assert runs.border_subtitle == FOLLOWING  # and no "↑ N new": nothing is above
        await pilot.press("down")  # moving by hand stops following
        await settle(pilot)
        assert not runs.following and runs.border_subtitle is None
        below = runs.selected_id()
        arrived = run_retry_worker(seeded.ctx, seeded.registry).run.run_id
        app.refresh_data()
        await settle(pilot)
        assert runs.selected_id() == below and arrived in runs.record_ids
        assert runs.border_subtitle == "↑ 1 new · Home"  # the notice of a list not followed


async def test_f_again_stops_following_and_the_screen_subtitle_comes_back(
        seeded: Runtime) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        await settle(pilot)
        runs = app.screen.query_one("#runs", RecordTable)
        runs.focus()
        runs.border_subtitle = "the screen's own note"
        await pilot.press("F")
        await pilot.pause()
        assert runs.border_subtitle == FOLLOWING
        await pilot.press("F")
        await pilot.pause()
        assert not runs.following and runs.border_subtitle == "the screen's own note"
        top = runs.selected_id()
        run_retry_worker(seeded.ctx, seeded.registry)
        app.refresh_data()
        await settle(pilot)
        assert runs.selected_id() == top  # not followed: the cursor keeps its record
