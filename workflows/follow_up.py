"""`cavra escalation follow-up [--live]` (issue 13, step 1): escalate open plans that nobody
acknowledged within their level's ``ack_timeout_minutes`` to the next level.

It only orchestrates: the store reads the facts of the open plans and
``store.rules.follow_up`` decides each. A dry run records what it would escalate (the
providers, idempotency keys and payload digests a live run would send) and sends nothing. A
live run, per plan due: in one write transaction it decides the plan again (what counts is
what holds when it claims), claims ``(plan, level)`` and records each send ``in_flight``
(audited); then it sends, then records the outcomes. A run that finds the level claimed
sends nothing, so two runs racing (two schedulers, the CLI and a scheduler) send each level
once. Each delivery names the follow-up run (``worker_run_id``) and the plan. Then the run
fails over the suppressed pairs of open plans, once per pair (``workflows.failover``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from store.digest import sha256_of
from store.ids import new_id
from store.models import Delivery, EscalationPlan, FollowUpRun, QuietWindow
from store.policy import Decision
from store.rules.follow_up import OUTCOMES, FollowUpDecision
from store.rules.messages import escalation_message
from store.rules.quiet import quiet_reason, send_level, silencing
from store.rules.retry_decision import idempotency_key
from store.services.context import StoreContext
from store.services.delivery_ledger import SendRequest, begin_deliveries, send_batch
from store.services.follow_up import (
    claim_level,
    decide_now,
    open_plan_decisions,
    record_follow_up_run,
)
from store.services.quiet_reads import quiet_windows_from
from store.services.send_state import read_plans_with_digests
from workflows.connectors.base import OutboundMessage, Outcome
from workflows.connectors.registry import ConnectorRegistry
from workflows.delivery import finish_sent, safe_send
from workflows.failover import run_failovers

FIRST_ATTEMPT = 1  # a level's providers were never sent the plan: their first attempt


@dataclass
class _Escalation:
    """One plan's escalation as the run records it (``follow_up_runs.escalations``)."""

    decision: FollowUpDecision
    status: str  # would_escalate | escalated | claimed_elsewhere | stale | held (quiet)
    reason: str = ""
    sends: list[dict[str, Any]] = field(default_factory=list)

    def as_record(self) -> dict[str, Any]:
        d = self.decision
        return {"plan_id": d.plan_id, "from_level": d.level, "to_level": d.to_level,
                "levels": d.levels, "due_at": d.due_at.isoformat() if d.due_at else None,
                "providers": list(d.providers), "already_sent": list(d.already_sent),
                "status": self.status, "reason": self.reason, "sends": self.sends}


def run_follow_up(ctx: StoreContext, registry: ConnectorRegistry, *, live: bool = False,
                  trigger: str = "manual", schedule_id: str | None = None) -> FollowUpRun:
    mode = "live" if live else "dry_run"
    rule = ctx.require(f"escalation.follow_up.{mode}")
    run_id = new_id("follow_up_run")
    started = ctx.clock()
    summary: dict[str, int] = {"considered": 0, **dict.fromkeys(OUTCOMES, 0)}
    due: list[FollowUpDecision] = []
    for decision in open_plan_decisions(ctx, started):
        summary["considered"] += 1
        summary[decision.outcome] += 1
        if decision.outcome == "escalate":
            due.append(decision)
    plans, digests = read_plans_with_digests(ctx, {d.plan_id for d in due})
    windows = quiet_windows_from(ctx, started)
    done = [_held(d, held) if (held := _quiet_for(windows, d, plans[d.plan_id], started))
            else _escalate(ctx, registry, run_id, rule, d, plans[d.plan_id], digests) if live
            else _preview(registry, d, plans[d.plan_id]) for d in due if d.plan_id in plans]
    for item in done:
        if item.status != "would_escalate":  # a dry run's are its "escalate" count
            summary[item.status] = summary.get(item.status, 0) + 1
        for send in item.sends:
            if "status" in send:
                summary[send["status"]] = summary.get(send["status"], 0) + 1
    # Failover (step 2): the suppressed pairs of open plans, once each, to their failover.
    failovers, skipped = run_failovers(ctx, registry, run_id=run_id, rule=rule, live=live,
                                       now=started, windows=windows)
    if skipped:
        summary["failover_skipped"] = skipped
    for failover in failovers:
        key = f"failover_{failover.status}"
        summary[key] = summary.get(key, 0) + 1
        for send in failover.sends:
            if "status" in send:
                summary[send["status"]] = summary.get(send["status"], 0) + 1
    sends = [*(s for item in done for s in item.sends),
             *(s for failover in failovers for s in failover.sends)]
    deliveries = [s["delivery_id"] for s in sends if s.get("delivery_id")]
    with ctx.write() as session:
        run = record_follow_up_run(ctx, session, run_id=run_id, mode=mode, trigger=trigger,
                                   schedule_id=schedule_id, started_at=started, summary=summary,
                                   escalations=[item.as_record() for item in done],
                                   failovers=[item.as_record() for item in failovers])
        ctx.audit(session, f"escalation.follow_up.{mode}", rule,
                  [run_id, *dict.fromkeys([*(item.decision.plan_id for item in done),
                                           *(item.decision.plan_id for item in failovers)]),
                   *deliveries],
                  _describe(summary), run.model_dump(mode="json"))
    return run


def _describe(summary: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in summary.items() if v and k != "considered") or (
        f"{summary['considered']} open plans, nothing to escalate")


def _quiet_for(windows: list[QuietWindow], decision: FollowUpDecision, plan: EscalationPlan,
               now: datetime) -> QuietWindow | None:
    """A quiet window silencing one of the next level's providers holds the whole level:
    it escalates at the first run after the window ends (a level is claimed once, so a
    provider skipped now could never be sent later)."""
    level = send_level(plan.alert_level)
    for provider in decision.providers:
        window = silencing(windows, provider, level, now)
        if window is not None:
            return window
    return None


def _held(decision: FollowUpDecision, window: QuietWindow) -> _Escalation:
    return _Escalation(decision, "held", reason=quiet_reason(window))


def _message(plan: EscalationPlan, provider: str) -> dict[str, Any]:
    return escalation_message(plan, provider, FIRST_ATTEMPT)


def _preview(registry: ConnectorRegistry, decision: FollowUpDecision,
             plan: EscalationPlan) -> _Escalation:
    """What a live run would send: nothing is claimed or sent."""
    return _Escalation(decision, "would_escalate", sends=[
        {"provider": p, "target": registry.get(p).target(),
         "idempotency_key": idempotency_key(plan.plan_id, p, FIRST_ATTEMPT),
         "payload_sha256": sha256_of(_message(plan, p))} for p in decision.providers])


def _escalate(ctx: StoreContext, registry: ConnectorRegistry, run_id: str, rule: Decision,
              planned: FollowUpDecision, plan: EscalationPlan,
              digests: dict[str, str]) -> _Escalation:
    level = planned.to_level
    started: list[Delivery] = []
    refused: list[dict[str, Any]] = []
    with send_batch(ctx, digests) as session:
        decision = decide_now(ctx, session, plan.plan_id, ctx.clock())
        if decision is None or decision.outcome != "escalate" or decision.to_level != level:
            taken = decision is not None and level is not None and decision.level >= level
            return _Escalation(planned, "claimed_elsewhere" if taken else "stale",
                               reason=f"level {level} claimed by another run" if taken else
                               f"now {decision.outcome if decision else 'closed'}")
        assert level is not None
        if not claim_level(ctx, session, plan_id=plan.plan_id, level=level, run_id=run_id,
                           providers=list(decision.providers)):
            return _Escalation(decision, "claimed_elsewhere",
                               reason=f"level {level} claimed by another run")
        connectors = {p: registry.get(p) for p in decision.providers}
        begun = begin_deliveries(ctx, session, [SendRequest(
            kind="escalation", provider=p, plan_id=plan.plan_id, schedule_run_id=None,
            attempt=FIRST_ATTEMPT, idempotency_key=idempotency_key(plan.plan_id, p,
                                                                   FIRST_ATTEMPT),
            target=c.target(), payload_sha256=sha256_of(_message(plan, p)),
            timeout_s=c.timeout_s, sent_by_run_id=run_id) for p, c in connectors.items()],
            decision=rule) if connectors else []
        for provider, result in zip(connectors, begun, strict=True):
            if isinstance(result, Delivery):
                started.append(result)
            else:  # e.g. a send to it still in flight: recorded, not sent
                refused.append({"provider": provider, "status": "skipped",
                                "reason": str(result)[:200]})
        ctx.audit(session, "escalation.follow_up.claim", rule,
                  [plan.plan_id, run_id, *(d.delivery_id for d in started)],
                  f"level {decision.level} → {level}: "
                  f"{', '.join(decision.providers) or 'no new provider'}",
                  {"plan_id": plan.plan_id, "level": level, "run_id": run_id,
                   "providers": list(decision.providers),
                   "already_sent": list(decision.already_sent),
                   "deliveries": [d.delivery_id for d in started]})
    sent: list[tuple[Delivery, Outcome]] = []
    for delivery in started:  # outside any transaction: a send never holds the database
        message = _message(plan, delivery.provider)
        sent.append((delivery, safe_send(connectors[delivery.provider], OutboundMessage(
            delivery_id=delivery.delivery_id, kind="escalation", provider=delivery.provider,
            idempotency_key=delivery.idempotency_key, plan_id=plan.plan_id, schedule_run_id=None,
            attempt=delivery.attempt, message=message))))
    finished: list[Delivery] = []
    if sent:
        with send_batch(ctx, digests) as session:
            finished = finish_sent(ctx, session, sent, action="escalation.follow_up.deliver",
                                   decision=rule)
    return _Escalation(decision, "escalated", sends=[
        *({"provider": d.provider, "delivery_id": d.delivery_id, "status": d.status,
           "idempotency_key": d.idempotency_key, "payload_sha256": d.payload_sha256,
           **({"error": d.error} if d.error else {})} for d in finished), *refused])
