"""Append-only by privilege on PostgreSQL (SPEC §3, §9): `cavra db grant`, what the granted
login roles may and may not do, and what `audit verify` reports about roles and triggers."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from store.db import Database, open_database
from store.pg_roles import (
    DELIVERY_TRANSITION_COLUMNS,
    append_only_problems,
    grant_statements,
    privilege_problems,
)
from tests import pg_roles_fixtures
from tests.core.helpers import run_cli
from tests.pg_roles_fixtures import GrantedDatabase, engine

pg_granted = pg_roles_fixtures.pg_granted  # the shared fixture, used by this module

ITEMS = [{"recovery_id": "rec-1", "connector": "payments-api", "category": "rollback",
          "opened_at": "2026-01-01T00:00:00Z", "failure_count": 2}]
NEEDS_PG = ("cavra: error: db grant: needs PostgreSQL (SQLite uses file permissions; "
            "see the README's threat model)\n")
# Each must be refused by privilege, not merely by a trigger.
FORBIDDEN = [
    ("DELETE FROM audit_events", "permission denied for table audit_events"),
    ("UPDATE acknowledgements SET state = 'x'", "permission denied for table acknowledgements"),
    ("UPDATE deliveries SET provider = 'x'", "permission denied for table deliveries"),
    ("TRUNCATE execution_records", "permission denied for table execution_records"),
    ("ALTER TABLE deliveries DISABLE TRIGGER ALL", "must be owner of table deliveries"),
    ("DROP TRIGGER deliveries_append_only ON deliveries", "must be owner of relation deliveries"),
]


def cli(capsys: pytest.CaptureFixture[str], url: str, *args: str, expect: int = 0) -> str:
    code, out, err = run_cli(capsys, "--db", url, *args)
    assert code == expect, (args, out, err)
    return out


def workflow(capsys: pytest.CaptureFixture[str], url: str, items: Path) -> dict[str, Any]:
    """SPEC §5's loop through the CLI, as one login role."""
    cli(capsys, url, "recovery", "import", str(items))
    plan = json.loads(cli(capsys, url, "escalation", "plan", "--json"))
    [delivery] = json.loads(cli(capsys, url, "escalation", "deliver", "latest", "--json"))
    assert (delivery["plan_id"], delivery["status"]) == (plan["plan_id"], "delivered")
    cli(capsys, url, "escalation", "ack", plan["plan_id"], "--provider", delivery["provider"],
        "--state", "accepted")
    cli(capsys, url, "retry", "plan")
    cli(capsys, url, "retry", "run")
    cli(capsys, url, "retry", "run", "--live")
    cli(capsys, url, "audit", "verify")
    return dict(delivery)


def scalar(url: str, sql: str, **params: Any) -> Any:
    eng = engine(url)
    try:
        with eng.connect() as conn:
            return conn.execute(text(sql), params).scalar()
    finally:
        eng.dispose()


def acl_snapshot(url: str) -> list[Any]:
    """Every privilege on the schema, its tables, columns and sequences."""
    eng = engine(url)
    try:
        with eng.connect() as conn:
            return [tuple(row) for row in conn.execute(text(
                "SELECT c.relname::text, c.relacl::text, ARRAY(SELECT a.attname || '=' || "
                "a.attacl::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attacl "
                "IS NOT NULL ORDER BY a.attname), (SELECT nspacl::text FROM pg_namespace "
                "WHERE nspname = 'public') FROM pg_class c WHERE c.relnamespace = "
                "'public'::regnamespace ORDER BY 1"))]
    finally:
        eng.dispose()


@pytest.fixture
def items(tmp_path: Path) -> Path:
    path = tmp_path / "items.json"
    path.write_text(json.dumps(ITEMS), encoding="utf-8")
    return path


# --- without a server -------------------------------------------------------------------


def test_grant_on_sqlite_is_refused_in_one_line(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    for extra in ([], ["--print"]):
        code, out, err = run_cli(capsys, "--db", f"sqlite:///{tmp_path / 'c.db'}", "db",
                                 "grant", "cavra_operator", *extra)
        assert (code, out, err) == (2, "", NEEDS_PG)


@pytest.mark.parametrize("role", ["Bad-Name", 'x"; DROP TABLE audit_events; --', "pg_monitor",
                                  "public", "9lives", "a" * 64, ""])
def test_bad_role_name_is_refused_in_one_line(role: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--db", f"sqlite:///{tmp_path / 'c.db'}", "db", "grant",
                             role)
    assert (code, out) == (2, "")
    assert err == f"cavra: error: db grant: {role} is not a valid role name\n"


def test_statements_never_allow_deleting_evidence() -> None:
    tables = ["audit_events", "deliveries", "pair_state", "locks", "alembic_version"]
    sql = grant_statements(["ops_a", "ops_b"], tables)
    assert sql[0] == 'REVOKE ALL ON SCHEMA public FROM PUBLIC, "ops_a", "ops_b"'
    grants = [s for s in sql if s.startswith("GRANT")]
    assert not [s for s in grants if re.search(r"DELETE|TRUNCATE|REFERENCES|TRIGGER|GRANT ALL", s)]
    assert 'GRANT SELECT, INSERT ON TABLE "deliveries", "audit_events" TO "ops_a", "ops_b"' in sql
    columns = ", ".join(f'"{c}"' for c in DELIVERY_TRANSITION_COLUMNS)
    assert f'GRANT UPDATE ({columns}) ON TABLE "deliveries" TO "ops_a", "ops_b"' in sql
    assert 'GRANT SELECT ON TABLE "alembic_version" TO "ops_a", "ops_b"' in sql
    assert "audit_checkpoints" not in " ".join(sql)  # only tables that exist


def test_sqlite_reports_a_dropped_trigger(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    db = open_database(f"sqlite:///{path}")
    try:
        assert append_only_problems(db) == []
        assert privilege_problems(db) == []
        conn = sqlite3.connect(path)
        conn.execute("DROP TRIGGER deliveries_no_delete")
        conn.commit()
        conn.close()
        assert append_only_problems(db) == [
            "trigger deliveries_no_delete is missing: deliveries can be changed in place"]
    finally:
        db.dispose()


# --- on PostgreSQL ----------------------------------------------------------------------


def test_each_login_role_runs_the_workflow(pg_granted: GrantedDatabase, items: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert [line.split(":")[0] for line in pg_granted.grant_output.splitlines()] == [
        f"granted {role.name}" for role in pg_granted.roles]
    for role in pg_granted.roles:
        assert scalar(role.url, "SELECT session_user") == role.name
        workflow(capsys, role.url, items)
    assert scalar(pg_granted.owner.url, "SELECT count(*) FROM deliveries "
                  "WHERE status = 'delivered'") == 2


def test_login_roles_cannot_delete_or_rewrite_evidence(
        pg_granted: GrantedDatabase, items: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workflow(capsys, pg_granted.roles[0].url, items)
    count = "SELECT (SELECT count(*) FROM audit_events) + (SELECT count(*) FROM deliveries)"
    before = scalar(pg_granted.owner.url, count)
    for role in pg_granted.roles:
        eng = engine(role.url)
        try:
            for statement, refusal in FORBIDDEN:
                with eng.connect() as conn, pytest.raises(DBAPIError) as caught:
                    conn.execute(text(statement))
                assert refusal in str(caught.value.orig), statement
            # The granted columns pass the privilege check; the trigger still holds them to
            # the one transition out of in_flight.
            with eng.connect() as conn, pytest.raises(DBAPIError) as caught:
                conn.execute(text("UPDATE deliveries SET status = 'failed'"))
            assert "a delivery changes only out of in_flight" in str(caught.value.orig)
        finally:
            eng.dispose()
    assert scalar(pg_granted.owner.url, count) == before
    assert append_only_problems(Database(pg_granted.owner.url)) == []


def test_print_changes_nothing(pg_granted: GrantedDatabase,
                               capsys: pytest.CaptureFixture[str]) -> None:
    newcomer = pg_granted.add_login_role("newcomer")
    before = acl_snapshot(pg_granted.admin_url)
    out = cli(capsys, pg_granted.owner.url, "db", "grant", newcomer.name, "--print")
    assert 'GRANT SELECT, INSERT ON TABLE "escalation_plans"' in out
    assert f'TO "{newcomer.name}";' in out and "DELETE" not in out
    assert acl_snapshot(pg_granted.admin_url) == before
    assert scalar(pg_granted.admin_url, "SELECT has_table_privilege(:r, 'audit_events', "
                  "'SELECT')", r=newcomer.name) is False
    cli(capsys, pg_granted.owner.url, "db", "grant", newcomer.name)
    assert scalar(newcomer.url, "SELECT count(*) FROM audit_events") >= 0


def test_grant_refusals_are_one_line(pg_granted: GrantedDatabase,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    owner, operator = pg_granted.owner, pg_granted.roles[0]
    ghost = f"{pg_granted.database}_ghost"
    before = acl_snapshot(pg_granted.admin_url)
    for url, role, message in [
            (owner.url, ghost, f"role {ghost} does not exist"),
            (owner.url, owner.name, f"{owner.name} owns the cavra tables"),
            (owner.url, "Bad-Name", "Bad-Name is not a valid role name"),
            (operator.url, operator.name, f"permission denied: {operator.name} does not own")]:
        code, out, err = run_cli(capsys, "--db", url, "db", "grant", role)
        assert (code, out, err.count("\n")) == (2, "", 1), err
        assert err.startswith("cavra: error: db grant: ") and message in err
    assert acl_snapshot(pg_granted.admin_url) == before


def test_privilege_problems_name_roles_that_could_delete(pg_granted: GrantedDatabase) -> None:
    rogue = pg_granted.add_login_role("rogue")
    pg_granted.owner_sql(f"GRANT DELETE ON audit_events TO {rogue.name}")
    superuser = scalar(pg_granted.admin_url, "SELECT current_user")
    db = Database(pg_granted.roles[0].url)  # an unprivileged role can ask too
    try:
        problems = privilege_problems(db)
    finally:
        db.dispose()
    assert (f"login role {rogue.name} has DELETE on audit_events: it can delete or rewrite "
            "evidence") in problems
    assert f"login role {superuser} is a superuser: it can delete evidence" in problems
    assert any(p.startswith(f"login role {pg_granted.owner.name} owns evidence tables")
               for p in problems)
    for role in pg_granted.roles:
        assert not [p for p in problems if p.startswith(f"login role {role.name} ")]


def test_append_only_problems_name_dropped_and_disabled_triggers(
        pg_granted: GrantedDatabase, capsys: pytest.CaptureFixture[str]) -> None:
    operator = pg_granted.roles[0]
    db = Database(operator.url)
    try:
        assert append_only_problems(db) == []
        pg_granted.owner_sql(
            "DROP TRIGGER acknowledgements_append_only ON acknowledgements",
            "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        assert append_only_problems(db) == [
            "trigger acknowledgements_append_only is missing: acknowledgements can be changed "
            "in place",
            "trigger audit_events_append_only is disabled: audit_events can be changed in "
            "place"]
    finally:
        db.dispose()
    code, out, err = run_cli(capsys, "--db", operator.url, "audit", "verify")
    assert code == 3 and "acknowledgements_append_only is missing" in out + err
