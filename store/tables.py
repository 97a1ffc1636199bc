"""SQLAlchemy tables. Evidence tables are append-only (SPEC §3); projection tables
(``pair_state``, ``plan_state``, ``metric_counters``, ``locks``, ``change_marker``) are
derived state kept in the same transaction as the evidence, so reads stay constant-time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON, list[Any]: JSON}


class _Stamped:
    created_at: Mapped[datetime] = mapped_column(index=True)
    created_by: Mapped[str] = mapped_column(String(64))


class RecoveryItemRow(_Stamped, Base):
    __tablename__ = "recovery_items"
    recovery_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    connector: Mapped[str] = mapped_column(String(128), index=True)
    category: Mapped[str] = mapped_column(String(128))
    drill_id: Mapped[str | None] = mapped_column(String(128))
    playbook_id: Mapped[str | None] = mapped_column(String(128))
    opened_at: Mapped[datetime] = mapped_column(index=True)
    closure_state: Mapped[str] = mapped_column(String(16), index=True)
    failure_count: Mapped[int] = mapped_column(Integer, default=0)


class EscalationPlanRow(_Stamped, Base):
    __tablename__ = "escalation_plans"
    plan_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    alert_level: Mapped[str] = mapped_column(String(16))
    slo_minutes: Mapped[int] = mapped_column(Integer)
    routes: Mapped[list[Any]] = mapped_column(JSON)
    selected_providers: Mapped[list[Any]] = mapped_column(JSON)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)


class DeliveryRow(_Stamped, Base):
    __tablename__ = "deliveries"
    delivery_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # escalation | executive | drill
    plan_id: Mapped[str | None] = mapped_column(String(32))
    run_id: Mapped[str | None] = mapped_column(String(32), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(80))
    target: Mapped[str] = mapped_column(String(255))
    payload_sha256: Mapped[str] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(255))
    retry_after_s: Mapped[int | None] = mapped_column(Integer)
    retry_plan_id: Mapped[str | None] = mapped_column(String(32))
    worker_run_id: Mapped[str | None] = mapped_column(String(32))
    finished_at: Mapped[datetime | None] = mapped_column()
    in_flight_until: Mapped[datetime | None] = mapped_column()
    # (status, kind): the executive retry fold finds its failed runs without visiting the
    # escalations' failures (migration 0009).
    __table_args__ = (Index("ix_deliveries_pair", "plan_id", "provider", "created_at"),
                      Index("ix_deliveries_status_kind", "status", "kind"))


class AcknowledgementRow(_Stamped, Base):
    __tablename__ = "acknowledgements"
    ack_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    acknowledged_by: Mapped[str] = mapped_column(String(64))
    external_ref: Mapped[str | None] = mapped_column(String(255))
    notes: Mapped[str | None] = mapped_column(Text)  # private: never leaves the database
    __table_args__ = (Index("ix_acks_pair", "plan_id", "provider", "created_at"),)


class RetryPlanRow(_Stamped, Base):
    __tablename__ = "retry_plans"
    retry_plan_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[str | None] = mapped_column(String(16))  # None (older rows): escalation
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    decisions: Mapped[list[Any]] = mapped_column(JSON)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)


class WorkerRunRow(_Stamped, Base):
    __tablename__ = "worker_runs"
    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[str | None] = mapped_column(String(16))  # None (older rows): escalation
    mode: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))
    retry_plan_id: Mapped[str] = mapped_column(String(32))
    schedule_id: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column()
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    __table_args__ = (Index("ix_worker_runs_schedule", "schedule_id", "started_at"),)


class HealthSnapshotRow(_Stamped, Base):
    """``cavra health --record``: the alerts as they stood, kept as evidence."""

    __tablename__ = "health_snapshots"
    snapshot_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    alerts: Mapped[list[Any]] = mapped_column(JSON)
    __table_args__ = (Index("ix_health_snapshots_created_at", "created_at"),)


class FollowUpRunRow(_Stamped, Base):
    """``cavra escalation follow-up``: what one run decided (and, live, claimed and sent)."""

    __tablename__ = "follow_up_runs"
    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))  # dry_run | live
    trigger: Mapped[str] = mapped_column(String(16))  # manual | schedule
    schedule_id: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column()
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    escalations: Mapped[list[Any]] = mapped_column(JSON)
    # The suppressed pairs it failed over (or, dry, would): schema 0008; None on older rows.
    failovers: Mapped[list[Any] | None] = mapped_column(JSON)
    __table_args__ = (Index("ix_follow_up_runs_schedule", "schedule_id", "started_at"),)


class FollowUpClaimRow(Base):
    """A plan's level N (2 and up), claimed once, in the transaction that records its sends:
    two runs racing for it (two schedulers, the CLI and a scheduler) send it once."""

    __tablename__ = "follow_up_claims"
    plan_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    run_id: Mapped[str] = mapped_column(String(32))
    providers: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(64))


class FailoverClaimRow(Base):
    """A suppressed escalation pair (plan, provider) failed over to ``target``, claimed once,
    in the transaction that records the failover send (schema 0008): racing runs send it
    once, and no pair ever fails over twice."""

    __tablename__ = "failover_claims"
    plan_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    target: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))  # sent | already_sent
    run_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(64))


class ExecutionRecordRow(_Stamped, Base):
    __tablename__ = "execution_records"
    execution_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    execution_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str] = mapped_column(String(32), index=True)
    retry_plan_id: Mapped[str] = mapped_column(String(32))
    plan_id: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(64))
    delivery_id: Mapped[str | None] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(80))
    payload_sha256: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))
    executed_by: Mapped[str] = mapped_column(String(64))
    executed_at: Mapped[datetime] = mapped_column()
    # (status, created_at): health's failed executions of the lookback window are a range,
    # not every failure ever (migration 0009).
    __table_args__ = (Index("ix_execution_records_status_created_at", "status", "created_at"),)


class ExecutiveReportRow(_Stamped, Base):
    __tablename__ = "executive_reports"
    report_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    window_start: Mapped[datetime] = mapped_column()
    window_end: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class ScheduleRow(_Stamped, Base):
    """A schedule of any kind (report, retry-worker, report-retry, follow-up) is
    configuration, not evidence: enable/disable/remove change it (audited). The table keeps
    its first name, from when schedules only built reports."""

    __tablename__ = "report_schedules"
    schedule_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # report | retry-worker | report-retry | …
    cron: Mapped[str | None] = mapped_column(String(128))
    interval_s: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64))
    providers: Mapped[list[Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    live: Mapped[bool] = mapped_column(Boolean, default=False)
    misfire_grace_s: Mapped[int] = mapped_column(Integer, default=300)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column()


class QuietWindowRow(_Stamped, Base):
    """Configuration, like a schedule, and vouched for by the audit chain the same way; its
    one in-place change is being removed (triggers of migration 0006 refuse any other)."""

    __tablename__ = "quiet_windows"
    window_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    providers: Mapped[list[Any]] = mapped_column(JSON)
    severities: Mapped[list[Any]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column(index=True)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    removed_at: Mapped[datetime | None] = mapped_column()
    removed_by: Mapped[str | None] = mapped_column(String(64))


class ScheduleRunRow(_Stamped, Base):
    __tablename__ = "schedule_runs"
    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    schedule_id: Mapped[str | None] = mapped_column(String(32))
    scheduled_for: Mapped[datetime] = mapped_column()
    trigger: Mapped[str] = mapped_column(String(16))
    window_start: Mapped[datetime] = mapped_column()
    window_end: Mapped[datetime] = mapped_column()
    report_id: Mapped[str] = mapped_column(String(32))
    __table_args__ = (
        UniqueConstraint("schedule_id", "scheduled_for", name="uq_schedule_run_slot"),)


class ScheduleEventRow(_Stamped, Base):
    """Missed fires and job errors (SPEC §8), counted in metrics and shown in the console."""

    __tablename__ = "schedule_events"
    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schedule_id: Mapped[str] = mapped_column(String(32), index=True)
    scheduled_for: Mapped[datetime | None] = mapped_column()
    kind: Mapped[str] = mapped_column(String(16))  # missed | error | fired
    detail: Mapped[str] = mapped_column(String(255))


class AuditEventRow(Base):
    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_ids: Mapped[list[Any]] = mapped_column(JSON)
    policy_rule: Mapped[str] = mapped_column(String(128))
    decision: Mapped[str] = mapped_column(String(8))  # allow | deny
    detail: Mapped[str] = mapped_column(String(255))
    evidence_sha256: Mapped[str] = mapped_column(String(64))
    prev_sha256: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    # record ID → digest of the record's row as this event left it (schema 0004; older
    # events have none). Part of the hashed content, so the chain vouches for the rows.
    records: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The actor's SSH signature over ``sha256`` ([audit] signing = "ssh"); not hashed.
    signature: Mapped[str | None] = mapped_column(Text)


class AuditCheckpointRow(Base):
    """A signed statement of the chain head, as sent to the audit witnesses."""

    __tablename__ = "audit_checkpoints"
    checkpoint_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, index=True)
    head_sha256: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column()
    signer: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))  # hmac | ssh
    signature: Mapped[str] = mapped_column(Text)
    witnesses: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(64))


class AuditTargetRow(Base):
    """Which audit events name a record, so evidence lookups never scan the chain."""

    __tablename__ = "audit_targets"
    target_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)


class AuditHeadRow(Base):
    """The chain head: locking this row serialises appends on any database."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))


class MetricCounterRow(Base):
    """bucket 0 = all time; otherwise the hour (epoch seconds // 3600) the event fell in."""

    __tablename__ = "metric_counters"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class PairStateRow(Base):
    """Latest facts of one (plan, provider) pair, so retry planning never scans history."""

    __tablename__ = "pair_state"
    plan_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    definitive_count: Mapped[int] = mapped_column(Integer, default=0)
    failures_since_success: Mapped[int] = mapped_column(Integer, default=0)
    failed_status_codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    last_failure_at: Mapped[datetime | None] = mapped_column()
    last_success_at: Mapped[datetime | None] = mapped_column()
    retry_after_s: Mapped[int | None] = mapped_column(Integer)
    latest_delivery_id: Mapped[str | None] = mapped_column(String(32))
    latest_status: Mapped[str | None] = mapped_column(String(16))
    latest_ack_id: Mapped[str | None] = mapped_column(String(32))
    latest_ack_state: Mapped[str | None] = mapped_column(String(16))
    latest_ack_by: Mapped[str | None] = mapped_column(String(64))
    accepted_by: Mapped[str | None] = mapped_column(String(64))  # separation of duties
    ack_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column()


class PlanStateRow(Base):
    __tablename__ = "plan_state"
    plan_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    alert_level: Mapped[str] = mapped_column(String(16))
    open: Mapped[bool] = mapped_column(Boolean)
    unresolved_providers: Mapped[list[Any]] = mapped_column(JSON)
    # The follow-up run reads the open plans only (schema 0007).
    __table_args__ = (Index("ix_plan_state_open", "open", "plan_id"),)


class LockRow(Base):
    """Named leases: the live retry worker and the scheduler leader."""

    __tablename__ = "locks"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128))
    expires_at: Mapped[datetime | None] = mapped_column()
    acquired_at: Mapped[datetime | None] = mapped_column()  # when this holder took it


class ChangeMarkerRow(Base):
    """Bumped by every write, so a console can notice other processes' changes cheaply."""

    __tablename__ = "change_marker"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class ProviderHealthRow(Base):
    """Circuit-breaker state per provider: derived from deliveries, updated with their outcome."""

    __tablename__ = "provider_health"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="closed")  # closed | open
    opened_until: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(255))
    last_failure_at: Mapped[datetime | None] = mapped_column()
    last_success_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
