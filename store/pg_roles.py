"""PostgreSQL roles that enforce append-only by privilege (SPEC §3, §9).

Triggers stop UPDATE and DELETE on evidence, but a table's owner (or a superuser) can drop or
disable them, and TRUNCATE skips row triggers altogether. So the owner only runs migrations;
people log in as roles that may read and append evidence, make a delivery's one transition
out of ``in_flight`` (column-level UPDATE) and keep projections and leases current. Re-run
``cavra db grant`` after each upgrade: a new table has no grants until then.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from store.core_tables import APPEND_ONLY_TABLES
from store.db import Database
from store.errors import UserError

# Evidence: read and append only. ``audit_checkpoints`` arrives with migration 0004.
EVIDENCE_TABLES = tuple(dict.fromkeys(
    (*APPEND_ONLY_TABLES, "audit_targets", "schedule_events", "audit_checkpoints")))
DELIVERIES = "deliveries"
# Exactly what store.services.deliveries.finish_delivery sets: the transition out of in_flight.
DELIVERY_TRANSITION_COLUMNS = ("status", "status_code", "latency_ms", "error", "retry_after_s",
                               "finished_at", "in_flight_until")
# Derived state, leases and configuration: rewritten in place. Nothing in the code deletes
# from them (no ``delete(`` anywhere), so no role gets DELETE.
STATE_TABLES = ("pair_state", "plan_state", "metric_counters", "locks", "change_marker",
                "provider_health", "audit_head", "recovery_items", "report_schedules",
                "quiet_windows")
READ_ONLY_TABLES = ("alembic_version",)
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
NEEDS_POSTGRES = ("db grant: needs PostgreSQL (SQLite uses file permissions; "
                  "see the README's threat model)")
INSUFFICIENT_PRIVILEGE = "42501"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _valid_role(role: str) -> str:
    if not ROLE_NAME.match(role) or role in ("public", "none") or role.startswith("pg_"):
        raise UserError(f"db grant: {role} is not a valid role name")
    return role


def known_tables() -> tuple[str, ...]:
    """Every table cavra's schema has or may have (metadata, 0004's table, Alembic's)."""
    from store.tables import Base  # the ORM: only `db grant` needs every table's name

    return tuple(dict.fromkeys([*Base.metadata.tables, *EVIDENCE_TABLES, *READ_ONLY_TABLES]))


def grant_statements(roles: Sequence[str], tables: Collection[str]) -> list[str]:
    """The SQL that gives ``roles`` exactly the workflow's rights on the existing ``tables``."""
    if not (who := ", ".join(_quote(_valid_role(r)) for r in dict.fromkeys(roles))):
        raise UserError("db grant: name at least one role")
    present = [t for t in known_tables() if t in tables]

    def on(names: Sequence[str]) -> str:
        return ", ".join(_quote(n) for n in names)

    sql = [f"REVOKE ALL ON SCHEMA public FROM PUBLIC, {who}",
           f"GRANT USAGE ON SCHEMA public TO {who}"]
    if present:
        sql.append(f"REVOKE ALL ON TABLE {on(present)} FROM PUBLIC, {who}")
    # Anything not state or Alembic's counts as evidence: an unclassified table gets the least.
    if evidence := [t for t in present if t not in (*STATE_TABLES, *READ_ONLY_TABLES)]:
        sql.append(f"GRANT SELECT, INSERT ON TABLE {on(evidence)} TO {who}")
    if DELIVERIES in present:
        sql.append(f"GRANT UPDATE ({on(DELIVERY_TRANSITION_COLUMNS)}) ON TABLE "
                   f"{_quote(DELIVERIES)} TO {who}")
    if state := [t for t in STATE_TABLES if t in present]:
        sql.append(f"GRANT SELECT, INSERT, UPDATE ON TABLE {on(state)} TO {who}")
    if read := [t for t in READ_ONLY_TABLES if t in present]:
        sql.append(f"GRANT SELECT ON TABLE {on(read)} TO {who}")
    sql += [f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC, {who}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {who}"]
    return sql


def _require_postgres(db: Database) -> None:
    if db.is_sqlite or db.write_engine.dialect.name != "postgresql":
        raise UserError(NEEDS_POSTGRES)


def _tables(conn: Connection) -> set[str]:
    return set(conn.execute(text(
        "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace "
        "AND relkind IN ('r', 'p')")).scalars())


def _present(conn: Connection) -> list[str]:
    existing = _tables(conn)
    return [t for t in known_tables() if t in existing]


def grantable_tables(db: Database) -> list[str]:
    """The cavra tables that exist now (``audit_checkpoints`` arrives with migration 0004)."""
    _require_postgres(db)
    with db.write_engine.connect() as conn:
        return _present(conn)


def _reason(exc: DBAPIError) -> str:
    return (str(exc.orig).strip().splitlines() or ["unknown error"])[0]


def apply_grants(db: Database, roles: Sequence[str]) -> list[str]:
    """Run :func:`grant_statements` in one transaction as the connected (owner) user."""
    _require_postgres(db)
    wanted = list(dict.fromkeys(_valid_role(r) for r in roles))
    try:
        with db.write_engine.begin() as conn:
            tables = _present(conn)
            _refuse_unfit(conn, wanted, tables)
            for statement in grant_statements(wanted, tables):
                conn.execute(text(statement))
    except DBAPIError as exc:
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate == INSUFFICIENT_PRIVILEGE:
            raise UserError(f"db grant: permission denied ({_reason(exc)}); run it as the "
                            "owner of the cavra tables") from None
        raise UserError(f"db grant: {_reason(exc)}") from None
    cols = ", ".join(DELIVERY_TRANSITION_COLUMNS)
    return [f"granted {role}: evidence SELECT, INSERT; deliveries UPDATE ({cols}) only; "
            "state SELECT, INSERT, UPDATE; no DELETE, TRUNCATE or trigger changes"
            for role in wanted]


def _refuse_unfit(conn: Connection, roles: list[str], tables: list[str]) -> None:
    """Only the owner can grant (anyone else gets warnings, not errors, from PostgreSQL); a
    missing role, a superuser or an owner as grantee: privileges cannot hold them back."""
    me, foreign = conn.execute(text(
        "SELECT current_user, (SELECT min(relname::text) FROM pg_class WHERE relnamespace = "
        "'public'::regnamespace AND relname::text = ANY(:tables) "
        "AND NOT pg_has_role(current_user, relowner, 'USAGE'))"), {"tables": tables}).one()
    if foreign is not None:
        raise UserError(f"db grant: permission denied: {me} does not own {foreign}; run it as "
                        "the owner (the role that runs the migrations)")
    found = {name: (superuser, owns) for name, superuser, owns in conn.execute(text(
        "SELECT r.rolname, r.rolsuper, EXISTS (SELECT 1 FROM pg_class c WHERE "
        "c.relnamespace = 'public'::regnamespace AND c.relname::text = ANY(:tables) "
        "AND c.relowner = r.oid) FROM pg_roles r WHERE r.rolname::text = ANY(:roles)"),
        {"roles": roles, "tables": tables})}
    for role in roles:
        if role not in found:
            raise UserError(f"db grant: role {role} does not exist (CREATE ROLE {role} "
                            "LOGIN PASSWORD '…' first)")
        superuser, owns = found[role]
        if superuser:
            raise UserError(f"db grant: {role} is a superuser: privileges cannot restrict it")
        if owns:
            raise UserError(f"db grant: {role} owns the cavra tables: grant to login roles "
                            "that own nothing")


def _squash(sql: str) -> str:
    return " ".join(sql.split())


# Migration 0006: a quiet window changes in place only by being removed, and is never
# deleted (UPDATE is granted for the removal; the triggers hold it to that).
QUIET_WINDOWS = "quiet_windows"
_QUIET_FIXED = ("window_id", "name", "providers", "severities", "starts_at", "ends_at",
                "created_at", "created_by")
_QUIET_MESSAGE = "a quiet window changes only by being removed"


def _quiet_fixed(row: str, cast: bool) -> str:
    return ", ".join(f"{row}.{c}::text" if cast and c in ("providers", "severities")
                     else f"{row}.{c}" for c in _QUIET_FIXED)


def _sqlite_guards(existing: set[str]) -> dict[tuple[str, str], str]:
    """(table, trigger) → its exact SQL, as migrations 0001, 0004 and 0006 create it."""
    guards: dict[tuple[str, str], str] = {}
    for table in EVIDENCE_TABLES:
        for verb in ("UPDATE", "DELETE"):
            guards[(table, f"{table}_no_{verb.lower()}")] = (
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")
    guards[(DELIVERIES, "deliveries_single_transition")] = (
        "CREATE TRIGGER deliveries_single_transition BEFORE UPDATE ON deliveries "
        "WHEN OLD.status <> 'in_flight' "
        "BEGIN SELECT RAISE(ABORT, 'a delivery changes only out of in_flight'); END")
    guards[(DELIVERIES, "deliveries_no_delete")] = (
        "CREATE TRIGGER deliveries_no_delete BEFORE DELETE ON deliveries "
        "BEGIN SELECT RAISE(ABORT, 'deliveries is append-only'); END")
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _QUIET_FIXED)
    guards[(QUIET_WINDOWS, "quiet_windows_only_removal")] = (
        "CREATE TRIGGER quiet_windows_only_removal BEFORE UPDATE ON quiet_windows "
        f"WHEN OLD.removed OR NOT NEW.removed OR {changed} "
        f"BEGIN SELECT RAISE(ABORT, '{_QUIET_MESSAGE}'); END")
    guards[(QUIET_WINDOWS, "quiet_windows_no_delete")] = (
        "CREATE TRIGGER quiet_windows_no_delete BEFORE DELETE ON quiet_windows "
        f"BEGIN SELECT RAISE(ABORT, '{_QUIET_MESSAGE}'); END")
    return {key: _squash(sql) for key, sql in guards.items() if key[0] in existing}


# The bodies of migration 0001's trigger functions: a replaced body ("RETURN NEW") guards
# nothing, whatever the trigger still calls.
PG_FUNCTIONS = {
    "cavra_append_only": "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END",
    "cavra_delivery_transition": (
        "BEGIN IF TG_OP = 'UPDATE' THEN IF OLD.status = 'in_flight' THEN RETURN NEW; END IF; "
        "RAISE EXCEPTION 'a delivery changes only out of in_flight'; END IF; "
        "RAISE EXCEPTION 'deliveries is append-only'; END"),
    "cavra_quiet_window_removal": (
        "BEGIN IF TG_OP = 'UPDATE' AND NOT OLD.removed AND NEW.removed "
        f"AND ({_quiet_fixed('NEW', True)}) IS NOT DISTINCT FROM ({_quiet_fixed('OLD', True)}) "
        f"THEN RETURN NEW; END IF; RAISE EXCEPTION '{_QUIET_MESSAGE}'; END"),
}


def _pg_guards(existing: set[str]) -> dict[tuple[str, str], str]:
    guards = {(t, f"{t}_append_only"): "cavra_append_only" for t in EVIDENCE_TABLES}
    guards[(DELIVERIES, "deliveries_append_only")] = "cavra_delivery_transition"
    guards[(QUIET_WINDOWS, "quiet_windows_only_removal")] = "cavra_quiet_window_removal"
    return {key: function for key, function in guards.items() if key[0] in existing}


def append_only_problems(db: Database) -> list[str]:
    """Append-only triggers that are missing, replaced, disabled or no longer guard."""
    problems: list[str] = []
    with db.read_engine.connect() as conn:
        if db.is_sqlite:
            existing = set(conn.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'table'")).scalars())
            found = {(str(t), str(n)): _squash(str(sql or "")) for n, t, sql in conn.execute(
                text("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"))}
            for (table, name), sql in _sqlite_guards(existing).items():
                harm = f"{table} can be changed in place"
                if (table, name) not in found:
                    problems.append(f"trigger {name} is missing: {harm}")
                elif found[(table, name)] != sql:
                    problems.append(f"trigger {name} was replaced: {harm}")
            return problems
        existing = _tables(conn)
        found_pg = {(str(t), str(n)): (str(f), _squash(str(src)), str(e), int(k))
                    for t, n, f, src, e, k in conn.execute(text(
                        "SELECT c.relname, t.tgname, p.proname, p.prosrc, t.tgenabled, t.tgtype "
                        "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                        "JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal "
                        "AND c.relnamespace = 'public'::regnamespace"))}
    for (table, name), function in _pg_guards(existing).items():
        harm = f"{table} can be changed in place"
        if (table, name) not in found_pg:
            problems.append(f"trigger {name} is missing: {harm}")
            continue
        runs, body, enabled, tgtype = found_pg[(table, name)]
        if runs != function or body != PG_FUNCTIONS[function]:
            problems.append(f"trigger {name} was replaced (or its function {runs}): {harm}")
        elif enabled == "D":
            problems.append(f"trigger {name} is disabled: {harm}")
        elif enabled == "R":
            problems.append(f"trigger {name} fires only on replicas: {harm}")
        elif tgtype & 25 != 25:  # ROW | DELETE | UPDATE
            problems.append(f"trigger {name} no longer guards every row's UPDATE and DELETE: "
                            f"{harm}")
    return problems


def privilege_problems(db: Database) -> list[str]:
    """Login roles that could delete or rewrite evidence (PostgreSQL; [] on SQLite).

    Counts what a role can reach by SET ROLE too (``MEMBER``), not only what it inherits.
    Column-level UPDATE of the transition columns on deliveries is the allowed change.
    """
    if db.is_sqlite:
        return []
    evidence = [*EVIDENCE_TABLES, DELIVERIES]
    with db.read_engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT l.rolname, "
            "EXISTS (SELECT 1 FROM pg_roles s WHERE s.rolsuper "
            "        AND pg_has_role(l.oid, s.oid, 'MEMBER')), "
            "ARRAY(SELECT c.relname::text FROM pg_class c WHERE c.oid = ANY(t.oids) "
            "      AND pg_has_role(l.oid, c.relowner, 'MEMBER') ORDER BY c.relname), "
            "ARRAY(SELECT p.priv || ' on ' || c.relname::text FROM pg_class c "
            "      CROSS JOIN unnest(ARRAY['DELETE', 'TRUNCATE', 'UPDATE', 'TRIGGER']) p(priv) "
            "      WHERE c.oid = ANY(t.oids) AND EXISTS (SELECT 1 FROM pg_roles m "
            "        WHERE pg_has_role(l.oid, m.oid, 'MEMBER') AND CASE "
            "          WHEN p.priv <> 'UPDATE' THEN has_table_privilege(m.oid, c.oid, p.priv) "
            "          WHEN c.relname <> :deliveries "
            "            THEN has_any_column_privilege(m.oid, c.oid, 'UPDATE') "
            "          ELSE has_table_privilege(m.oid, c.oid, 'UPDATE') OR EXISTS ("
            "            SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid "
            "            AND a.attnum > 0 AND NOT a.attisdropped "
            "            AND a.attname::text <> ALL(:allowed) "
            "            AND has_column_privilege(m.oid, c.oid, a.attnum, 'UPDATE')) END) "
            "      ORDER BY c.relname, p.priv) "
            "FROM pg_roles l, (SELECT array_agg(oid) AS oids FROM pg_class "
            "  WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') "
            "  AND relname::text = ANY(:evidence)) t "
            "WHERE l.rolcanlogin ORDER BY l.rolname"),
            {"evidence": evidence, "deliveries": DELIVERIES,
             "allowed": list(DELIVERY_TRANSITION_COLUMNS)}).all()
    problems: list[str] = []
    for name, superuser, owned, privileges in rows:
        if superuser:
            problems.append(f"login role {name} is a superuser: it can delete evidence")
        elif owned:
            shown = ", ".join(owned[:3]) + (", …" if len(owned) > 3 else "")
            problems.append(f"login role {name} owns evidence tables ({shown}): it can "
                            "delete evidence and drop the append-only triggers")
        elif privileges:
            problems.append(f"login role {name} has {', '.join(privileges)}: "
                            "it can delete or rewrite evidence")
    return problems
