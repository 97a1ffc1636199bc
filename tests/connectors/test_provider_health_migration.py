"""A database from before the circuit breaker (revision 0001) opens without loss."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, inspect

from store.db import _alembic_config, open_database


def test_0001_database_gains_provider_health_and_keeps_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    engine.dispose()
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.execute("INSERT INTO deliveries (delivery_id, kind, provider, status, attempt, "
                 "idempotency_key, target, payload_sha256, created_at, created_by) VALUES "
                 "('dlv-old', 'escalation', 'outbox', 'failed', 1, 'k', 'file://x', 'd', "
                 "'2026-01-01 00:00:00', 'alice')")
    conn.commit()
    conn.close()

    database = open_database(url)
    try:
        tables = inspect(database.write_engine).get_table_names()
        assert "provider_health" in tables
        columns = {c["name"] for c in inspect(database.write_engine).get_columns(
            "provider_health")}
        assert {"name", "consecutive_failures", "state", "opened_until", "last_error",
                "updated_at"} <= columns
    finally:
        database.dispose()
    rows = sqlite3.connect(tmp_path / "old.db").execute(
        "SELECT delivery_id, status FROM deliveries").fetchall()
    assert rows == [("dlv-old", "failed")]
