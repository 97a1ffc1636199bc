"""A canary: RecordTable relies on private parts of Textual's DataTable (measuring new rows
before a paint, the click hook). If an upgrade renames them this fails first, loudly, and
names what to look at, instead of the console quietly drawing clipped columns."""

from __future__ import annotations

import inspect

from textual.widgets import DataTable

from cavra_tui.widgets.record_table import RecordTable

PRIVATE_METHODS = ("_update_dimensions", "_clear_caches", "_on_click")
PRIVATE_ATTRIBUTES = ("_new_rows", "_require_update_dimensions")


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
