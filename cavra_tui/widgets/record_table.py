"""A DataTable of records that keeps its cursor and scroll position when data refreshes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.scrollbar import ScrollBar
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from cavra_tui import actions, glyphs
from cavra_tui.messages import CursorMovedByUser, NeedMoreRows
from store.text import visible

Row = tuple[str, tuple[Any, ...]]  # (record id used as the row key, cells)
MIN_PREFETCH_ROWS = 3
# Colour systems in which the header and an unfocused cursor row come out the same grey bar
# (16 colours: TERM=linux, a plain xterm; or none): see "-few-colours" in console.tcss.
FEW_COLOURS = frozenset({"standard", "windows", None})


def safe_cell(cell: Any) -> Any:
    """Stored text is data, never markup or terminal control: DataTable parses a plain str
    cell as Rich markup (``[red]``, ``[link=…]``), so every cell becomes Text, with control
    characters written as visible escapes."""
    if isinstance(cell, str):
        return Text(visible(cell), end="")
    if isinstance(cell, Text) and visible(cell.plain) != cell.plain:
        return Text(visible(cell.plain), end="")
    return cell


def safe_rows(rows: Sequence[Row]) -> list[Row]:
    return [(key, tuple(safe_cell(cell) for cell in cells)) for key, cells in rows]


def match_words(count: int, capped: bool = False) -> str:
    """``no matches``, ``1 match``, ``12 matches``, ``1,000+ matches`` (a bounded count)."""
    if capped:
        return f"{count:,}+ matches"
    return "no matches" if count == 0 else "1 match" if count == 1 else f"{count:,} matches"


class RecordTable(DataTable[Any]):
    """Shows pages of records. It never queries anything: screens hand it rows.

    On refresh the newest page is merged with what is loaded: rows whose content changed are
    updated in place, new rows are placed on top, and the cursor stays on the same record —
    unless the list follows (``F``, like ``less +F``): then the cursor goes to the newest row.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        # In a list of records Home/End mean the first/last row (DataTable: first/last column).
        Binding("home", "scroll_top", "Top", show=False),
        Binding("end", "scroll_bottom", "Bottom", show=False),
        *actions.bindings(actions.TABLE),  # F: follow
    ]

    def __init__(self, columns: Sequence[tuple[str, str]], *, id: str,
                 title: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._columns = list(columns)
        self._rows: list[Row] = []
        # row key → the record the row shows: actions read the record, never cell positions
        # (columns move, e.g. for 80 columns).
        self.records: dict[str, Any] = {}
        self._unseen = 0  # rows that arrived above the cursor since it was last at the top
        self._unseen_label: str | None = None
        self._saved_subtitle: str | None = None
        self._match_label: str | None = None  # "12 matches" while the screen is filtered
        self._saved_title: str | None = None
        self.following = False  # F: keep the newest row highlighted as rows arrive
        self.has_more = False
        self.loading_more = False
        self.pending_focus: str | None = None  # a record just created here: move onto it
        self._restyled = False  # styles were applied again since the rows were last drawn
        self._drawn_with: tuple[Any, ...] | None = None  # the styles the cached rows used
        if title:
            self.border_title = title

    # Textual applies every widget's styles again whenever a screen is shown again, and
    # DataTable then drops every row it has drawn and draws them all again (~40 ms for a
    # screen of three lists). The styles rarely change there: the rows are dropped only
    # when a style they are drawn with did (focus, hover and the base style are in the
    # cache keys already).

    def notify_style_update(self) -> None:
        super(DataTable, self).notify_style_update()  # not DataTable's: it drops them
        self._restyled = True
        self.refresh()

    def _row_styles(self) -> tuple[Any, ...]:
        return (self.rich_style, *(self.get_component_rich_style(name, default=Style())
                                   for name in sorted(self._get_component_classes())))

    def render_lines(self, crop: Region) -> list[Strip]:
        if self._restyled:
            self._restyled = False
            styles = self._row_styles()
            if styles != self._drawn_with:
                self._drawn_with = styles
                self._clear_caches()
        return super().render_lines(crop)

    def _scroll_update(self, virtual_size: Size) -> None:
        # Every layout of the screen sets the scrollbars again and asks them to repaint; when
        # nothing about them changed, that repaint is one more frame after the layout's own.
        bars = [(bar, bar._repaint_required, self._bar_state(bar))
                for bar in (self._vertical_scrollbar, self._horizontal_scrollbar)
                if bar is not None]
        super()._scroll_update(virtual_size)
        for bar, pending, before in bars:
            if not pending and self._bar_state(bar) == before:
                bar._repaint_required = False

    @staticmethod
    def _bar_state(bar: ScrollBar) -> tuple[Any, ...]:
        return (bar.window_virtual_size, bar.window_size, bar.position, bar.display,
                bar.region)

    def on_mount(self) -> None:
        for label, key in self._columns:
            self.add_column(label, key=key)
        self.set_class(self.app.console.color_system in FEW_COLOURS, "-few-colours")

    @property
    def record_ids(self) -> list[str]:
        return [key for key, _ in self._rows]

    def selected_id(self) -> str | None:
        if not self._rows or self.cursor_row < 0 or self.cursor_row >= len(self._rows):
            return None
        return self._rows[self.cursor_row][0]

    def selected_record(self) -> Any:
        """The record behind the highlighted row, if the screen gave it (None otherwise)."""
        key = self.selected_id()
        return self.records.get(key) if key is not None else None

    def focus_record(self, record_id: str) -> None:
        """Put the cursor on ``record_id`` now, or as soon as a reload brings it in."""
        self.pending_focus = record_id
        self._take_pending_focus()

    def _take_pending_focus(self) -> None:
        if self.pending_focus is None or self.pending_focus not in self.record_ids:
            return
        index = self.record_ids.index(self.pending_focus)
        self.pending_focus = None
        self.move_cursor(row=index)

    def show_rows(self, rows: Sequence[Row], *, has_more: bool, merge: bool = False) -> None:
        """Show the first page. With ``merge`` keep rows already loaded below it."""
        fresh = safe_rows(rows)
        arrived = 0
        if merge:
            seen = {key for key, _ in fresh}
            known = set(self.record_ids)
            # Rows that arrive on top while the cursor is further down would be out of sight.
            arrived = sum(1 for key, _ in fresh if key not in known) if known else 0
            fresh += [row for row in self._rows if row[0] not in seen]
            has_more = self.has_more if len(fresh) > len(rows) else has_more
        else:
            self._unseen = 0
        self.has_more = has_more
        self.loading_more = False
        if [key for key, _ in fresh] == self.record_ids:
            self._update_in_place(fresh)
        else:
            self._rebuild(fresh)
        self._take_pending_focus()
        if arrived and self.following and self.cursor_row > 0:
            self.move_cursor(row=0)  # the newest row, scrolled into view
        if arrived and self.cursor_row > 0:
            self._unseen += arrived
        self._show_unseen()

    def _notice(self) -> str | None:
        if self.following:
            return glyphs.text("following new rows · F stops")
        return glyphs.text(f"↑ {self._unseen} new · Home") if self._unseen else None

    def _show_unseen(self) -> None:
        """In the border: that the list follows, or ``↑ N new · Home`` while new rows wait
        above the cursor."""
        if self.cursor_row <= 0:
            self._unseen = 0
        label = self._notice()
        if label is not None:
            if self._unseen_label is None:  # a screen's own subtitle comes back afterwards
                self._saved_subtitle = self.border_subtitle
            self.border_subtitle = label
        elif self._unseen_label is not None:
            self.border_subtitle = self._saved_subtitle
        self._unseen_label = label

    def show_matches(self, count: int | None, *, capped: bool = False) -> None:
        """How many rows match the screen's filter, after the title (None: no filter)."""
        label = None if count is None else glyphs.text(match_words(count, capped))
        if label == self._match_label:
            return
        if self._match_label is None:  # the title comes back when the filter goes
            self._saved_title = self.border_title
        self._match_label = label
        title = self._saved_title
        self.border_title = (title if label is None else
                             f"{title}{glyphs.text(' · ')}{label}" if title else label)

    def action_toggle_follow(self) -> None:
        self.following = not self.following
        if self.following and self.row_count:
            self.move_cursor(row=0)
        self._show_unseen()

    def append_rows(self, rows: Sequence[Row], *, has_more: bool) -> None:
        seen = set(self.record_ids)
        added = [row for row in safe_rows(rows) if row[0] not in seen]
        for key, cells in added:
            self.add_row(*cells, key=key)
        self._rows += added
        self._measure_now()
        self.has_more = has_more
        self.loading_more = False
        self._take_pending_focus()

    def _update_in_place(self, rows: list[Row]) -> None:
        for (key, cells), (_, old) in zip(rows, self._rows, strict=True):
            if cells == old:
                continue
            for (_, column), value, before in zip(self._columns, cells, old, strict=True):
                if value != before:
                    self.update_cell(key, column, value, update_width=True)
        self._rows = rows

    def _rebuild(self, rows: list[Row]) -> None:
        keep = self.selected_id()
        old_index = self.cursor_row
        scroll_y = self.scroll_y
        was_empty = not self._rows
        self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        self._rows = rows
        self._measure_now()
        if not rows:
            return
        if was_empty:
            self._show_scrollbars_now()
        index = next((i for i, (key, _) in enumerate(rows) if key == keep), None)
        if index is None:
            self.move_cursor(row=0, scroll=False)
            return
        # Rows added above the cursor shift it down; move the viewport with it.
        self.move_cursor(row=index, scroll=False)
        self.scroll_to(y=scroll_y + max(0, index - old_index), animate=False, immediate=True)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """Widen the columns for the new rows, then let DataTable size the table.

        DataTable measures a cell through Rich's measure protocol, which asks the terminal
        for its size first (up to three system calls per cell). Every cell here is a
        one-line Text (see ``safe_cell``; a row is one line high, no labels): its width is
        its longest line, what that protocol answers."""
        columns = self.ordered_columns
        rest: list[RowKey] = []
        for key in new_rows:
            index = self._row_locations.get(key)
            if index is None:  # removed since
                continue
            row = self.rows[key]
            _, cells = self._get_row_renderables(index)
            texts = [cell for cell in cells if isinstance(cell, Text)]
            if row.label is not None or row.auto_height or len(texts) != len(cells):
                rest.append(key)
                continue
            for column, cell in zip(columns, texts, strict=False):
                lines = cell.plain.splitlines()
                width = max(map(cell_len, lines)) if lines else 0
                if width > column.content_width:
                    column.content_width = width
        super()._update_dimensions(rest)

    def _measure_now(self) -> None:
        """Size the columns for the new rows before the next paint.

        DataTable measures new rows when its message queue is idle; a paint that comes first
        caches rows at the old column widths and keeps showing them clipped. Measuring here
        (what DataTable's idle handler does) makes every paint use the right widths.
        """
        before = [column.content_width for column in self.ordered_columns]
        new_rows = list(self._new_rows)
        self._new_rows.clear()
        self._require_update_dimensions = False
        self._update_dimensions(new_rows)
        if [column.content_width for column in self.ordered_columns] != before:
            self._clear_caches()  # rows cached at the old widths must be drawn again

    def _show_scrollbars_now(self) -> None:
        """Decide the scrollbars for the first rows now, as the next layout would: it paints
        with the scrollbars it finds, so it would draw every row without them and then
        again, one frame later, beside them. (Only for a list that was empty: moving the
        cursor and the viewport of a list shown before waits for the layout's decision.)"""
        self._refresh_scrollbars()
        if self.show_vertical_scrollbar and self.show_horizontal_scrollbar:
            _ = self.scrollbar_corner  # made on first use: at layout time, one layout more

    # -- moves made by a person (a reload moving the cursor posts no CursorMovedByUser) ------

    def _moved_by_user(self) -> None:
        if self.following:  # like less: moving by hand stops following
            self.following = False
            self._show_unseen()
        self.post_message(CursorMovedByUser(self.id or ""))

    def action_cursor_up(self) -> None:
        super().action_cursor_up()
        self._moved_by_user()

    def action_cursor_down(self) -> None:
        super().action_cursor_down()
        self._moved_by_user()

    def action_page_up(self) -> None:
        super().action_page_up()
        self._moved_by_user()

    def action_page_down(self) -> None:
        super().action_page_down()
        self._moved_by_user()

    def action_scroll_top(self) -> None:
        super().action_scroll_top()
        self._moved_by_user()

    def action_scroll_bottom(self) -> None:
        super().action_scroll_bottom()
        self._moved_by_user()

    async def _on_click(self, event: events.Click) -> None:
        await super()._on_click(event)
        self._moved_by_user()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self._unseen and event.cursor_row == 0:
            self._show_unseen()
        # Ask for the next page a screenful ahead, so paging down rarely waits for it.
        ahead = max(MIN_PREFETCH_ROWS, self.size.height)
        if (self.has_more and not self.loading_more
                and event.cursor_row >= self.row_count - ahead):
            self.loading_more = True
            self.post_message(NeedMoreRows(self.id or ""))
