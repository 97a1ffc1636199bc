"""Opens the Textual console on a built runtime."""

from __future__ import annotations

from cavra_tui.bootstrap import Runtime


def run_console(runtime: Runtime) -> int:
    from cavra_tui.app import CavraApp

    CavraApp(runtime).run()
    return 0
