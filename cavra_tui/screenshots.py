"""Writes one SVG per console screen from the demo data: ``python -m cavra_tui.screenshots``.

The demo database is seeded in a temporary folder with a frozen clock, the console runs
headless at a fixed size, and each screen is saved once its data has loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from textual.pilot import Pilot

from cavra_tui.app import CavraApp
from cavra_tui.bootstrap import Runtime, build_runtime
from store.clock import fixed_clock
from workflows.demo import seed_demo_data

DEMO_NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DEMO_USER = "demo"


@dataclass(frozen=True)
class Shot:
    name: str
    keys: tuple[str, ...]
    size: tuple[int, int] = (120, 40)


SHOTS = (
    Shot("dashboard", ("1",)),
    Shot("dashboard-80x24", ("1",), (80, 24)),
    Shot("escalations", ("2",)),
    Shot("acknowledgements", ("3",)),
    Shot("ack-form", ("3", "a")),
    Shot("retry-runs", ("4",)),
    Shot("live-run-confirmation", ("4", "L")),
    Shot("executive", ("5",)),
    Shot("audit", ("6", "down")),
    Shot("health", ("7",)),
    Shot("help", ("question_mark",), (80, 24)),
    Shot("record-detail", ("4", "tab", "enter"), (80, 24)),
    Shot("confirm-send", ("2", "d")),
    Shot("messages", ("4", "r", "m"), (80, 24)),
)


async def settle(pilot: Pilot[None]) -> None:
    """Until every worker has finished and its results are on screen."""
    app = pilot.app
    for _ in range(20):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if all(worker.is_finished for worker in app.workers):
            return


async def take(runtime: Runtime, shot: Shot, folder: Path) -> Path:
    app = CavraApp(runtime, start_scheduler=False, live_refresh=False)
    async with app.run_test(size=shot.size) as pilot:
        await settle(pilot)
        for key in shot.keys:
            await pilot.press(key)
            await settle(pilot)
        app.clear_notifications()  # toasts from the steps above are not part of the screen
        await pilot.pause()
        return Path(app.save_screenshot(f"{shot.name}.svg", path=str(folder)))


def demo_runtime(folder: Path) -> Runtime:
    """The demo story, recorded at DEMO_NOW by a user named demo."""
    os.chdir(folder)  # a relative URL keeps the header free of temp paths
    config = folder / "cavra.toml"
    config.write_text("# defaults: the embedded outbox provider, single-operator mode\n",
                      encoding="utf-8")
    runtime = build_runtime(db_url="sqlite:///demo.db", config_path=str(config),
                            clock=fixed_clock(DEMO_NOW), user=DEMO_USER)
    seed_demo_data(runtime.ctx, runtime.registry)  # includes two schedules
    return runtime


def main(argv: Sequence[str] | None = None) -> int:
    import textual.constants

    # Truecolor, whatever terminal this runs in (TERM/COLORTERM pick Rich's colours).
    textual.constants.COLOR_SYSTEM = "truecolor"  # type: ignore[misc]  # as the env var would
    parser = argparse.ArgumentParser(prog="python -m cavra_tui.screenshots",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", default="screenshots", help="folder for the SVGs")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    home = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="cavra-shots-") as scratch:
        os.environ.setdefault("CAVRA_DATA_DIR", scratch)
        runtime = demo_runtime(Path(scratch))
        try:
            for shot in SHOTS:
                path = asyncio.run(take(runtime, shot, out))
                print(f"wrote {path}")
        finally:
            runtime.close()
            os.chdir(home)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
