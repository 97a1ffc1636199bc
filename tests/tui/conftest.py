"""Console fixtures: the app built as production builds it, on a seeded temp database,
with a frozen clock and counter-based record IDs so screens look the same on every run."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.worker import WorkerCancelled

import store.ids
from cavra_tui.app import CavraApp
from cavra_tui.bootstrap import Runtime, build_runtime
from tests.conftest import SteppingClock
from workflows.demo import seed_demo_data

USER = "dana"


class CountingIds:
    """Stands in for ``secrets`` inside store.ids: esc-0000000001, dlv-0000000002, …"""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def token_hex(self, nbytes: int) -> str:
        return f"{next(self._next):0{nbytes * 2}x}"


@pytest.fixture(autouse=True)
def _plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Snapshots must not depend on the developer's colour settings, nor on the terminal
    the tests run in (TERM/COLORTERM pick Rich's colour system): truecolor, as most SSH
    clients; tests of 16-colour terminals set it themselves."""
    import textual.constants

    for name in ("NO_COLOR", "TEXTUAL_THEME", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "truecolor")


@pytest.fixture
def counting_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store.ids, "secrets", CountingIds())


@pytest.fixture
def open_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 clock: SteppingClock) -> Iterator[Callable[..., Runtime]]:
    """Runtimes on ``cavra.db`` in the test's folder. The URL is relative, so the header
    (which shows the database) reads the same in every run."""
    monkeypatch.chdir(tmp_path)
    built: list[Runtime] = []

    def make(config: str | None = None, *, read_only: bool = False,
             user: str = USER) -> Runtime:
        config_path = None
        if config is not None:
            path = tmp_path / "cavra.toml"
            path.write_text(config, encoding="utf-8")
            config_path = str(path)
        runtime = build_runtime(db_url="sqlite:///cavra.db", config_path=config_path,
                                read_only=read_only, clock=clock, user=user)
        built.append(runtime)
        return runtime

    yield make
    for runtime in built:
        runtime.close()


@pytest.fixture
def runtime(open_runtime: Callable[..., Runtime]) -> Runtime:
    return open_runtime()


@pytest.fixture
def seeded(runtime: Runtime, counting_ids: None) -> Runtime:
    seed_demo_data(runtime.ctx, runtime.registry)
    return runtime


def make_app(runtime: Runtime) -> CavraApp:
    return CavraApp(runtime, start_scheduler=False, live_refresh=False)


async def settle(pilot: Pilot[None]) -> None:
    """Wait until every load and action worker has finished and its results are shown
    (a finished load can start another, e.g. a plan's details)."""
    app = pilot.app
    for _ in range(20):
        # An exclusive load replaced by a newer one ends cancelled: wait for the newer one.
        with contextlib.suppress(WorkerCancelled):
            await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(not worker.is_finished for worker in app.workers):
            await pilot.pause()
            if not any(not worker.is_finished for worker in app.workers):
                return
