"""The glyphs the console draws beyond ASCII, and what it draws instead on a terminal that
cannot show them: the Linux virtual console (``TERM=linux``) or ``cavra --ascii``.

Decided once, before the console runs (``configure``). Widgets pass their own words through
``text`` (``…`` may become ``...`` there: the width is measured afterwards). Everything else
on screen — Textual's borders and scrollbars, status glyphs, sparkline bars, the record
screens' ``↗`` — goes through one line filter that swaps each glyph for ASCII of the same
width, so the layout does not move. Characters it does not know (names in stored data) are
left as they are.

Textual calls line filters "internal": the filter is added to ``App._filters``, here only;
tests/tui/test_low_colour_terminals.py fails loudly if that hook changes.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping
from typing import Any

from rich.segment import Segment
from textual.app import App
from textual.color import Color
from textual.filter import LineFilter
from textual.scrollbar import ScrollBar, ScrollBarRender

# One cell each, like the glyph it replaces.
CELLS: dict[str, str] = {
    # arrows and marks in the console's own words
    "↑": "^", "↓": "v", "←": "<", "→": ">", "↗": ">", "↻": "~", "⟳": "*", "›": ">",
    "‹": "<", "·": "-", "•": "*", "…": ".", "—": "-", "–": "-", "×": "x",
    # status glyphs (cavra_tui.formatting): the word beside each keeps its meaning
    "✓": "+", "✗": "x", "○": "o", "●": "*", "■": "#", "▲": "^", "△": "^", "▼": "v",
    "▽": "v", "▶": ">", "◀": "<", "✕": "x", "✔": "+", "✘": "x",
    # sparkline bars, lowest to highest (also the ends of Textual's "tall" borders)
    "▁": "_", "▂": ".", "▃": "-", "▄": "=", "▅": "+", "▆": "*", "▇": "%", "█": "#",
    "▀": "=", "▔": "-", "░": ".", "▒": ":", "▓": "#",
}
# Where the console's own words have room for more than one character.
WORDS: dict[str, str] = {"…": "...", "→": "->"}
WIDE: dict[str, str] = {"🔎": "> "}  # two cells: the command palette's search icon

_ascii = False


def _box_drawing(char: str) -> str:
    """Box drawing (U+2500–257F) and block elements (U+2580–259F), by their Unicode names."""
    name = unicodedata.name(char, "")
    if "QUADRANT" in name or " AND " in name or "ARC" in name:
        return "+"
    if "DIAGONAL" in name:
        return "X" if "CROSS" in name else "/" if "UPPER RIGHT" in name else "\\"
    if "HORIZONTAL" in name or name.endswith((" LEFT", " RIGHT")):
        return "-"
    if "VERTICAL" in name or name.endswith((" UP", " DOWN")):
        return "|"
    if name.startswith(("LEFT", "RIGHT")):  # the eighth blocks of borders and scrollbars
        return "|"
    return "#"


def _cell_table() -> dict[int, str]:
    table = {code: _box_drawing(chr(code)) for code in range(0x2500, 0x25A0)}
    table.update({ord(glyph): ascii_ for glyph, ascii_ in {**CELLS, **WIDE}.items()})
    return table


_CELL_TABLE = _cell_table()
_WORD_TABLE = {**_CELL_TABLE, **{ord(glyph): ascii_ for glyph, ascii_ in WORDS.items()}}


def ascii_only() -> bool:
    return _ascii


def text(words: str) -> str:
    """``words`` as this terminal can draw them."""
    return words.translate(_WORD_TABLE) if _ascii else words


def cells(line: str) -> str:
    """``line`` with each glyph replaced by ASCII of the same width (what the filter does)."""
    return line if line.isascii() else line.translate(_CELL_TABLE)


class AsciiCells(LineFilter):
    """Swaps every known glyph in what a widget draws for ASCII of the same width."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [segment if segment.control or segment.text.isascii()
                else Segment(cells(segment.text), segment.style, segment.control)
                for segment in segments]


class AsciiScrollBarRender(ScrollBarRender):
    """Scrollbars in whole cells: the thumb is its colour, with no eighth-block ends."""

    VERTICAL_BARS = [" "] * 8
    HORIZONTAL_BARS = [" "] * 8


def wants_ascii(requested: bool, environ: Mapping[str, str] = os.environ) -> bool:
    """``--ascii``, or the Linux virtual console, whose fonts lack most of these glyphs."""
    return requested or environ.get("TERM", "") == "linux"


def use_ascii(on: bool) -> None:
    """Switch the console's own words and the scrollbars (process-wide) to ASCII, or back."""
    global _ascii
    _ascii = on
    ScrollBar.renderer = AsciiScrollBarRender if on else ScrollBarRender


def configure(app: App[Any], *, requested: bool,
              environ: Mapping[str, str] = os.environ) -> bool:
    """Decide for ``app`` before it runs; True when it draws ASCII only."""
    on = wants_ascii(requested, environ)
    use_ascii(on)
    if on and not any(isinstance(f, AsciiCells) for f in app._filters):
        app._filters.append(AsciiCells())
    return on
