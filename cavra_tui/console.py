"""Opens the Textual console. The runtime is built by the console itself, in a worker after its
first frame, so `cavra` paints before the store, SQLAlchemy and pydantic are imported."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cavra_tui.bootstrap import Runtime


@dataclass(frozen=True)
class ConsoleOptions:
    db_url: str | None = None
    config_path: str | None = None
    read_only: bool = False
    demo: bool = False  # `cavra demo`: the demo database, seeded if it is empty
    ascii: bool = False  # `--ascii`: draw ASCII only (also on TERM=linux; cavra_tui.glyphs)

    def open_runtime(self) -> Runtime:
        """Runs in the console's start-up worker: everything heavy is imported here."""
        from cavra_tui.bootstrap import build_runtime

        return build_runtime(db_url=self.db_url, config_path=self.config_path,
                             read_only=self.read_only,
                             default_db_name="demo.db" if self.demo else "cavra.db")


def seed_demo(runtime: Runtime) -> None:
    """`cavra demo`: the demo story, only into an empty database (in the start-up worker)."""
    from workflows.demo import seed_demo_data

    seed_demo_data(runtime.ctx, runtime.registry, only_if_empty=True)


def run_console(options: ConsoleOptions) -> int:
    """The console's exit code: 0, or what the command line would exit with when the console
    could not start (2 for a config or database error)."""
    from cavra_tui import glyphs
    from cavra_tui.app import StartingCavraApp

    app = StartingCavraApp(options.open_runtime, prepare=seed_demo if options.demo else None)
    glyphs.configure(app, requested=options.ascii)
    try:
        app.run()
    finally:
        if app.started:
            for warning in app.runtime.warnings:  # shown in the console too; kept on stderr
                sys.stderr.write(f"cavra: warning: {warning}\n")
            if options.demo:  # the CLI must look at the same file, not a new cavra.db
                sys.stderr.write(f"cavra: the demo database: cavra --db "
                                 f"{app.runtime.db.describe()} metrics\n")
            app.runtime.close()
    return app.return_code or 0
