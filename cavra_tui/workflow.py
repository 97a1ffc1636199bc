"""The console's workflow actions: each calls the same service the CLI calls and returns the
one line the user sees. They run in thread workers, so they may block; they hold no rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cavra_tui.bootstrap import Runtime
from cavra_tui.formatting import counts
from scheduler.schedules import add_schedule
from store.errors import UserError
from store.models import Delivery, Severity, WorkerRunResult
from store.rules.quiet import quiet_reason, send_level, silencing
from store.services.escalation import build_plan
from store.services.listing import latest_ack_states, list_schedule_runs
from store.services.quiet_reads import quiet_windows_from
from store.services.quiet_windows import QuietSkip
from store.services.reports import create_schedule_run
from store.services.retry import build_retry_plan
from store.services.schedule_reads import describe_trigger
from store.services.schedules import disable_schedule, enable_schedule, get_schedule
from workflows.delivery import deliver_escalation_outcome, deliver_report_outcome
from workflows.pagerduty_resolve import acknowledge_and_resolve
from workflows.report_retry import run_report_retry
from workflows.worker import run_retry_worker


@dataclass(frozen=True)
class ActionResult:
    summary: str
    severity: str = "information"  # information | warning | error (Textual notify severities)
    result: Any = None
    focus: tuple[str, str] | None = None  # (table ID, record ID): the record just created


@dataclass(frozen=True)
class AckRequest:
    plan_id: str
    provider: str
    state: str
    external_ref: str | None
    notes: str | None


@dataclass(frozen=True)
class ScheduleRequest:
    name: str
    cron: str | None
    every: str | None
    timezone: str
    kind: str


WOULD_BLOCK = "live_would_block: "  # the worker's dry-run reason when a gate would stop live


@dataclass(frozen=True)
class LivePreview:
    """What a live run would send, from the dry-run that precedes it. The worker decides
    the gates (acknowledgement, separation of duties); the preview only reads its verdict."""

    dry_run: WorkerRunResult
    ack_states: dict[tuple[str, str], str | None]
    subject: str = "escalation"  # or "executive": report re-sends, no acknowledgement gate

    @property
    def blocked(self) -> dict[tuple[str, str], str]:
        """(plan, provider) → the gate that would block it live."""
        return {(e.plan_id, e.provider): e.reason.removeprefix(WOULD_BLOCK)
                for e in self.dry_run.executions
                if e.status == "dry_run" and e.reason.startswith(WOULD_BLOCK)}

    @property
    def blocked_pairs(self) -> list[tuple[str, str]]:
        return list(self.blocked)

    @property
    def sendable(self) -> int:
        return len(self.sendable_keys)

    @property
    def sendable_keys(self) -> frozenset[str]:
        """Idempotency keys the dialog shows as "send": all a confirmed live run may send."""
        blocked = self.blocked
        return frozenset(e.idempotency_key for e in self.dry_run.executions
                         if e.status == "dry_run" and (e.plan_id, e.provider) not in blocked)


def _deliveries_line(what: str, deliveries: list[Delivery],
                     skipped: list[QuietSkip] | None = None) -> ActionResult:
    quiet = ", ".join(f"{s.provider} skipped ({s.reason})" for s in skipped or [])
    if not deliveries:
        if quiet:
            return ActionResult(f"{what}: {quiet}", "warning", deliveries)
        return ActionResult(f"{what}: nothing to send (every provider already succeeded)")
    failed = [d for d in deliveries if d.status != "delivered"]
    text = ", ".join([*(f"{d.provider} {d.status}" for d in deliveries), *([quiet] if quiet
                                                                          else [])])
    return ActionResult(f"{what}: {text}", "warning" if failed or quiet else "information",
                        deliveries)


def plan_escalation(runtime: Runtime) -> ActionResult:
    plan = build_plan(runtime.ctx)
    return ActionResult(f"plan {plan.plan_id}: {plan.alert_level}, {len(plan.routes)} routes → "
                   f"{', '.join(plan.selected_providers) or 'no provider'}", result=plan,
                   focus=("plans", plan.plan_id))


@dataclass(frozen=True)
class SendPreview:
    """What a deliver action would send: one row per provider (provider, redacted target,
    attempt, idempotency key), who sends, and providers it leaves out (and why)."""

    what: str
    subject_id: str
    rows: list[tuple[str, str, str, str]]
    actor: str
    left_out: list[str]


def preview_plan_send(runtime: Runtime, plan_id: str) -> SendPreview:
    from store.rules.retry_decision import idempotency_key
    from store.services.escalation import get_plan
    from store.services.send_state import next_escalation_attempt, settled_providers

    plan = get_plan(runtime.ctx, plan_id)
    settled = settled_providers(runtime.ctx, plan.plan_id)
    quiet = _quiet_now(runtime, [p for p in plan.selected_providers if p not in settled],
                       send_level(plan.alert_level))
    rows = []
    for provider in plan.selected_providers:
        if provider in settled or provider in quiet:
            continue
        attempt = next_escalation_attempt(runtime.ctx, plan.plan_id, provider)
        target = runtime.registry.get(provider).target()
        rows.append((provider, target, str(attempt),
                     idempotency_key(plan.plan_id, provider, attempt)))
    if not rows:
        raise UserError(f"nothing to send: every provider of {plan.plan_id} is "
                        + (f"settled or quiet ({'; '.join(quiet.values())})" if quiet
                           else "settled"))
    return SendPreview(f"escalation plan {plan.plan_id}", plan.plan_id, rows,
                       runtime.identity.actor,
                       [f"{p} ({state})" for p, state in sorted(settled.items())]
                       + [f"{p} ({why})" for p, why in sorted(quiet.items())])


def _quiet_now(runtime: Runtime, providers: list[str], level: Severity | None) -> dict[str, str]:
    """Provider → why a quiet window keeps the send back now (``quiet_window: NAME until
    HH:MM UTC``): the send would be recorded as skipped."""
    now = runtime.ctx.clock()
    windows = quiet_windows_from(runtime.ctx, now)
    found = {}
    for provider in providers:
        window = silencing(windows, provider, level, now)
        if window is not None:
            found[provider] = f"{quiet_reason(window)} until {window.ends_at:%H:%M} UTC"
    return found


def preview_report_send(runtime: Runtime, run_id: str) -> SendPreview:
    from store.rules.retry_decision import idempotency_key
    from store.services.reports import get_schedule_run
    from store.services.send_state import next_report_attempt, providers_delivered
    from workflows.delivery import executive_providers

    run, _ = get_schedule_run(runtime.ctx, run_id)
    done = providers_delivered(runtime.ctx, run.run_id)
    channels = executive_providers(runtime.ctx, run.schedule_id)
    quiet = _quiet_now(runtime, [p for p in channels if p not in done], None)
    rows = []
    for provider in channels:
        if provider in done or provider in quiet:
            continue
        attempt = next_report_attempt(runtime.ctx, run.run_id, provider)
        rows.append((provider, runtime.registry.get(provider).target(), str(attempt),
                     idempotency_key(run.run_id, provider, attempt)))
    if not rows:
        raise UserError(f"nothing to send: run {run.run_id} reached every executive channel"
                        + (f" not kept quiet ({'; '.join(quiet.values())})" if quiet else ""))
    return SendPreview(f"the report of run {run.run_id}", run.run_id, rows,
                       runtime.identity.actor, [f"{p} (already delivered)" for p in sorted(done)]
                       + [f"{p} ({why})" for p, why in sorted(quiet.items())])


def deliver_plan(runtime: Runtime, plan_id: str | None) -> ActionResult:
    outcome = deliver_escalation_outcome(runtime.ctx, runtime.registry, plan_id or "latest")
    deliveries = outcome.deliveries
    plan = (deliveries[0].plan_id if deliveries else outcome.skipped[0].plan_id
            if outcome.skipped else None) or plan_id or "latest"
    return _deliveries_line(f"delivered plan {plan}", deliveries, outcome.skipped)


def record_ack(runtime: Runtime, request: AckRequest) -> ActionResult:
    ack, resolves = acknowledge_and_resolve(runtime.ctx, runtime.registry, request.plan_id,
                                            request.provider, request.state,
                                            request.external_ref, request.notes)
    closed = ("; PagerDuty resolve: " + ", ".join(f"{d.provider} {d.status}" for d in resolves)
              if resolves else "")
    return ActionResult(f"acknowledged {ack.plan_id}/{ack.provider}: {ack.state}{closed}",
                        result=ack)


def plan_retries(runtime: Runtime) -> ActionResult:
    plan = build_retry_plan(runtime.ctx)
    return ActionResult(f"retry plan {plan.retry_plan_id}: {counts(plan.counts, keep_zero=True)}",
                   result=plan, focus=("retry-plans", plan.retry_plan_id))


def follow_up_dry_run(runtime: Runtime) -> ActionResult:
    from workflows.follow_up import run_follow_up

    run = run_follow_up(runtime.ctx, runtime.registry, live=False, trigger="manual")
    due = [f"{e['plan_id']} → L{e['to_level']}" for e in run.escalations]
    return ActionResult(f"follow-up dry-run {run.run_id}: {run.summary.get('considered', 0)} "
                        f"open plan(s); would escalate {', '.join(due) or 'none'}", result=run)


def dry_run(runtime: Runtime) -> ActionResult:
    result = run_retry_worker(runtime.ctx, runtime.registry, live=False)
    return ActionResult(f"dry-run {result.run.run_id}: {counts(result.run.summary)}", result=result,
                   focus=("runs", result.run.run_id))


def preview_live_run(runtime: Runtime) -> LivePreview:
    result = run_retry_worker(runtime.ctx, runtime.registry, live=False)
    pairs = [(e.plan_id, e.provider) for e in result.executions]
    return LivePreview(dry_run=result, ack_states=latest_ack_states(runtime.ctx, pairs))


def live_run(runtime: Runtime, previewed: frozenset[str]) -> ActionResult:
    """Send only what the person confirmed; a pair that became due since waits for later."""
    result = run_retry_worker(runtime.ctx, runtime.registry, live=True, previewed=previewed)
    summary = result.run.summary
    line = f"live run {result.run.run_id}: {counts(summary)}"
    blocked = [e for e in result.executions if e.status == "blocked"]
    if blocked:
        pairs = ", ".join(f"{e.plan_id}/{e.provider}" for e in blocked[:3])
        return ActionResult(f"{line} — {len(blocked)} blocked ({blocked[0].reason}): {pairs}",
                       "warning", result)
    failed = summary.get("failed", 0) + summary.get("unknown", 0)
    return ActionResult(line, "warning" if failed else "information", result)


def report_retry_dry_run(runtime: Runtime) -> ActionResult:
    result = run_report_retry(runtime.ctx, runtime.registry, live=False)
    return ActionResult(f"executive re-send dry-run {result.run.run_id}: "
                        f"{counts(result.run.summary)}", result=result)


def preview_report_retry(runtime: Runtime) -> LivePreview:
    result = run_report_retry(runtime.ctx, runtime.registry, live=False)
    return LivePreview(dry_run=result, ack_states={}, subject="executive")


def report_retry_live(runtime: Runtime, previewed: frozenset[str]) -> ActionResult:
    result = run_report_retry(runtime.ctx, runtime.registry, live=True, previewed=previewed)
    summary = result.run.summary
    failed = summary.get("failed", 0) + summary.get("unknown", 0)
    return ActionResult(f"executive re-send {result.run.run_id}: {counts(summary)}",
                        "warning" if failed else "information", result,
                        focus=("exec-deliveries", next(
                            (e.delivery_id for e in result.executions if e.delivery_id), "")))


def schedule_run(runtime: Runtime) -> ActionResult:
    run, report, _ = create_schedule_run(runtime.ctx)
    return ActionResult(f"schedule run {run.run_id}: report {report.status}",
                   result=(run, report), focus=("schedule-runs", run.run_id))


def send_report(runtime: Runtime, run_id: str | None) -> ActionResult:
    if run_id is None:
        latest = list_schedule_runs(runtime.ctx, limit=1).items
        if not latest:
            raise UserError("no schedule run yet: make one first (schedule run)")
        run_id = latest[0].run_id
    outcome = deliver_report_outcome(runtime.ctx, runtime.registry, run_id)
    return _deliveries_line(f"report {run_id}", outcome.deliveries, outcome.skipped)


def new_schedule(runtime: Runtime, request: ScheduleRequest) -> ActionResult:
    schedule = add_schedule(runtime.ctx, name=request.name, cron=request.cron,
                            every=request.every, timezone=request.timezone, kind=request.kind)
    return ActionResult(f"schedule {schedule.name} added: {describe_trigger(schedule)}",
                   result=schedule, focus=("schedules", schedule.schedule_id))


def toggle_schedule(runtime: Runtime, schedule_id: str | None) -> ActionResult:
    if schedule_id is None:
        raise UserError("highlight a schedule first (Executive screen, Schedules list)")
    current = get_schedule(runtime.ctx, schedule_id)
    change = disable_schedule if current.enabled else enable_schedule
    schedule = change(runtime.ctx, schedule_id)
    state = "enabled" if schedule.enabled else "disabled"
    return ActionResult(f"schedule {schedule.name} {state}", result=schedule)


def local_witness_files(runtime: Runtime) -> list[str]:
    """The outbox witnesses' files this console can read (webhook witnesses keep their own)."""
    from workflows.connectors.outbox import OutboxConnector

    files = []
    for name in runtime.config.witnesses():
        connector = runtime.registry.get(name)
        if isinstance(connector, OutboxConnector) and connector.path.exists():
            files.append(str(connector.path))
    return files


def verify_audit(runtime: Runtime) -> ActionResult:
    """The full check, as `cavra audit verify --witness …` for every local witness file."""
    from store.services.audit_verify import verify_audit as verify

    verdict = verify(runtime.ctx, witness_paths=local_witness_files(runtime))
    problem = verdict.first_problem()
    if problem:
        return ActionResult(problem, "error", verdict)
    files = [w for w in verdict.witnesses if not w.local]
    witnesses = f", {len(files)} witness file(s) agree" if files else ""
    return ActionResult(f"audit verified: {verdict.chain.events} events, "
                   f"{verdict.evidence.checked} records{witnesses}", "information", verdict)


def write_checkpoint(runtime: Runtime) -> ActionResult:
    from workflows.checkpoints import write_checkpoint as write

    result = write(runtime.ctx, runtime.registry)
    point = result.checkpoint
    sent = ", ".join(f"{w.witness} {w.status}" for w in result.witnesses)
    severity = "warning" if result.warnings or not result.delivered else "information"
    return ActionResult(f"checkpoint of seq {point.seq} → {sent}", severity, result)


Action = Callable[[Runtime], ActionResult]
