"""Opening a database upgrades it; the fast path knows the newest migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from store.db import SCHEMA_HEAD, _alembic_config, open_database
from store.errors import UserError


def test_schema_head_constant_matches_the_migrations() -> None:
    assert ScriptDirectory.from_config(_alembic_config()).get_current_head() == SCHEMA_HEAD


def test_an_older_database_is_upgraded_without_loss(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    config = _alembic_config()
    with engine.begin() as conn:  # a database left by the first release
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.exec_driver_sql(
            "INSERT INTO recovery_items VALUES ('rec-old', 'ledger', 'rollback', NULL, NULL, "
            "'2026-01-01 00:00:00', 'open', 0, '2026-01-01 00:00:00', 'alice')")
    engine.dispose()
    database = open_database(url)
    database.dispose()
    conn = sqlite3.connect(tmp_path / "old.db")
    assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (SCHEMA_HEAD,)
    assert conn.execute("SELECT recovery_id FROM recovery_items").fetchall() == [("rec-old",)]
    conn.close()


def test_a_database_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    open_database(url).dispose()
    conn = sqlite3.connect(tmp_path / "new.db")
    conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match="schema revision 9999 is newer than this cavra"):
        open_database(url)
