"""How `cavra` starts: a placeholder first frame while a worker opens the database, then the
dashboard; a config or database error leaves a clear screen saying why, and `q` quits with
the command line's exit code (2)."""

from __future__ import annotations

import threading
from pathlib import Path

from textual.widgets import Static

from cavra_tui.app import StartingCavraApp
from cavra_tui.bootstrap import Runtime
from cavra_tui.console import ConsoleOptions
from cavra_tui.screens.start_failed import StartFailedScreen
from cavra_tui.screens.starting import StartingScreen
from tests.tui.conftest import settle


def _app(options: ConsoleOptions) -> StartingCavraApp:
    return StartingCavraApp(options.open_runtime, start_scheduler=False, live_refresh=False)


def _text(app: StartingCavraApp) -> str:
    return "\n".join(str(widget.render()) for widget in app.screen.query(Static))


async def _failed_screen(app: StartingCavraApp) -> str:
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, StartFailedScreen)
        shown = _text(app)
        await pilot.press("q")
    assert app.return_code == 2
    return shown


async def test_a_bad_config_file_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "cavra.toml"
    config.write_text("[retry]\nmax_attempt = 3\n", encoding="utf-8")
    app = _app(ConsoleOptions(db_url=f"sqlite:///{tmp_path / 'cavra.db'}",
                              config_path=str(config)))
    shown = await _failed_screen(app)
    assert "The console could not start." in shown
    assert "retry.max_attempt: unknown key" in shown
    assert "Press q to quit." in shown
    assert not (tmp_path / "cavra.db").exists()  # refused before the database was touched


async def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("these are my notes, not a database\n" * 100, encoding="utf-8")
    shown = await _failed_screen(_app(ConsoleOptions(db_url=f"sqlite:///{notes}")))
    assert f"database: cannot open sqlite:///{notes}: file is not a database" in shown
    assert notes.read_text(encoding="utf-8").startswith("these are my notes")


async def test_the_first_frame_comes_before_the_database(tmp_path: Path) -> None:
    """The placeholder is painted while the runtime is still being built; then the dashboard
    replaces it."""
    may_open = threading.Event()
    options = ConsoleOptions(db_url=f"sqlite:///{tmp_path / 'cavra.db'}")

    def slow_open() -> Runtime:
        assert may_open.wait(timeout=30)
        return options.open_runtime()

    app = StartingCavraApp(slow_open, start_scheduler=False, live_refresh=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, StartingScreen)
        assert "Opening the database…" in _text(app)
        assert not (tmp_path / "cavra.db").exists()
        may_open.set()
        await settle(pilot)
        assert type(app.screen).__name__ == "DashboardScreen"
        assert "CAVRA Dashboard" in str(app.screen.query_one("#header", Static).render())
        await pilot.press("4")  # the other screens are there too
        await settle(pilot)
        assert type(app.screen).__name__ == "RetryRunsScreen"
    assert app.started
    app.runtime.close()
