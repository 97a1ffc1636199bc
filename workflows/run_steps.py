"""The steps a retry worker run takes with its selected pairs, shared by the dry run and the
live run: read the facts, ask the rules, record what is not sent."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from store.digest import sha256_of
from store.models import EscalationPlan, ExecutionRecord, QuietWindow, RetryDecision
from store.policy import Decision
from store.rules.messages import escalation_message
from store.rules.quiet import send_level, silencing
from store.rules.retry_decision import SEPARATION_RULE, CircuitState, Verdict, judge
from store.services.context import StoreContext
from store.services.retry import execution_record, record_executions
from store.services.send_state import read_send_facts
from workflows.connectors.registry import ConnectorRegistry


@dataclass(frozen=True)
class RunScope:
    """What every step of one worker run shares."""

    ctx: StoreContext
    registry: ConnectorRegistry
    run_id: str
    retry_plan_id: str
    live: bool
    decision: Decision
    plans: dict[str, EscalationPlan]
    # False once the run's heartbeat lease was taken by another process: send no more.
    still_leading: Callable[[], bool] = lambda: True
    # Digests of the plans' rows as the run read them (plans are append-only): the run's
    # audit events record these instead of reading each plan again (``send_batch``).
    digests: Mapping[str, str] = field(default_factory=dict)
    # (plan, provider, attempt) → the message and its digest: built once per run, however
    # often the pair is judged (the message depends on nothing else).
    messages: dict[tuple[str, str, int], tuple[dict[str, Any], str]] = field(
        default_factory=dict)
    # Quiet windows in force or coming when the run began: a pair they silence is skipped.
    quiet: Sequence[QuietWindow] = ()

    @property
    def mode(self) -> str:
        return "live" if self.live else "dry_run"


@dataclass(frozen=True)
class Judged:
    """A selected pair, the run's verdict on it and the exact message it would send."""

    index: int  # position in the selection: records are reported in this order
    item: RetryDecision
    verdict: Verdict
    message: dict[str, Any]
    digest: str
    circuit: CircuitState  # the provider's breaker when the pair was judged
    headroom: int = 1  # failures the provider may still have before its circuit opens
    last_failure_at: datetime | None = None


@dataclass
class Tally:
    """What a run has recorded so far: execution records by selection position, and how
    many pairs wait for an acknowledgement."""

    records: dict[int, ExecutionRecord] = field(default_factory=dict)
    acknowledgement_pending: int = 0


def judge_pairs(scope: RunScope, session: Session,
                pairs: list[tuple[int, RetryDecision]]) -> list[Judged]:
    """Read the pairs' facts in the caller's transaction and ask the rules what to do."""
    ctx = scope.ctx
    now = ctx.clock()
    facts = read_send_facts(ctx, session, [(d.plan_id, d.provider) for _, d in pairs],
                            scope.plans, now)
    roles = ctx.config.roles
    separate = roles is not None and roles.separate_duties
    judged = []
    for index, item in pairs:
        plan = scope.plans.get(item.plan_id)
        key = (item.plan_id, item.provider, item.attempt)
        built = scope.messages.get(key)
        if built is None:
            message = escalation_message(plan, item.provider, item.attempt) if plan else {}
            built = scope.messages[key] = (message, sha256_of(message))
        message, digest = built
        pair_facts = facts[(item.plan_id, item.provider)]
        quiet = (silencing(scope.quiet, item.provider, send_level(plan.alert_level), now)
                 if scope.quiet and plan else None)
        if quiet is not None:
            pair_facts = replace(pair_facts, quiet_window=quiet.name)
        verdict = judge(pair_facts, live=scope.live, actor=ctx.identity.actor,
                        separate_duties=separate)
        judged.append(Judged(index, item, verdict, message, digest,
                             pair_facts.circuit, pair_facts.headroom,
                             pair_facts.last_failure_at))
    return judged


def record(scope: RunScope, judged: Judged, status: str, reason: str,
           delivery_id: str | None = None) -> ExecutionRecord:
    return execution_record(scope.ctx, worker_run_id=scope.run_id,
                            retry_plan_id=scope.retry_plan_id,
                            decision=judged.item, mode=scope.mode, status=status,
                            reason=reason, payload_sha256=judged.digest,
                            delivery_id=delivery_id)


def record_unsent(scope: RunScope, session: Session, judged: list[Judged],
                  tally: Tally) -> list[Judged]:
    """Record every pair that is not sent (skipped, previewed, blocked at a gate); return
    the ones to send. A separation-of-duties block is a refusal, audited as one."""
    ctx = scope.ctx
    records: list[ExecutionRecord] = []
    to_send = []
    for pair in judged:
        verdict = pair.verdict
        tally.acknowledgement_pending += verdict.acknowledgement_pending
        if verdict.status == "send":
            to_send.append(pair)
            continue
        records.append(record(scope, pair, verdict.status, verdict.reason))
        tally.records[pair.index] = records[-1]
        if verdict.reason == "separation_of_duties":
            item = pair.item
            ctx.audit_deny(session, "retry.deliver", SEPARATION_RULE,
                           [item.plan_id, scope.run_id],
                           f"{ctx.identity.actor} accepted {item.plan_id}/{item.provider}",
                           item.model_dump(mode="json"))
    record_executions(ctx, session, records)
    return to_send
