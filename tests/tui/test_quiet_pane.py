"""The Dashboard's scheduler pane shows active and upcoming quiet windows in one line each,
and nothing about them when there are none."""

from __future__ import annotations

from cavra_tui.bootstrap import Runtime
from cavra_tui.widgets.scheduler_pane import SchedulerPane
from store.services.quiet_windows import add_quiet_window, remove_quiet_window
from tests.tui.conftest import make_app, settle
from tests.tui.test_console import rendered_text

SIZE = (120, 40)


async def test_the_scheduler_pane_shows_quiet_windows(runtime: Runtime) -> None:
    add_quiet_window(runtime.ctx, name="db-maint", providers=["outbox"], starts="now",
                     ends="+2h")
    add_quiet_window(runtime.ctx, name="failover", providers=["outbox"],
                     starts="2026-11-27T19:30:00+01:00", ends="+1d",
                     severities=["warning", "critical"])
    app = make_app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = rendered_text(app.screen.query_one(SchedulerPane))
        assert "quiet: db-maint (outbox) until 14:00 UTC" in text
        assert "quiet from 18:30 UTC: failover (outbox) +critical" in text

        remove_quiet_window(runtime.ctx, "db-maint")
        remove_quiet_window(runtime.ctx, "failover")
        app.refresh_data()
        await settle(pilot)
        assert "quiet" not in rendered_text(app.screen.query_one(SchedulerPane))
