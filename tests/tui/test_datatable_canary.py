"""A canary: RecordTable relies on private parts of Textual's DataTable (measuring new rows
before a paint, the click hook, keeping drawn rows through a restyle, deciding its scrollbars
early), the screens and the footer on a few of Textual's. If an upgrade renames them this
fails first, loudly, and names what to look at, instead of the console quietly drawing
clipped columns or slowing down."""

from __future__ import annotations

import inspect

from textual.widgets import DataTable

from cavra_tui.widgets.record_table import RecordTable

PRIVATE_METHODS = ("_update_dimensions", "_clear_caches", "_on_click", "_get_row_renderables",
                   "_get_component_classes", "_refresh_scrollbars", "_scroll_update")
PRIVATE_ATTRIBUTES = ("_new_rows", "_require_update_dimensions", "_row_locations",
                      "_vertical_scrollbar", "_horizontal_scrollbar", "_repaint_required")


def test_the_datatable_internals_record_table_uses_are_still_there() -> None:
    missing = [name for name in PRIVATE_METHODS if not callable(getattr(DataTable, name, None))]
    assert not missing, f"DataTable no longer has {missing}: update RecordTable._measure_now"
    table = DataTable[str]()
    absent = [name for name in PRIVATE_ATTRIBUTES if not hasattr(table, name)]
    assert not absent, f"DataTable instances no longer have {absent}: update RecordTable"
    assert list(inspect.signature(DataTable._update_dimensions).parameters) == [
        "self", "new_rows"], "DataTable._update_dimensions changed its signature"
    assert issubclass(RecordTable, DataTable)


def test_the_app_keeps_its_notifications_where_cavra_counts_them() -> None:
    """CavraApp.notify caps the toasts on screen by counting ``App._notifications``."""
    from textual.app import App

    app = App[None]()
    assert len(app._notifications) == 0  # sized and iterable, as CavraApp expects
    assert list(app._notifications) == []
    assert callable(getattr(App, "_refresh_notifications", None)), (
        "App._refresh_notifications is gone: update CavraApp's toast cap")


def test_the_screen_switch_internals_the_console_uses_are_still_there() -> None:
    """CavraScreen marks a new screen as styled (``_css_update_count``), ConsoleFooter skips
    rebuilding its keys (``Footer._bindings_ready``), RecordTable keeps its drawn rows when a
    restyle changes nothing (DataTable's own ``notify_style_update`` drops them)."""
    from textual.app import App
    from textual.screen import Screen
    from textual.widgets import Footer

    app = App[None]()
    assert isinstance(app._css_update_count, int), "App._css_update_count is gone"
    assert app._is_mounted is False, "App._is_mounted is gone: see CavraScreen"
    assert app.stylesheet._variables == app.get_css_variables(), "see CavraScreen.__init__"
    assert Screen[None]()._css_update_count == -1, "Screen._css_update_count: see CavraScreen"
    assert hasattr(Footer(), "_bindings_ready"), "Footer._bindings_ready: see ConsoleFooter"
    assert "notify_style_update" in vars(DataTable), "see RecordTable.notify_style_update"
