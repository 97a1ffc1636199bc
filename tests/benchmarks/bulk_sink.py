"""Where bulk_seed's rows go: buffered ``executemany`` per table, plus the derived state the
services keep beside the evidence (metric counters, the audit chain, the change marker).

Rows are plain tuples in the column order of ``COLUMNS``; a schema change that adds or renames
a column fails loudly at start-up instead of producing a silently different database.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import datetime
from typing import Any

from store.audit import GENESIS
from store.counters import ALL_TIME
from store.digest import sha256_of
from store.policy import Identity, authorize
from store.tables import Base

COLUMNS: dict[str, tuple[str, ...]] = {
    "recovery_items": ("recovery_id", "connector", "category", "drill_id", "playbook_id",
                       "opened_at", "closure_state", "failure_count", "created_at", "created_by"),
    "escalation_plans": ("plan_id", "alert_level", "slo_minutes", "routes", "selected_providers",
                         "counts", "created_at", "created_by"),
    "plan_state": ("plan_id", "alert_level", "open", "unresolved_providers"),
    "deliveries": ("delivery_id", "kind", "plan_id", "run_id", "provider", "status",
                   "status_code", "latency_ms", "attempt", "idempotency_key", "target",
                   "payload_sha256", "error", "retry_after_s", "retry_plan_id", "worker_run_id",
                   "finished_at", "in_flight_until", "created_at", "created_by"),
    "acknowledgements": ("ack_id", "plan_id", "provider", "state", "acknowledged_by",
                         "external_ref", "notes", "created_at", "created_by"),
    "retry_plans": ("retry_plan_id", "policy", "decisions", "counts", "created_at", "created_by"),
    "worker_runs": ("run_id", "mode", "trigger", "retry_plan_id", "schedule_id", "started_at",
                    "summary", "created_at", "created_by"),
    "execution_records": ("execution_id", "execution_sha256", "status", "reason", "run_id",
                          "retry_plan_id", "plan_id", "provider", "delivery_id",
                          "idempotency_key", "payload_sha256", "attempt", "mode", "executed_by",
                          "executed_at", "created_at", "created_by"),
    "executive_reports": ("report_id", "window_start", "window_end", "status", "body",
                          "created_at", "created_by"),
    "report_schedules": ("schedule_id", "name", "kind", "cron", "interval_s", "timezone",
                         "providers", "enabled", "live", "misfire_grace_s", "removed",
                         "updated_at", "created_at", "created_by"),
    "schedule_runs": ("run_id", "schedule_id", "scheduled_for", "trigger", "window_start",
                      "window_end", "report_id", "created_at", "created_by"),
    "schedule_events": ("schedule_id", "scheduled_for", "kind", "detail", "created_at",
                        "created_by"),
    "pair_state": ("plan_id", "provider", "definitive_count", "failures_since_success",
                   "failed_status_codes", "last_failure_at", "last_success_at", "retry_after_s",
                   "latest_delivery_id", "latest_status", "latest_ack_id", "latest_ack_state",
                   "latest_ack_by", "accepted_by", "ack_pending", "updated_at"),
    "audit_events": ("seq", "at", "actor", "role", "action", "target_ids", "policy_rule",
                     "decision", "detail", "evidence_sha256", "prev_sha256", "sha256"),
}
OPTIONAL_COLUMNS = {"schedule_events": {"event_id"},  # autoincrement: SQLite fills it
                    "audit_events": {"records", "signature"},  # NULL: like pre-0004 events
                    # NULL: escalation plans and runs, as before schema 0005
                    "retry_plans": {"subject"}, "worker_runs": {"subject"}}
BATCH = 20_000
ROLE = "single-operator"  # the bench config has no [roles] table, as a default install


def check_schema() -> None:
    for table, columns in COLUMNS.items():
        known = set(Base.metadata.tables[table].columns.keys())
        expected = set(columns) | OPTIONAL_COLUMNS.get(table, set())
        if known != expected:
            raise SystemExit(f"bulk_seed: table {table} changed (schema has {sorted(known)}); "
                             "update tests/benchmarks/bulk_sink.py and SEED_VERSION")


def stored(moment: datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite DateTime writes: naive UTC with microseconds."""
    if moment is None:
        return None
    return moment.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def as_json(value: Any) -> str:
    return json.dumps(value)  # SQLAlchemy's JSON type serialises with the defaults too


def hour_of(moment: datetime) -> int:
    return int(moment.timestamp()) // 3600


class Sink:
    """Buffers rows, counts metrics and extends the audit chain, all in one open transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.buffers: dict[str, list[tuple[Any, ...]]] = {table: [] for table in COLUMNS}
        self.statements = {
            table: f"INSERT INTO {table} ({', '.join(cols)}) "
                   f"VALUES ({', '.join('?' * len(cols))})"
            for table, cols in COLUMNS.items()}
        self.counters: Counter[tuple[str, int]] = Counter()
        self.rows: Counter[str] = Counter()
        self.audit_seq = 0
        self.audit_head = GENESIS

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        buffer = self.buffers[table]
        buffer.append(row)
        if len(buffer) >= BATCH:
            self.flush(table)

    def flush(self, table: str) -> None:
        buffer = self.buffers[table]
        if buffer:
            self.conn.executemany(self.statements[table], buffer)
            self.rows[table] += len(buffer)
            buffer.clear()

    def flush_all(self) -> None:
        for table in COLUMNS:
            self.flush(table)

    def bump(self, name: str, at: datetime, delta: int = 1) -> None:
        """Like store.counters.bump: the all-time row and the hour row."""
        self.counters[(name, ALL_TIME)] += delta
        self.counters[(name, hour_of(at))] += delta

    def gauge(self, name: str, value: int) -> None:
        self.counters[(name, ALL_TIME)] = value

    def audit(self, *, at: datetime, actor: str, action: str, targets: list[str], detail: str,
              evidence: Any, rule_action: str | None = None) -> None:
        """One allowed event, hashed exactly as store.audit.append_audit hashes it."""
        self.audit_seq += 1
        rule = _rule(rule_action or action)
        fields = {
            "seq": self.audit_seq, "at": at.isoformat(), "actor": actor, "role": ROLE,
            "action": action, "target_ids": targets, "policy_rule": rule, "decision": "allow",
            "detail": detail[:255], "evidence_sha256": sha256_of(evidence),
            "prev_sha256": self.audit_head,
        }
        digest = sha256_of(fields)  # store.audit._event_digest: every field but sha256
        self.add("audit_events", (
            self.audit_seq, stored(at), actor, ROLE, action, as_json(targets), rule, "allow",
            fields["detail"], fields["evidence_sha256"], self.audit_head, digest))
        self.audit_head = digest

    def finish(self) -> None:
        """Write the derived singletons: counters, chain head, change marker."""
        self.flush_all()
        self.conn.executemany(
            "INSERT INTO metric_counters (name, bucket, value) VALUES (?, ?, ?)",
            [(name, bucket, value) for (name, bucket), value in sorted(self.counters.items())])
        self.conn.execute("UPDATE audit_head SET seq = ?, sha256 = ? WHERE id = 1",
                          (self.audit_seq, self.audit_head))
        # Every write the services make bumps the marker once per audited transaction.
        self.conn.execute("UPDATE change_marker SET version = ? WHERE id = 1", (self.audit_seq,))


_RULE_CACHE: dict[str, str] = {}


def _rule(action: str) -> str:
    if action not in _RULE_CACHE:
        everyone = Identity("bench", frozenset({"operator", "release_manager"}))
        _RULE_CACHE[action] = authorize(everyone, action).rule
    return _RULE_CACHE[action]

