"""What a screen keeps when it is shown again, and what still changes: the lists keep the
rows they drew unless a style they are drawn with changed, the footer keeps its keys unless
they changed, and a list's columns are as wide as DataTable itself would measure them."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable
from textual.widgets._footer import FooterKey

from cavra_tui.bootstrap import Runtime
from cavra_tui.formatting import status
from cavra_tui.widgets.footer import ConsoleFooter
from cavra_tui.widgets.record_table import RecordTable, safe_rows
from tests.tui.conftest import make_app, settle

SIZE = (120, 40)
COLUMNS = (("When", "when"), ("Status", "status"), ("Note", "note"))
ROWS = [("a", ("11-27 09:30", status("delivered"), "plain")),
        ("b", ("11-27 09:31", status("failed"), "wide 漢字 and ✓ marks")),
        ("c", ("11-27 09:32", status(None), "x" * 40)),
        ("d", ("", Text("multi\nline"), "tab\there"))]


def row_strips(table: RecordTable) -> list[Any]:
    """The header and the rows as drawn now (cached or not)."""
    return [table.render_line(y) for y in range(1 + table.row_count)]


async def test_a_list_keeps_its_drawn_rows_on_a_revisit_but_redraws_for_a_new_theme(
        seeded: Runtime) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(pilot)
        table = app.screen.query_one("#executions", RecordTable)
        assert table.row_count
        drawn = row_strips(table)
        await pilot.press("1")
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        assert row_strips(table) == drawn
        app.theme = "textual-light" if app.theme != "textual-light" else "textual-dark"
        await settle(pilot)
        shown = row_strips(table)
        assert shown != drawn
        table._clear_caches()
        assert row_strips(table) == shown  # what drawing from scratch in the new theme draws


async def test_the_footer_keeps_its_keys_on_a_revisit(seeded: Runtime) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(pilot)
        keys = list(app.screen.query(FooterKey))
        assert keys
        await pilot.press("1")
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        assert list(app.screen.query(FooterKey)) == keys


class Toggling(App[None]):
    """A screen whose one key is shown enabled or disabled, as the app's flag says."""

    BINDINGS: ClassVar[list[BindingType]] = [("x", "go", "Go")]
    allowed = True

    def compose(self) -> ComposeResult:
        yield ConsoleFooter(compact=True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if action == "go" and not self.allowed else True  # None: shown disabled

    def action_go(self) -> None:
        """Nothing: the key only has to be there."""


async def test_the_footer_shows_keys_that_changed() -> None:
    app = Toggling()
    async with app.run_test() as pilot:
        await pilot.pause()
        (key,) = [k for k in app.screen.query(FooterKey) if k.key == "x"]
        assert not key.has_class("-disabled")
        app.allowed = False
        app.refresh_bindings()
        await pilot.pause()
        await pilot.pause()
        (key,) = [k for k in app.screen.query(FooterKey) if k.key == "x"]
        assert key.has_class("-disabled")


class Tables(App[None]):
    def compose(self) -> ComposeResult:
        yield RecordTable(COLUMNS, id="record")
        yield DataTable(id="plain")

    def on_mount(self) -> None:
        plain = self.query_one("#plain", DataTable)
        for label, key in COLUMNS:
            plain.add_column(label, key=key)
        for key, cells in safe_rows(ROWS):
            plain.add_row(*cells, key=key)


async def test_a_list_measures_its_columns_as_datatable_does() -> None:
    app = Tables()
    async with app.run_test() as pilot:
        await pilot.pause()
        table = app.query_one("#record", RecordTable)
        table.show_rows(ROWS, has_more=False)
        await pilot.pause()
        plain = app.query_one("#plain", DataTable)
        assert ([c.content_width for c in table.ordered_columns]
                == [c.content_width for c in plain.ordered_columns])
        assert table.virtual_size == plain.virtual_size
