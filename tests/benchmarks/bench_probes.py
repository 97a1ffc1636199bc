"""One measured process of bench_console.py: the CAVRA console on the big database, or a bare
Textual app with an empty DataTable. Run by bench_console.py, one fresh process per run.

    python bench_probes.py console|bare --out result.json [--db PATH --config PATH] [--presses N]

A "frame" is one screen update the compositor hands to the app for output. Headless mode
skips writing it to a terminal, so the hook below still turns it into escape sequences (what
the real driver writes) before taking the time: both apps pay that cost alike.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()  # before any heavy import: perf_counter is system-wide monotonic

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from textual._compositor import CompositorUpdate  # noqa: E402
from textual.app import App, ComposeResult  # noqa: E402
from textual.pilot import Pilot  # noqa: E402
from textual.screen import Screen  # noqa: E402
from textual.widgets import DataTable  # noqa: E402

SIZE = (120, 40)
QUIET_S = 0.3  # no frame and no worker for this long: the screen has settled
NOTHING_S = 1.0  # a key that paints nothing within this long painted nothing
LIMIT_S = 60.0
BASELINE_ROWS = 1_000  # rows in the bare app's table for the page-down baseline


def memory_kib() -> dict[str, int]:
    """Resident set size now and at its peak, from /proc/self/status."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


class FrameClock:
    """Records when each frame was ready for the terminal, and where the cursor of a watched
    table was in it."""

    def __init__(self, app: App[Any]) -> None:
        self.times: list[float] = []
        self.screens: list[str] = []  # the class of the screen each frame showed
        self.cursors: list[int | None] = []
        self.table: DataTable[Any] | None = None
        original: Callable[[Screen[Any], Any], None] = app._display

        def display(screen: Screen[Any], renderable: Any) -> None:
            if renderable is not None:
                if isinstance(renderable, CompositorUpdate):
                    renderable.render_segments(app.console)
                self.times.append(time.perf_counter())
                self.screens.append(type(screen).__name__)
                self.cursors.append(self.table.cursor_row if self.table else None)
            original(screen, renderable)

        app._display = display  # type: ignore[method-assign]

    def after(self, moment: float) -> list[float]:
        return [t for t in self.times if t >= moment]

    def first_of(self, screen: str) -> float | None:
        return next((t for t, shown in zip(self.times, self.screens, strict=True)
                     if shown == screen), None)

    def first_with_cursor(self, moment: float, row: int) -> float | None:
        return next((t for t, cursor in zip(self.times, self.cursors, strict=True)
                     if t >= moment and cursor == row), None)


async def settle(app: App[Any], clock: FrameClock, since: float,
                 showing: str | None = None) -> float | None:
    """The time of the last frame after ``since`` once the app has gone quiet: no worker
    running and no new frame for QUIET_S (and, with ``showing``, a frame of that screen was
    painted: between the console's start-up worker ending and the dashboard's first frame
    nothing runs, but the console is not done). None if nothing was painted."""
    deadline = since + LIMIT_S
    while True:
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        busy = any(worker.is_running or worker.state.name == "PENDING" for worker in app.workers)
        busy = busy or (showing is not None and showing not in clock.screens)
        frames = clock.after(since)
        if not frames and not busy and now - since >= NOTHING_S:
            return None
        if frames and not busy and now - frames[-1] >= QUIET_S:
            return frames[-1]
        if now > deadline:
            return frames[-1] if frames else None


async def switch(app: App[Any], pilot: Pilot[Any], clock: FrameClock, key: str) -> float | None:
    """Key press → the screen it shows has settled (seconds)."""
    pressed = time.perf_counter()
    await pilot.press(key)
    painted = await settle(app, clock, pressed)
    return None if painted is None else painted - pressed


@dataclass
class PageDowns:
    shown_s: list[float | None] = field(default_factory=list)  # key → rows on screen
    settled_s: list[float | None] = field(default_factory=list)  # … and any prefetch shown
    fetched: list[bool] = field(default_factory=list)  # the press loaded the next page
    stalled: list[bool] = field(default_factory=list)  # moved less than a page: rows missing


async def page_downs(app: App[Any], pilot: Pilot[Any], clock: FrameClock, table: DataTable[Any],
                     presses: int) -> PageDowns:
    """Per press: from the key to the first frame with the cursor on its new row (what the
    user waits for), and to the last frame the press caused (e.g. a page prefetched ahead).
    A press that moved the cursor less than the first press did ran out of loaded rows."""
    result = PageDowns()
    clock.table = table
    step: int | None = None
    for _ in range(presses):
        rows_before, cursor_before = table.row_count, table.cursor_row
        pressed = time.perf_counter()
        await pilot.press("pagedown")
        settled = await settle(app, clock, pressed)
        moved = table.cursor_row - cursor_before
        step = step or moved
        shown = clock.first_with_cursor(pressed, table.cursor_row)
        result.shown_s.append(None if shown is None else shown - pressed)
        result.settled_s.append(None if settled is None else settled - pressed)
        result.fetched.append(table.row_count > rows_before)
        result.stalled.append(moved < step)
    clock.table = None
    return result


class BareTableScreen(Screen[None]):
    def compose(self) -> ComposeResult:
        yield DataTable()


class BareApp(App[None]):
    """The baseline: a Textual app with an empty DataTable, and a second such screen on "4"
    so a screen switch can be timed the same way."""

    MODES = {"main": BareTableScreen, "other": BareTableScreen}  # noqa: RUF012
    DEFAULT_MODE = "main"
    BINDINGS = [("1", "switch_mode('main')", "Main"),  # noqa: RUF012
                ("4", "switch_mode('other')", "Other")]


async def probe_bare(args: argparse.Namespace) -> dict[str, Any]:
    t_imported = time.perf_counter()
    imported_kib = memory_kib()["VmRSS"]
    app = BareApp()
    clock = FrameClock(app)
    t_run = time.perf_counter()
    async with app.run_test(headless=True, size=SIZE) as pilot:
        ready = await settle(app, clock, t_run)
        memory = memory_kib()
        first_visit = await switch(app, pilot, clock, "4")
        await switch(app, pilot, clock, "1")
        revisit = await switch(app, pilot, clock, "4")
        table = app.screen.query_one(DataTable)
        for label in ("When", "Status", "Plan/provider", "Reason", "Key", "Payload", "Id"):
            table.add_column(label)
        for n in range(BASELINE_ROWS):
            table.add_row("2026-11-26 23:44", "delivered", f"esc-{n:010x}/outbox", "would_deliver",
                          f"cavra:esc-{n:010x}:outbox:{n % 7}", f"{n:012x}", f"exe-{n:010x}")
        table.focus()
        await settle(app, clock, time.perf_counter())
        paging = await page_downs(app, pilot, clock, table, args.presses)
        memory_end = memory_kib()
        height, loaded = table.size.height, table.row_count
    return {"t_start": T_START, "t_imported": t_imported, "imported_kib": imported_kib,
            "t_run": t_run,
            "first_frame": clock.times[0], "dashboard_frame": clock.times[0], "runtime_s": None,
            "ready": ready, "rss_kib": memory["VmRSS"],
            "switch_s": first_visit, "revisit_s": revisit, "visible_rows": height,
            "pagedown_s": paging.shown_s, "pagedown_settled_s": paging.settled_s,
            "fetched": paging.fetched, "stalled": paging.stalled, "rows_loaded": loaded,
            "rss_end_kib": memory_end["VmRSS"],
            "hwm_kib": memory_end["VmHWM"]}


async def probe_console(args: argparse.Namespace) -> dict[str, Any]:
    """The console as `cavra` starts it: StartingCavraApp paints its placeholder, its worker
    builds the runtime (importing the store there), then the dashboard replaces it."""
    from datetime import datetime

    from cavra_tui.app import StartingCavraApp

    t_imported = time.perf_counter()
    imported_kib = memory_kib()["VmRSS"]
    built: dict[str, Any] = {}

    def open_runtime() -> Any:
        started = time.perf_counter()
        from cavra_tui.bootstrap import build_runtime
        from store.clock import fixed_clock

        built["runtime"] = build_runtime(db_url=f"sqlite:///{args.db}", config_path=args.config,
                                         clock=fixed_clock(datetime.fromisoformat(args.now)))
        built["seconds"] = time.perf_counter() - started
        return built["runtime"]

    app = StartingCavraApp(open_runtime, start_scheduler=False, live_refresh=False)
    clock = FrameClock(app)
    t_run = time.perf_counter()
    try:
        async with app.run_test(headless=True, size=SIZE) as pilot:
            ready = await settle(app, clock, t_run, showing="DashboardScreen")
            if type(app.screen).__name__ != "DashboardScreen":
                raise SystemExit(f"probe: the console did not start: {app.screen!r}")
            memory = memory_kib()
            first_visit = await switch(app, pilot, clock, "4")
            await switch(app, pilot, clock, "1")
            revisit = await switch(app, pilot, clock, "4")
            table = app.screen.query_one("#executions", DataTable)
            table.focus()
            await settle(app, clock, time.perf_counter())
            paging = await page_downs(app, pilot, clock, table, args.presses)
            memory_end = memory_kib()
            height, loaded = table.size.height, table.row_count
    finally:
        if "runtime" in built:
            built["runtime"].close()
    return {"t_start": T_START, "t_imported": t_imported, "imported_kib": imported_kib,
            "runtime_s": built.get("seconds"), "dashboard_frame": clock.first_of(
                "DashboardScreen"),
            "t_run": t_run, "first_frame": clock.times[0], "ready": ready,
            "rss_kib": memory["VmRSS"],
            "switch_s": first_visit, "revisit_s": revisit, "visible_rows": height,
            "pagedown_s": paging.shown_s, "pagedown_settled_s": paging.settled_s,
            "fetched": paging.fetched, "stalled": paging.stalled, "rows_loaded": loaded,
            "rss_end_kib": memory_end["VmRSS"],
            "hwm_kib": memory_end["VmHWM"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("bare", "console"))
    parser.add_argument("--out", required=True)
    parser.add_argument("--db")
    parser.add_argument("--config")
    parser.add_argument("--now", help="the console's frozen clock (ISO 8601)")
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--profile", help="write a cProfile of the event loop thread here")
    args = parser.parse_args()
    probe = probe_console if args.kind == "console" else probe_bare
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(asyncio.run, probe(args))
        profiler.dump_stats(args.profile)
    else:
        result = asyncio.run(probe(args))
    Path(args.out).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
