"""The console on a 16-colour terminal and on one that draws ASCII only (issue 12): the
unfocused cursor row does not look like the header; `--ascii` (or TERM=linux) puts no glyph
outside ASCII on the screen.

The ASCII screen relies on Textual's line filters (``App._filters``, see cavra_tui.glyphs):
if that hook changes, ``glyphs.configure`` or the first test here fails loudly.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import textual.constants
from rich.cells import cell_len
from rich.color import Color, ColorSystem
from rich.style import Style
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.widgets import Input

import cavra_tui.console
from cavra_tui import cli, glyphs
from cavra_tui.app import CavraApp, StartingCavraApp
from cavra_tui.bootstrap import Runtime
from cavra_tui.console import ConsoleOptions, run_console
from cavra_tui.widgets.record_table import RecordTable
from tests.tui.conftest import make_app, settle
from workflows.worker import run_retry_worker


@pytest.fixture
def ascii_console() -> Iterator[None]:
    yield
    glyphs.use_ascii(False)  # process-wide (the scrollbars): back for the next test


def drawn_text(app: CavraApp) -> str:
    """Every character of the screen, as the screenshot holds it."""
    svg = app.export_screenshot()
    shown = "".join(re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S))
    return html.unescape(shown).replace("\xa0", " ")  # the SVG writes spaces as &#160;


def not_ascii(text: str) -> str:
    return "".join(sorted({char for char in text if not char.isascii()}))


async def test_with_ascii_no_glyph_outside_ascii_is_drawn(seeded: Runtime,
                                                          ascii_console: None) -> None:
    app = make_app(seeded)
    assert glyphs.configure(app, requested=True, environ={"TERM": "xterm-256color"})
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        views = {"dashboard": ("1",), "escalations": ("2",), "acknowledgements": ("3",),
                 "retry runs": ("4",), "executive": ("5",), "audit": ("6",), "health": ("7",),
                 "filter box": ("2", "slash", "e"), "record": ("escape", "enter"),
                 "help": ("escape", "question_mark"), "palette": ("escape", "ctrl+p")}
        seen = {}
        for view, keys in views.items():
            for key in keys:
                await pilot.press(key)
                await settle(pilot)
            seen[view] = not_ascii(drawn_text(app))
        assert seen == dict.fromkeys(views, "")
        await pilot.press("escape", "escape", "4")
        await settle(pilot)
        # The widgets' own words too: the new-rows notice and the filter's placeholder.
        runs = app.screen.query_one("#runs", RecordTable)
        runs.focus()
        await pilot.press("end")
        run_retry_worker(seeded.ctx, seeded.registry)
        app.refresh_data()
        await settle(pilot)
        assert runs.border_subtitle == "^ 1 new - Home"
        assert app.screen.query_one("#filter", Input).placeholder.isascii()


async def test_without_ascii_the_console_keeps_its_glyphs(seeded: Runtime) -> None:
    app = make_app(seeded)
    assert not glyphs.configure(app, requested=False, environ={"TERM": "xterm-256color"})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        assert "╭" in drawn_text(app) and "·" in drawn_text(app)


def test_term_linux_or_the_flag_asks_for_ascii(ascii_console: None, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert glyphs.wants_ascii(False, {"TERM": "linux"})
    assert glyphs.wants_ascii(True, {"TERM": "xterm-256color"})
    assert not glyphs.wants_ascii(False, {"TERM": "xterm-256color"})
    assert not glyphs.wants_ascii(False, {})
    # `cavra --ascii` and `cavra demo --ascii` reach the console …
    asked: list[ConsoleOptions] = []
    monkeypatch.setenv("CAVRA_DATA_DIR", str(tmp_path))

    def console_asked(options: ConsoleOptions) -> int:
        asked.append(options)
        return 0

    monkeypatch.setattr(cavra_tui.console, "run_console", console_asked)
    for argv in (["--ascii"], ["demo", "--ascii"], []):
        assert cli.main(argv) == 0
    assert [options.ascii for options in asked] == [True, True, False]
    # … which draws ASCII from its first frame (the app is not run here).
    made: list[StartingCavraApp] = []
    monkeypatch.setattr(StartingCavraApp, "run", lambda self, **kw: made.append(self))
    monkeypatch.setenv("TERM", "linux")
    assert run_console(ConsoleOptions(db_url=f"sqlite:///{tmp_path / 'x.db'}")) == 0
    assert glyphs.ascii_only() and any(isinstance(f, glyphs.AsciiCells)
                                       for f in made[0].get_line_filters())
    assert ScrollBar.renderer is glyphs.AsciiScrollBarRender
    glyphs.use_ascii(False)
    assert ScrollBar.renderer is ScrollBarRender


def test_every_stand_in_is_ascii_of_the_same_width() -> None:
    for glyph, stand_in in {**glyphs.CELLS, **glyphs.WIDE}.items():
        assert stand_in.isascii() and cell_len(stand_in) == cell_len(glyph), glyph
    box_and_blocks = "".join(chr(code) for code in range(0x2500, 0x25A0))
    assert glyphs.cells(box_and_blocks).isascii()
    assert len(glyphs.cells(box_and_blocks)) == len(box_and_blocks)
    assert glyphs.cells("José → ✓") == "José > +"  # names in stored data are left alone


# -- 16 colours ----------------------------------------------------------------------------

def looks(style: Style, system: ColorSystem) -> tuple[object, ...]:
    """A cell's style as a terminal with ``system`` shows it."""

    def shown(color: Color | None) -> object:
        return None if color is None else color.downgrade(system).get_truecolor()

    return (shown(style.color), shown(style.bgcolor), bool(style.bold),
            bool(style.underline), bool(style.reverse))


@pytest.mark.parametrize("system", ["standard", "truecolor"])
async def test_an_unfocused_cursor_row_does_not_look_like_the_header(
        seeded: Runtime, monkeypatch: pytest.MonkeyPatch, system: str) -> None:
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", system)  # as TEXTUAL_COLOR_SYSTEM
    app = make_app(seeded)
    assert app.console.color_system == system
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        routes = app.screen.query_one("#routes", RecordTable)
        assert not routes.has_focus and routes.row_count and routes.cursor_row == 0
        box = routes.content_region
        header = app.screen.get_style_at(box.x + 1, box.y)
        cursor = app.screen.get_style_at(box.x + 1, box.y + 1)
        other = app.screen.get_style_at(box.x + 1, box.y + 2)
        shown = ColorSystem.STANDARD if system == "standard" else ColorSystem.TRUECOLOR
        assert looks(header, shown) != looks(cursor, shown)
        assert looks(cursor, shown) != looks(other, shown)  # and the cursor row shows
        # Only a terminal with few colours gets the other header: the usual look stays.
        assert routes.has_class("-few-colours") == (system == "standard")
