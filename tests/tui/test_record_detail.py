"""Enter on a list row opens the record in full; fields that name other records are links;
Esc goes back through the trail to the list (SPEC §11). Checked against the rows in the
SQLite file, read independently."""

from __future__ import annotations

import sqlite3

from textual.widgets import DataTable

from cavra_tui.bootstrap import Runtime
from cavra_tui.screens.record_detail import RecordDetail
from cavra_tui.widgets.record_table import RecordTable
from tests.tui.conftest import make_app, settle


def _fields(app: object) -> dict[str, str]:
    table = app.screen.query_one("#detail-fields", DataTable)  # type: ignore[attr-defined]
    return {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[1])
            for i in range(table.row_count)}


def _row(db: str, table: str, key: str, value: str) -> dict[str, object]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return dict(conn.execute(f"SELECT * FROM {table} WHERE {key} = ?", (value,)).fetchone())
    finally:
        conn.close()


async def _open_row(pilot: object, field: str) -> None:
    app = pilot.app  # type: ignore[attr-defined]
    table = app.screen.query_one("#detail-fields", DataTable)
    table.move_cursor(row=table.get_row_index(field))
    await pilot.press("enter")  # type: ignore[attr-defined]
    await settle(pilot)  # type: ignore[arg-type]


async def test_enter_opens_an_execution_and_its_links_and_esc_comes_back(
        seeded: Runtime) -> None:
    db = str(seeded.db.sqlite_path)
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await settle(pilot)
        executions = app.screen.query_one("#executions", RecordTable)
        executions.focus()
        execution_id = executions.selected_id()
        assert execution_id is not None
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RecordDetail)
        shown = _fields(app)
        stored = _row(db, "execution_records", "execution_id", execution_id)
        assert set(shown) == set(stored)  # every field
        assert shown["idempotency_key"] == stored["idempotency_key"]
        assert shown["run_id"] == f"↗ {stored['run_id']}"  # a link to the worker run

        await _open_row(pilot, "run_id")
        assert app.screen.record_id == stored["run_id"]
        assert _fields(app)["mode"] == _row(db, "worker_runs", "run_id",
                                            str(stored["run_id"]))["mode"]
        await _open_row(pilot, "retry_plan_id")
        assert app.screen.record_id == stored["retry_plan_id"]
        trail = str(app.screen.query_one("#detail-trail").render())
        assert str(stored["retry_plan_id"]) in trail and "›" in trail

        for _ in range(3):
            await pilot.press("escape")
            await settle(pilot)
        assert not isinstance(app.screen, RecordDetail)
        assert app.screen.query_one("#executions", RecordTable).selected_id() == execution_id


async def test_an_acknowledgement_shows_no_private_notes(seeded: Runtime) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        acks = app.screen.query_one("#acks", RecordTable)
        acks.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RecordDetail)
        assert "notes" not in _fields(app) and "state" in _fields(app)
