"""Failover inside `cavra escalation follow-up` (issue 13, step 2; the anchor is
Alertmanager's fallback receivers): an escalation pair (plan, provider) the retry worker
suppressed — max attempts reached, a permanent error, the provider's circuit open — is sent
the plan, once, through its provider's ``failover`` (default ``[routing] fallback``).

It only orchestrates: ``store.services.failover`` reads the suppressed pairs of the open plans
and ``store.rules.failover`` decides each. A dry run records what it would fail over (target,
idempotency key, payload digest) and sends nothing. A live run, per pair: in one write
transaction it decides the pair again, claims it (``failover_claims``, once per pair: racing
runs send once) and records the send ``in_flight`` (audited with the pair, the target and the
reason); then sends, then records the outcome — the same path a level's sends take, the
delivery naming the follow-up run (``worker_run_id``). A target the plan already reached is
claimed with nothing to send (``already_sent``). A quiet window silencing the target holds the
pair until a run after it ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from store.digest import sha256_of
from store.models import Delivery, EscalationPlan, QuietWindow
from store.policy import Decision
from store.rules.failover import FailoverDecision
from store.rules.messages import escalation_message
from store.rules.quiet import quiet_reason, send_level, silencing
from store.rules.retry_decision import idempotency_key
from store.services.context import StoreContext
from store.services.delivery_ledger import SendRequest, begin_deliveries, send_batch
from store.services.failover import (
    claim_failover,
    decide_pair_now,
    is_claimed,
    suppressed_pairs,
)
from store.services.send_state import read_plans_with_digests
from workflows.connectors.base import OutboundMessage
from workflows.connectors.registry import ConnectorRegistry
from workflows.delivery import finish_sent, safe_send

FIRST_ATTEMPT = 1  # the failover provider was never sent the plan: its first attempt
MAX_PER_RUN = 100  # failovers one run acts on (the rest: the next run)


@dataclass
class Failover:
    """One pair's failover as the run records it (``follow_up_runs.failovers``)."""

    decision: FailoverDecision
    # would_fail_over | failed_over | already_sent | held (quiet) | claimed_elsewhere |
    # stale | skipped
    status: str
    reason: str = ""
    sends: list[dict[str, Any]] = field(default_factory=list)

    def as_record(self) -> dict[str, Any]:
        d = self.decision
        return {"plan_id": d.plan_id, "provider": d.provider, "target": d.target,
                "suppressed": d.reason, "status": self.status, "reason": self.reason,
                "sends": self.sends}


class _Refused(Exception):
    """The failover send could not begin: the claim is rolled back with it."""


def run_failovers(ctx: StoreContext, registry: ConnectorRegistry, *, run_id: str,
                  rule: Decision, live: bool, now: datetime,
                  windows: list[QuietWindow]) -> tuple[list[Failover], int]:
    """The run's failovers, and how many suppressed pairs were skipped (no failover, its
    target disabled or gone: not claimed, they fail over once that changes)."""
    due: list[FailoverDecision] = []
    skipped = 0
    for decision in suppressed_pairs(ctx, now):
        if decision.outcome == "skip":
            skipped += 1
        elif len(due) < MAX_PER_RUN:
            due.append(decision)
    plans, digests = read_plans_with_digests(ctx, {d.plan_id for d in due})
    done: list[Failover] = []
    for decision in due:
        plan = plans.get(decision.plan_id)
        if plan is None:
            continue
        window = _quiet_for(windows, decision, plan, now)
        if window is not None:
            done.append(Failover(decision, "held", reason=quiet_reason(window)))
        elif live:
            done.append(_fail_over(ctx, registry, run_id, rule, decision, plan, digests))
        else:
            done.append(_preview(registry, decision, plan))
    return done, skipped


def _quiet_for(windows: list[QuietWindow], decision: FailoverDecision, plan: EscalationPlan,
               now: datetime) -> QuietWindow | None:
    """A quiet window silencing the target holds the pair (it is claimed once, so a send
    skipped now could never be made later): it fails over at the first run after the window."""
    if decision.outcome != "fail_over" or decision.target is None:
        return None
    return silencing(windows, decision.target, send_level(plan.alert_level), now)


def _message(plan: EscalationPlan, provider: str) -> dict[str, Any]:
    return escalation_message(plan, provider, FIRST_ATTEMPT)


def _preview(registry: ConnectorRegistry, decision: FailoverDecision,
             plan: EscalationPlan) -> Failover:
    if decision.outcome == "already_sent" or decision.target is None:
        return Failover(decision, "already_sent")
    return Failover(decision, "would_fail_over", sends=[{
        "provider": decision.target, "target": registry.get(decision.target).target(),
        "idempotency_key": idempotency_key(plan.plan_id, decision.target, FIRST_ATTEMPT),
        "payload_sha256": sha256_of(_message(plan, decision.target))}])


def _fail_over(ctx: StoreContext, registry: ConnectorRegistry, run_id: str, rule: Decision,
               planned: FailoverDecision, plan: EscalationPlan,
               digests: dict[str, str]) -> Failover:
    try:
        with send_batch(ctx, digests) as session:
            decision = decide_pair_now(ctx, session, plan.plan_id, planned.provider,
                                       ctx.clock())
            if decision is None:  # claimed since, or no longer suppressed (or plan closed)
                if is_claimed(ctx, session, plan.plan_id, planned.provider):
                    return Failover(planned, "claimed_elsewhere",
                                    reason="pair claimed by another run")
                return Failover(planned, "stale", reason="no longer suppressed")
            if decision.outcome == "skip" or decision.target is None:
                return Failover(decision, "skipped", reason=decision.skip_reason or "")
            sending = decision.outcome == "fail_over"
            if not claim_failover(ctx, session, decision, run_id=run_id,
                                  status="sent" if sending else "already_sent"):
                return Failover(decision, "claimed_elsewhere",
                                reason="pair claimed by another run")
            started: Delivery | None = None
            if sending:
                connector = registry.get(decision.target)
                [result] = begin_deliveries(ctx, session, [SendRequest(
                    kind="escalation", provider=decision.target, plan_id=plan.plan_id,
                    schedule_run_id=None, attempt=FIRST_ATTEMPT,
                    idempotency_key=idempotency_key(plan.plan_id, decision.target,
                                                    FIRST_ATTEMPT),
                    target=connector.target(),
                    payload_sha256=sha256_of(_message(plan, decision.target)),
                    timeout_s=connector.timeout_s, sent_by_run_id=run_id)], decision=rule)
                if not isinstance(result, Delivery):  # e.g. a send to it still in flight
                    raise _Refused(str(result)[:200])
                started = result
            ctx.audit(session, "escalation.follow_up.failover", rule,
                      [plan.plan_id, run_id, *([started.delivery_id] if started else [])],
                      decision.describe + ("" if sending else " (already sent)"),
                      {"plan_id": plan.plan_id, "provider": decision.provider,
                       "target": decision.target, "reason": decision.reason,
                       "run_id": run_id, "status": "sent" if sending else "already_sent",
                       "delivery_id": started.delivery_id if started else None})
    except _Refused as exc:  # nothing claimed, nothing sent: a later run tries again
        return Failover(planned, "skipped", reason=str(exc))
    if started is None:
        return Failover(decision, "already_sent")
    outcome = safe_send(connector, OutboundMessage(  # outside any transaction
        delivery_id=started.delivery_id, kind="escalation", provider=started.provider,
        idempotency_key=started.idempotency_key, plan_id=plan.plan_id, schedule_run_id=None,
        attempt=started.attempt, message=_message(plan, started.provider)))
    with send_batch(ctx, digests) as session:
        [finished] = finish_sent(ctx, session, [(started, outcome)],
                                 action="escalation.follow_up.deliver", decision=rule)
    return Failover(decision, "failed_over", sends=[{
        "provider": finished.provider, "delivery_id": finished.delivery_id,
        "status": finished.status, "idempotency_key": finished.idempotency_key,
        "payload_sha256": finished.payload_sha256,
        **({"error": finished.error} if finished.error else {})}])
