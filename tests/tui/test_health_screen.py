"""The Health screen (7) lists every `cavra health` alert with its figures; the dashboard's
Health tile shows the worst one. Checked against what `cavra health --json` prints for the
same database at the same (frozen) time."""

from __future__ import annotations

import json
from typing import Any

import pytest
from textual.widgets import Static

from cavra_tui.bootstrap import Runtime
from cavra_tui.cli_inspect import health
from cavra_tui.cli_parser import build_parser
from cavra_tui.widgets.metric_tile import MetricTile
from cavra_tui.widgets.record_table import RecordTable
from tests.tui.conftest import make_app, settle


def _cli_health(runtime: Runtime, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    parser = build_parser()
    args = parser.parse_args(["health", "--json"])
    assert health(runtime, args) == 0  # the CLI's handler, on the console's runtime and clock
    shown: dict[str, Any] = json.loads(capsys.readouterr().out)
    return shown


async def test_every_alert_is_listed_with_its_figures(seeded: Runtime,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    expected = _cli_health(seeded, capsys)
    alerts = expected["alerts"]
    assert isinstance(alerts, list) and alerts, "the demo story raises alerts"
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("7")
        await settle(pilot)
        table = app.screen.query_one("#alerts", RecordTable)
        assert [str(table.get_row_at(i)[1]) for i in range(table.row_count)] == [
            a["code"] for a in alerts]
        assert expected["status"] in str(table.border_title)
        figures = str(app.screen.query_one("#figures", Static).render())
        first = alerts[0]
        assert first["code"] in figures and first["message"] in figures
        for name in first["figures"]:
            assert name.replace("_", " ") + ":" in figures
        if table.row_count > 1:  # the pane follows the cursor
            await pilot.press("down")
            await settle(pilot)
            assert alerts[1]["code"] in str(app.screen.query_one("#figures", Static).render())


async def test_the_dashboard_tile_shows_the_worst_alert(seeded: Runtime,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    expected = _cli_health(seeded, capsys)
    order = {"critical": 0, "warning": 1, "info": 2}
    alerts = sorted(expected["alerts"], key=lambda a: order[a["severity"]])  # type: ignore
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        tile = str(app.screen.query_one("#tile-health", MetricTile).render())
        assert str(expected["status"]) in tile
        worst = next((a for a in alerts if a["severity"] != "info"), None)
        assert (worst["code"] if worst else "no alerts") in tile
