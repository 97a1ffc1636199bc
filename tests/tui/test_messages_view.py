"""Compact toasts (at most 3 on screen, about 4 s) and the Messages view (`m`) that keeps
every one of them, so nothing is lost when a toast goes."""

from __future__ import annotations

from textual.widgets import DataTable

from cavra_tui.bootstrap import Runtime
from cavra_tui.screens.messages import MessagesScreen
from tests.tui.conftest import make_app, settle


async def test_toasts_are_few_and_short_and_all_are_kept(runtime: Runtime) -> None:
    app = make_app(runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for n in range(6):
            app.notify(f"message number {n} " + "x" * 300, title=f"step {n}")
        await pilot.pause()
        shown = list(app._notifications)
        assert len(shown) <= 3
        assert all(len(n.message) <= 140 and n.timeout <= 8 for n in shown)
        await pilot.press("m")
        await settle(pilot)
        assert isinstance(app.screen, MessagesScreen)
        table = app.screen.query_one("#messages-table", DataTable)
        rows = [str(table.get_row_at(i)[2]) for i in range(table.row_count)]
        assert len(rows) >= 6 and rows[0].startswith("step 5: message number 5")
        assert "x" * 300 in rows[0]  # the whole text, not the toast's cut
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, MessagesScreen)
