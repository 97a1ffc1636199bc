"""Light SQLAlchemy Core handles on the tables that every refresh and quick command touches:
counters, the change marker, circuit state, leases, schedules, quiet windows, the audit
chain's tail, and the evidence tables the lists and the health alerts read.

``store.tables`` maps every ORM class when imported (about 100 ms with ``sqlalchemy.orm``),
which is most of what `cavra metrics` would spend. These are plain ``table()`` clauses of the
same tables, no metadata and no mapper; the migrations own the schema and a test keeps each
column here in step with ``store.tables``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnClause,
    DateTime,
    Integer,
    String,
    TableClause,
    Text,
    column,
    table,
)

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



# Evidence tables whole, every column (the lists validate each row into a model; health and
# the quick reads use a few): a list's screen, shown the first time, and the dashboard's
# Health tile read them without mapping every ORM class. A test keeps each in step with
# ``store.tables`` column for column.
def _stamped(name: str, *columns: ColumnClause[Any]) -> TableClause:
    return table(name, *columns, column("created_at", _WHEN), column("created_by", String))


escalation_plans = _stamped(
    "escalation_plans", column("plan_id", String), column("alert_level", String),
    column("slo_minutes", Integer), column("routes", JSON), column("selected_providers", JSON),
    column("counts", JSON))
deliveries = _stamped(
    "deliveries", column("delivery_id", String), column("kind", String),
    column("plan_id", String), column("run_id", String), column("provider", String),
    column("status", String), column("status_code", Integer), column("latency_ms", Integer),
    column("attempt", Integer), column("idempotency_key", String), column("target", String),
    column("payload_sha256", String), column("error", String), column("retry_after_s", Integer),
    column("retry_plan_id", String), column("worker_run_id", String),
    column("finished_at", _WHEN), column("in_flight_until", _WHEN))
acknowledgements = _stamped(
    "acknowledgements", column("ack_id", String), column("plan_id", String),
    column("provider", String), column("state", String), column("acknowledged_by", String),
    column("external_ref", String), column("notes", Text))
retry_plans = _stamped(
    "retry_plans", column("retry_plan_id", String), column("subject", String),
    column("policy", JSON), column("decisions", JSON), column("counts", JSON))
worker_runs = _stamped(
    "worker_runs", column("run_id", String), column("subject", String), column("mode", String),
    column("trigger", String), column("retry_plan_id", String), column("schedule_id", String),
    column("started_at", _WHEN), column("summary", JSON))
execution_records = _stamped(
    "execution_records", column("execution_id", String), column("execution_sha256", String),
    column("status", String), column("reason", String), column("run_id", String),
    column("retry_plan_id", String), column("plan_id", String), column("provider", String),
    column("delivery_id", String), column("idempotency_key", String),
    column("payload_sha256", String), column("attempt", Integer), column("mode", String),
    column("executed_by", String), column("executed_at", _WHEN))
schedule_runs = _stamped(
    "schedule_runs", column("run_id", String), column("schedule_id", String),
    column("scheduled_for", _WHEN), column("trigger", String), column("window_start", _WHEN),
    column("window_end", _WHEN), column("report_id", String))
pair_state = table(
    "pair_state", column("plan_id", String), column("provider", String),
    column("definitive_count", Integer), column("failures_since_success", Integer),
    column("failed_status_codes", JSON), column("last_failure_at", _WHEN),
    column("last_success_at", _WHEN), column("retry_after_s", Integer),
    column("latest_delivery_id", String), column("latest_status", String),
    column("latest_ack_id", String), column("latest_ack_state", String),
    column("latest_ack_by", String), column("accepted_by", String),
    column("ack_pending", Boolean), column("updated_at", _WHEN))
WHOLE_TABLES = (escalation_plans, deliveries, acknowledgements, retry_plans, worker_runs,
                execution_records, schedule_runs, pair_state)


CORE_TABLES = (metric_counters, change_marker, provider_health, locks, report_schedules,
               quiet_windows, follow_up_runs, schedule_events, audit_events, *WHOLE_TABLES)

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
