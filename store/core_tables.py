"""Light SQLAlchemy Core handles on the tables that every refresh and quick command touches:
counters, the change marker, circuit state, leases, schedules, quiet windows, the audit
chain's tail, and the few evidence columns the health alerts read.

``store.tables`` maps every ORM class when imported (about 100 ms with ``sqlalchemy.orm``),
which is most of what `cavra metrics` would spend. These are plain ``table()`` clauses of the
same tables, no metadata and no mapper; the migrations own the schema and a test keeps each
column here in step with ``store.tables``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, TableClause, Text, column, table

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
    from sqlalchemy.orm import Session

_WHEN = DateTime(timezone=True)

metric_counters = table(
    "metric_counters",
    column("name", String), column("bucket", Integer), column("value", Integer))

change_marker = table("change_marker", column("id", Integer), column("version", Integer))

provider_health = table(
    "provider_health",
    column("name", String), column("consecutive_failures", Integer), column("state", String),
    column("opened_until", _WHEN), column("last_error", String),
    column("last_failure_at", _WHEN), column("last_success_at", _WHEN),
    column("updated_at", _WHEN))

locks = table("locks", column("name", String), column("holder", String),
              column("expires_at", _WHEN), column("acquired_at", _WHEN))

report_schedules = table(
    "report_schedules",
    column("schedule_id", String), column("name", String), column("kind", String),
    column("cron", String), column("interval_s", Integer), column("timezone", String),
    column("providers", JSON), column("enabled", Boolean), column("live", Boolean),
    column("misfire_grace_s", Integer), column("removed", Boolean),
    column("updated_at", _WHEN), column("created_at", _WHEN), column("created_by", String))

quiet_windows = table(
    "quiet_windows",
    column("window_id", String), column("name", String), column("providers", JSON),
    column("severities", JSON), column("starts_at", _WHEN), column("ends_at", _WHEN),
    column("removed", Boolean), column("removed_at", _WHEN), column("removed_by", String),
    column("created_at", _WHEN), column("created_by", String))

schedule_runs = table("schedule_runs", column("schedule_id", String),
                      column("scheduled_for", _WHEN))

worker_runs = table("worker_runs", column("schedule_id", String), column("started_at", _WHEN),
                    column("created_at", _WHEN), column("subject", String),
                    column("mode", String))

# What health reads of the evidence tables (the dashboard's Health tile: no ORM loaded).
retry_plans = table("retry_plans", column("created_at", _WHEN), column("subject", String))

execution_records = table(
    "execution_records", column("plan_id", String), column("provider", String),
    column("status", String), column("created_at", _WHEN))

deliveries = table(
    "deliveries", column("delivery_id", String), column("kind", String),
    column("run_id", String), column("provider", String), column("status", String),
    column("status_code", Integer), column("retry_after_s", Integer),
    column("finished_at", _WHEN), column("created_at", _WHEN))

pair_state = table(
    "pair_state", column("plan_id", String), column("provider", String),
    column("failures_since_success", Integer), column("latest_delivery_id", String),
    column("latest_status", String), column("latest_ack_state", String))

follow_up_runs = table("follow_up_runs", column("schedule_id", String),
                       column("started_at", _WHEN))

schedule_events = table("schedule_events", column("schedule_id", String),
                        column("kind", String))

audit_events = table(
    "audit_events",
    column("seq", Integer), column("at", _WHEN), column("actor", String),
    column("role", String), column("action", String), column("target_ids", JSON),
    column("policy_rule", String), column("decision", String), column("detail", String),
    column("evidence_sha256", String), column("prev_sha256", String), column("sha256", String),
    column("records", JSON), column("signature", Text))

CORE_TABLES = (metric_counters, change_marker, provider_health, locks, report_schedules,
               quiet_windows, schedule_runs, worker_runs, retry_plans, execution_records,
               deliveries, pair_state, follow_up_runs, schedule_events, audit_events)

# Evidence tables guarded by append-only triggers (the migrations) and by the role grants.
APPEND_ONLY_TABLES = (
    "escalation_plans",
    "acknowledgements",
    "retry_plans",
    "worker_runs",
    "execution_records",
    "executive_reports",
    "schedule_runs",
    "audit_events",
    "audit_checkpoints",
    "health_snapshots",
    "follow_up_runs",
    "follow_up_claims",
    "failover_claims",
)


def upsert(session: Session, target: TableClause) -> PostgresInsert | SqliteInsert:
    """``INSERT … ON CONFLICT`` for the session's database; PostgreSQL's dialect module is
    imported only when the database is PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgres_insert

        return postgres_insert(target)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(target)
