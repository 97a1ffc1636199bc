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


def _rows(app: object) -> list[tuple[str, str, str]]:
    table = app.screen.query_one("#detail-fields", DataTable)  # type: ignore[attr-defined]
    return [(str(key.value), str(table.get_row(key)[0]), str(table.get_row(key)[1]))
            for key in table.rows]


def _fields(app: object) -> dict[str, str]:
    """The record's own fields (the rows above "named by")."""
    return {name: value for key, name, value in _rows(app) if not key.startswith("-related")}


def _named_by(app: object) -> set[tuple[str, str]]:
    """(relation, record ID) of the reverse links."""
    return {(name, value.split()[1]) for key, name, value in _rows(app)
            if key.startswith("-related-")}


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
        # Named by: the pair's deliveries and acknowledgements, the audit events naming it.
        conn = sqlite3.connect(db)
        try:
            pair = (stored["plan_id"], stored["provider"])
            deliveries = {row[0] for row in conn.execute(
                "SELECT delivery_id FROM deliveries WHERE plan_id = ? AND provider = ?", pair)}
            acks = {row[0] for row in conn.execute(
                "SELECT ack_id FROM acknowledgements WHERE plan_id = ? AND provider = ?", pair)}
            seqs = {f"audit:{row[0]}" for row in conn.execute(
                "SELECT seq FROM audit_targets WHERE target_id = ?", (execution_id,))}
        finally:
            conn.close()
        named_by = _named_by(app)
        assert {i for r, i in named_by if r == "delivery of the pair"} == deliveries
        assert {i for r, i in named_by if r == "acknowledgement"} == acks
        assert {i for r, i in named_by if r == "audit event"} == seqs and seqs

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


async def test_a_plan_lists_what_names_it_and_an_audit_event_opens(seeded: Runtime) -> None:
    db = str(seeded.db.sqlite_path)
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        plans = app.screen.query_one("#plans", RecordTable)
        plans.focus()
        plan_id = plans.selected_id()
        await pilot.press("enter")
        await settle(pilot)
        conn = sqlite3.connect(db)
        try:
            deliveries = {row[0] for row in conn.execute(
                "SELECT delivery_id FROM deliveries WHERE plan_id = ?", (plan_id,))}
            acks = {row[0] for row in conn.execute(
                "SELECT ack_id FROM acknowledgements WHERE plan_id = ?", (plan_id,))}
        finally:
            conn.close()
        named_by = _named_by(app)
        assert {i for r, i in named_by if r == "delivery"} == deliveries and deliveries
        assert {i for r, i in named_by if r == "acknowledgement"} == acks
        # Follow the newest audit event that names the plan: every column, its targets linked.
        event = max((i for r, i in named_by if r == "audit event"),
                    key=lambda i: int(i.split(":")[1]))
        table = app.screen.query_one("#detail-fields", DataTable)
        index = next(n for n, key in enumerate(table.rows)
                     if app.screen.links.get(str(key.value)) == event)
        table.move_cursor(row=index)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.record_id == event
        stored = _row(db, "audit_events", "seq", event.split(":")[1])
        fields = _fields(app)
        assert fields["action"] == stored["action"] and fields["sha256"] == stored["sha256"]
        assert f"↗ {plan_id}" in fields.values()
        await pilot.press("backspace", "backspace")
        await settle(pilot)
        assert not isinstance(app.screen, RecordDetail)


async def test_a_route_and_a_health_alert_open_in_full(seeded: Runtime) -> None:
    """Records that live inside another (a plan's route, a health alert) open too."""
    db = str(seeded.db.sqlite_path)
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        plan_id = app.screen.query_one("#plans", RecordTable).selected_id()
        routes = app.screen.query_one("#routes", RecordTable)
        routes.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RecordDetail)
        import json

        stored = json.loads(str(_row(db, "escalation_plans", "plan_id", str(plan_id))["routes"]))
        fields = _fields(app)
        assert fields["plan_id"] == f"↗ {plan_id}"  # a link back to its plan
        for name, value in stored[0].items():  # every field of the stored route
            assert fields[name] == (json.dumps(value, ensure_ascii=False, sort_keys=True)
                                    if isinstance(value, (list, dict)) else str(value))
        await pilot.press("escape")
        await pilot.press("7")
        await settle(pilot)
        alerts = app.screen.query_one("#alerts", RecordTable)
        alerts.focus()
        code = alerts.selected_id()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RecordDetail)
        assert _fields(app)["code"] == code and "message" in _fields(app)


async def test_enter_on_the_audit_screen_opens_the_event(seeded: Runtime) -> None:
    db = str(seeded.db.sqlite_path)
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("6")
        await settle(pilot)
        events = app.screen.query_one("#events", RecordTable)
        events.focus()
        seq = events.selected_id()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RecordDetail) and app.screen.record_id == f"audit:{seq}"
        assert _fields(app)["sha256"] == _row(db, "audit_events", "seq", str(seq))["sha256"]
