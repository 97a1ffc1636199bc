"""Frozen pydantic models: everything that crosses a package boundary."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from store.clock import as_utc

ClosureState = Literal["open", "resolved", "mitigated", "deferred", "escalated", "reopened"]
AlertLevel = Literal["healthy", "warning", "critical"]
Severity = Literal["critical", "warning"]
DeliveryStatus = Literal["in_flight", "delivered", "failed", "unknown"]
AckState = Literal["acknowledged", "accepted", "deferred", "escalated", "resolved", "dismissed"]
RetryAction = Literal["retry", "wait", "suppress"]
RunMode = Literal["dry_run", "live", "abandoned"]  # abandoned: its process died mid-run
ExecutionStatus = Literal["dry_run", "delivered", "failed", "skipped", "blocked", "unknown"]

ACK_STATES: tuple[str, ...] = ("acknowledged", "accepted", "deferred", "escalated", "resolved",
                               "dismissed")
ACK_CLEARS_LIVE_RETRY = frozenset({"accepted", "acknowledged", "resolved"})
ACK_ANSWERED = frozenset({"accepted", "acknowledged", "resolved", "dismissed"})  # not pending
ACK_SETTLED = frozenset({"resolved", "dismissed"})  # a settled pair is never sent again
EXECUTION_STATUSES: tuple[str, ...] = ("dry_run", "delivered", "failed", "skipped", "blocked",
                                       "unknown")


class Record(BaseModel):
    # defer_build: a model's validator is built when it is first used, not on import (this
    # module's ~20 models cost a quick command ~25 ms otherwise). Inherited by every record.
    # A field whose stored and wire name is ambiguous (``run_id`` names a schedule run on a
    # delivery, a worker run on an execution record) has a precise name in code and keeps
    # the SPEC's name as its alias: read by either, written (JSON, digests, rows) by the alias.
    model_config = ConfigDict(frozen=True, from_attributes=True, defer_build=True,
                              validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True)

    @field_validator("*", mode="before")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        # SQLite hands stored (UTC) datetimes back naive; text input is left to the field type.
        return as_utc(value) if isinstance(value, datetime) else value

    @field_validator("*", mode="after")
    @classmethod
    def _in_utc(cls, value: Any) -> Any:
        # Text with an offset ("…T10:00+02:00") parses to that offset: store the instant in
        # UTC, or SQLite (which keeps the wall time and drops the offset) shifts it.
        return as_utc(value) if isinstance(value, datetime) else value


class RecoveryItem(Record):
    model_config = ConfigDict(frozen=True, from_attributes=True, extra="forbid")
    recovery_id: str = Field(min_length=1, max_length=128)
    connector: str = Field(min_length=1, max_length=128)
    category: str = Field(min_length=1, max_length=128)
    opened_at: AwareDatetime  # a naive time would be guessed at: refuse it
    drill_id: str | None = Field(default=None, max_length=128)
    playbook_id: str | None = Field(default=None, max_length=128)
    closure_state: ClosureState = "open"
    failure_count: int = Field(default=0, ge=0, le=2**31 - 1)


class EscalationRoute(Record):
    connector: str
    category: str
    severity: Severity
    reason: str
    recommended_action: str
    age_minutes: int
    slo_status: Literal["open", "breached", "review_required"]
    failure_count: int
    providers: list[str]


class EscalationPlan(Record):
    plan_id: str
    alert_level: AlertLevel
    slo_minutes: int
    routes: list[EscalationRoute]
    selected_providers: list[str]
    counts: dict[str, int]
    created_at: datetime
    created_by: str


class Delivery(Record):
    delivery_id: str
    kind: Literal["escalation", "executive", "drill", "resolve", "self_alert"]
    plan_id: str | None
    schedule_run_id: str | None = Field(alias="run_id")  # an executive report's run
    provider: str
    status: DeliveryStatus
    status_code: int | None
    latency_ms: int | None
    attempt: int
    idempotency_key: str
    target: str
    payload_sha256: str
    error: str | None
    retry_after_s: int | None
    retry_plan_id: str | None
    # The worker run or follow-up run that sent it (None: sent by hand or by a schedule run).
    sent_by_run_id: str | None = Field(alias="worker_run_id")
    created_at: datetime
    created_by: str
    finished_at: datetime | None


class Acknowledgement(Record):
    ack_id: str
    plan_id: str
    provider: str
    state: AckState
    acknowledged_by: str
    external_ref: str | None
    created_at: datetime
    created_by: str
    # notes are private: they are deliberately absent from this model.


class RetryDecision(Record):
    plan_id: str
    provider: str
    action: RetryAction
    reason: str
    retry_count: int
    next_retry_at: datetime | None
    latest_delivery_id: str | None
    failed_status_codes: list[int]
    attempt: int
    idempotency_key: str


class RetryPlan(Record):
    retry_plan_id: str
    subject: str | None = None  # None: escalation pairs; "executive": (schedule run, provider)
    policy: dict[str, Any]
    decisions: list[RetryDecision]
    counts: dict[str, int]
    created_at: datetime
    created_by: str


class ExecutionRecord(Record):
    execution_id: str
    execution_sha256: str
    status: ExecutionStatus
    reason: str
    worker_run_id: str = Field(alias="run_id")  # the run that judged (and maybe sent) it
    retry_plan_id: str
    plan_id: str
    provider: str
    delivery_id: str | None
    idempotency_key: str
    payload_sha256: str
    attempt: int
    mode: RunMode
    executed_by: str
    executed_at: datetime


class WorkerRun(Record):
    run_id: str
    subject: str | None = None  # None: the escalation retry worker; "executive": report retry
    mode: RunMode
    trigger: Literal["manual", "schedule", "unknown"]  # unknown: an abandoned run's
    retry_plan_id: str
    schedule_id: str | None
    started_at: datetime
    summary: dict[str, int]
    created_at: datetime
    created_by: str


class WorkerRunResult(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    run: WorkerRun
    executions: list[ExecutionRecord]

    @property
    def acknowledgement_pending(self) -> int:
        return self.run.summary.get("acknowledgement_pending", 0)


class FollowUpRun(Record):
    """A `cavra escalation follow-up` run: what it found (``summary``) and, per plan it
    escalated (or, dry, would escalate), the level, the providers and the deliveries."""

    run_id: str
    mode: Literal["dry_run", "live"]
    trigger: Literal["manual", "schedule"]
    schedule_id: str | None
    started_at: datetime
    summary: dict[str, int]
    escalations: list[dict[str, Any]]
    created_at: datetime
    created_by: str
    # Suppressed pairs it failed over (dry: would), per pair: schema 0008 (older runs: none).
    failovers: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("failovers", mode="before")
    @classmethod
    def _none_is_no_failover(cls, value: Any) -> Any:
        return [] if value is None else value


class FailoverClaim(Record):
    """A suppressed escalation pair (``plan_id``, ``provider``) failed over to ``target``
    by a follow-up run: once per pair (``failover_claims``)."""

    plan_id: str
    provider: str
    target: str
    reason: str  # why the pair was suppressed: max_attempts_reached, permanent_error: …
    status: Literal["sent", "already_sent"]
    follow_up_run_id: str = Field(alias="run_id")
    created_at: datetime
    created_by: str


class FailoverEvidence(Record):
    """A delivery's failover links (`evidence show`): the claim it was sent for (this is the
    failover send of another pair), and the claim of its own pair (its pair failed over)."""

    sent_for: FailoverClaim | None = None
    pair_failed_over: FailoverClaim | None = None


class PlanWithLevel(BaseModel):
    """A plan as the Escalations list shows it: with its escalation level (``L2/3``) and the
    time left before the next (``12m``, ``due``, ``-``), as read with the page."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    plan: EscalationPlan
    level: str
    next: str
    outcome: str | None = None  # store.rules.follow_up's answer; None: not open


class ExecutiveReport(Record):
    report_id: str
    window_start: datetime
    window_end: datetime
    status: str
    body: dict[str, Any]
    created_at: datetime
    created_by: str


class Schedule(Record):
    schedule_id: str
    name: str
    kind: Literal["report", "retry-worker", "report-retry", "follow-up"]
    cron: str | None
    interval_s: int | None
    timezone: str
    providers: list[str]
    enabled: bool
    live: bool
    misfire_grace_s: int
    created_at: datetime
    created_by: str
    updated_at: datetime


class QuietWindow(Record):
    """A quiet window (``cavra quiet add``): sends to ``providers`` at the ``severities`` it
    names are recorded ``skipped`` instead of sent, from ``starts_at`` until ``ends_at``."""

    window_id: str
    name: str
    providers: list[str]
    severities: list[Severity]
    starts_at: datetime
    ends_at: datetime
    removed: bool
    removed_at: datetime | None
    removed_by: str | None
    created_at: datetime
    created_by: str


class ScheduleRun(Record):
    run_id: str
    schedule_id: str | None
    scheduled_for: datetime
    trigger: Literal["manual", "schedule"]
    window_start: datetime
    window_end: datetime
    report_id: str
    created_at: datetime
    created_by: str


class AuditEvent(Record):
    seq: int
    at: datetime
    actor: str
    role: str
    action: str
    target_ids: list[str]
    policy_rule: str
    decision: Literal["allow", "deny"]
    detail: str
    evidence_sha256: str
    prev_sha256: str
    sha256: str
    records: dict[str, str] | None = None
    signature: str | None = None


class PairState(Record):
    plan_id: str
    provider: str
    definitive_count: int
    failures_since_success: int
    failed_status_codes: list[int]
    last_failure_at: datetime | None
    last_success_at: datetime | None
    retry_after_s: int | None
    latest_delivery_id: str | None
    latest_status: str | None
    latest_ack_id: str | None
    latest_ack_state: str | None
    latest_ack_by: str | None
    accepted_by: str | None = None
    ack_pending: bool
    latest_status_code: int | None = None  # read with the latest delivery, not stored here


class Page(BaseModel):
    """One keyset page: ``next_cursor`` continues after the last item."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    items: list[Any]
    next_cursor: str | None


class InterruptedRun(Record):
    """A worker run whose row was never written (its process died mid-run)."""

    run_id: str
    status: str = "not completed (interrupted run)"


class RetryPlanPolicy(Record):
    retry_plan_id: str
    policy: dict[str, Any]


class ScheduleRunLink(Record):
    run_id: str
    schedule_id: str | None  # None: a run made by hand
    report_id: str | None


class PlanSummary(Record):
    plan_id: str
    alert_level: AlertLevel
    selected_providers: list[str]
    counts: dict[str, Any]
    created_at: datetime
    created_by: str


class EvidenceChain(Record):
    """The bound chain behind an execution or a delivery (`cavra evidence show`): what ran,
    what decided it, what was sent, the plan, the pair's acknowledgements and the audit
    events. Parts that do not apply are left unset and absent from ``to_json``."""

    id: str
    execution: ExecutionRecord | None = None
    worker_run: WorkerRun | InterruptedRun | None = None
    follow_up_run: FollowUpRun | InterruptedRun | None = None  # a delivery a follow-up made
    failover: FailoverEvidence | None = None  # a failover send, or a pair that failed over
    retry_decision: dict[str, Any] | None = None
    retry_plan: RetryPlanPolicy | None = None
    delivery: Delivery | None = None
    schedule_run: ScheduleRunLink | None = None
    escalation_plan: PlanSummary | None = None
    acknowledgements: list[Acknowledgement] = Field(default_factory=list)
    audit_events: list[AuditEvent] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """What the CLI prints: the parts that apply, in chain order."""
        return {name: getattr(self, name) if name in ("id", "retry_decision") else
                (None if getattr(self, name) is None else self._dump(getattr(self, name)))
                for name in type(self).model_fields if name in self.model_fields_set}

    @staticmethod
    def _dump(part: Any) -> Any:
        if isinstance(part, list):
            return [item.model_dump(mode="json") for item in part]
        return part.model_dump(mode="json")
