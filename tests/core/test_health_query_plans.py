"""Health's reads find their rows through an index on every column they filter by, not
through a status-only index that visits every row ever in that status (schema 0009).

A cold console on 10^6 executions spent ~0.6 s in one such read; a timing would not belong
here, so the test asks SQLite's planner (``EXPLAIN QUERY PLAN``) what each statement of
``read_health`` does."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from store.services.escalation import build_plan
from store.services.health import read_health
from tests.core.helpers import hooked_runtime
from tests.loopback import LoopbackHTTP
from workflows.delivery import deliver_escalation


@pytest.fixture
def runtime(make_runtime: Any, write_config: Any, http_server: LoopbackHTTP, clock: Any,
            monkeypatch: pytest.MonkeyPatch) -> Any:
    runtime = hooked_runtime(make_runtime, write_config, http_server.url(), clock, monkeypatch)
    http_server.answer(500)
    deliver_escalation(runtime.ctx, runtime.registry, build_plan(runtime.ctx).plan_id)
    return runtime


def _plans_of_health_reads(runtime: Any) -> dict[str, list[str]]:
    """Each statement ``read_health`` runs → the planner's lines for it."""
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    engine = runtime.db.read_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        read_health(runtime.ctx)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    plans: dict[str, list[str]] = {}
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        for statement, parameters in statements:
            plans[statement] = [row[3] for row in raw.execute(
                f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()]
    return plans


def _lines_naming(plans: dict[str, list[str]], table: str) -> list[str]:
    """The planner's SEARCH and SCAN lines on ``table`` (the statements use no aliases)."""
    return [line for lines in plans.values() for line in lines
            if line.split(" ")[0] in ("SEARCH", "SCAN") and line.split(" ")[1] == table]


def test_failed_executions_of_the_window_are_a_range_of_one_index(runtime: Any) -> None:
    plans = _plans_of_health_reads(runtime)
    executions = _lines_naming(plans, "execution_records")
    assert executions, plans
    for line in executions:
        assert "ix_execution_records_status_created_at (status=? AND created_at>?)" in line, line


def test_failed_executive_deliveries_are_found_by_status_and_kind(runtime: Any) -> None:
    plans = _plans_of_health_reads(runtime)
    lines = _lines_naming(plans, "deliveries")
    assert any("ix_deliveries_status_kind (status=? AND kind=?)" in line for line in lines), lines
    # Nothing health reads walks a whole table of history.
    for table in ("deliveries", "execution_records", "audit_events"):
        assert not [line for line in _lines_naming(plans, table)
                    if line.startswith("SCAN")], plans
