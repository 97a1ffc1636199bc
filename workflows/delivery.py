"""Sending through connectors: record in_flight, send once, record the outcome (SPEC §5.2, §5.6).

A send a quiet window silences (``store.rules.quiet``) is not sent: it is audited as
``skipped`` with the reason ``quiet_window: NAME``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from store.digest import sha256_of
from store.errors import AlreadyDelivered, Conflict, UserError
from store.models import Delivery, QuietWindow, Severity
from store.policy import Decision
from store.rules.messages import escalation_message, report_message
from store.rules.quiet import send_level, silencing
from store.rules.retry_decision import idempotency_key
from store.services.context import StoreContext
from store.services.deliveries import begin_delivery
from store.services.delivery_ledger import send_batch
from store.services.delivery_outcomes import finish_deliveries
from store.services.escalation import get_plan
from store.services.provider_health import record_outcomes
from store.services.quiet_reads import quiet_windows_from
from store.services.quiet_windows import QuietSkip, quiet_skip, record_quiet_skips
from store.services.reports import get_schedule_run
from store.services.send_state import (
    next_escalation_attempt,
    next_report_attempt,
    providers_delivered,
    schedule_providers,
    settled_providers,
)
from workflows.connectors.base import Connector, OutboundMessage, Outcome
from workflows.connectors.registry import ConnectorRegistry

log = logging.getLogger(__name__)
OnFinish = Callable[[Session, list[Delivery]], None]


def safe_send(connector: Connector, outbound: OutboundMessage) -> Outcome:
    """Exactly one attempt; a connector bug must still end as a record, not a crash."""
    try:
        return connector.send(outbound)
    except Exception as exc:
        log.exception("connector %s raised", outbound.provider)
        return Outcome(status="unknown", error=f"connector_error: {exc.__class__.__name__}")


def finish_sent(ctx: StoreContext, session: Session, sent: list[tuple[Delivery, Outcome]], *,
                action: str, decision: Decision,
                on_finish: OnFinish | None = None) -> list[Delivery]:
    """Record what the providers answered: the deliveries, their circuits, the caller's own
    records (``on_finish``), one audit event each — in the caller's transaction."""
    finished = finish_deliveries(ctx, session, [(d.delivery_id, o) for d, o in sent])
    record_outcomes(ctx, session, finished)
    if on_finish is not None:
        on_finish(session, finished)
    for delivery in finished:
        ctx.audit(session, action, decision, [delivery.delivery_id, *(x for x in (
            delivery.plan_id, delivery.schedule_run_id) if x)],
            f"{delivery.provider}: {delivery.status}",
            delivery.model_dump(mode="json"))
    return finished


def send_one(ctx: StoreContext, registry: ConnectorRegistry, *, kind: str, provider: str,
             plan_id: str | None, schedule_run_id: str | None, attempt: int, key: str,
             message: dict[str, Any], action: str, decision: Decision,
             retry_plan_id: str | None = None, sent_by_run_id: str | None = None) -> Delivery:
    connector = registry.get(provider)
    digest = sha256_of(message)
    with send_batch(ctx) as session:
        started = begin_delivery(ctx, session, kind=kind, provider=provider, plan_id=plan_id,
                                 schedule_run_id=schedule_run_id, attempt=attempt,
                                 idempotency_key=key,
                                 target=connector.target(), payload=message,
                                 payload_sha256=digest, timeout_s=connector.timeout_s,
                                 retry_plan_id=retry_plan_id, sent_by_run_id=sent_by_run_id,
                                 decision=decision)
    outcome = safe_send(connector, OutboundMessage(
        delivery_id=started.delivery_id, kind=kind, provider=provider, idempotency_key=key,
        plan_id=plan_id, schedule_run_id=schedule_run_id, attempt=attempt, message=message))
    with send_batch(ctx) as session:
        [finished] = finish_sent(ctx, session, [(started, outcome)], action=action,
                                 decision=decision)
    return finished


def _check_providers(requested: list[str], allowed: list[str], registry: ConnectorRegistry,
                     subject: str) -> list[str]:
    chosen = list(dict.fromkeys(requested)) or list(allowed)
    for name in chosen:
        if registry.config.provider(name) is None:
            raise UserError(f"provider {name!r} is not configured")
        if name not in allowed:
            raise UserError(f"provider {name!r} is not one of {subject}'s providers "
                            f"({', '.join(allowed) or 'none'})")
    return chosen


@dataclass(frozen=True)
class DeliverOutcome:
    """What a deliver did: one delivery record per provider sent to, and the sends a quiet
    window silenced (audited, nothing sent)."""

    deliveries: list[Delivery]
    skipped: list[QuietSkip] = field(default_factory=list)


def _quiet(ctx: StoreContext, action: str, decision: Decision, windows: list[QuietWindow],
           provider: str, level: Severity | None, skipped: list[QuietSkip], *,
           plan_id: str | None = None, run_id: str | None = None) -> bool:
    """True (and the skip recorded) when a quiet window silences this send now."""
    window = silencing(windows, provider, level, ctx.clock())
    if window is None:
        return False
    skip = quiet_skip(window, provider, plan_id=plan_id, run_id=run_id)
    record_quiet_skips(ctx, action, decision, [skip])
    skipped.append(skip)
    return True


def deliver_escalation(ctx: StoreContext, registry: ConnectorRegistry, plan_id: str,
                       providers: list[str] | None = None) -> list[Delivery]:
    """One delivery record per provider; a failure is a recorded outcome, not an error."""
    return deliver_escalation_outcome(ctx, registry, plan_id, providers).deliveries


def deliver_escalation_outcome(ctx: StoreContext, registry: ConnectorRegistry, plan_id: str,
                               providers: list[str] | None = None) -> DeliverOutcome:
    """``deliver_escalation``, and the providers a quiet window kept it from (at the plan's
    alert level: ``store.rules.quiet``)."""
    plan = get_plan(ctx, plan_id)
    chosen = _check_providers(providers or [], plan.selected_providers, registry, plan.plan_id)
    disabled = [n for n in chosen if not registry.config.providers[n].enabled]
    if disabled:
        raise UserError(f"provider {disabled[0]!r} is disabled in the config")
    chosen = _unsettled(ctx, plan.plan_id, chosen, named=bool(providers))
    decision = ctx.require("escalation.deliver", [plan.plan_id])
    windows = quiet_windows_from(ctx, ctx.clock())
    results: list[Delivery] = []
    skipped: list[QuietSkip] = []
    busy: list[str] = []
    for provider in chosen:
        if _quiet(ctx, "escalation.deliver", decision, windows, provider,
                  send_level(plan.alert_level), skipped, plan_id=plan.plan_id):
            continue
        attempt = next_escalation_attempt(ctx, plan.plan_id, provider)
        try:
            results.append(send_one(
                ctx, registry, kind="escalation", provider=provider, plan_id=plan.plan_id,
                schedule_run_id=None, attempt=attempt,
                key=idempotency_key(plan.plan_id, provider, attempt),
                message=escalation_message(plan, provider, attempt),
                action="escalation.deliver", decision=decision))
        except Conflict as exc:  # one busy provider must not hold back the others
            busy.append(str(exc))
    _raise_if_busy(results, busy)
    return DeliverOutcome(results, skipped)


def _unsettled(ctx: StoreContext, plan_id: str, chosen: list[str], *, named: bool) -> list[str]:
    """A settled pair (resolved or dismissed) is never sent again: PagerDuty would open a new
    incident for an escalation someone closed. Named explicitly, it is refused; by default
    it is left out, and refused only when nothing is left."""
    settled = settled_providers(ctx, plan_id)
    closed = [n for n in chosen if n in settled]
    if closed and (named or len(closed) == len(chosen)):
        name = closed[0]
        raise UserError(f"plan {plan_id} is {settled[name]} for {name}: a settled pair is "
                        "never sent again (build a new plan for a new escalation)")
    return [n for n in chosen if n not in settled]


def _raise_if_busy(results: list[Delivery], busy: list[str]) -> None:
    """Report providers skipped because a send to them is still in flight (after the others
    were sent, so their records stand)."""
    if busy:
        sent = ", ".join(f"{d.provider} {d.status}" for d in results)
        raise Conflict("; ".join(busy) + (f" (sent: {sent})" if sent else ""))


def executive_providers(ctx: StoreContext, schedule_id: str | None) -> list[str]:
    """The schedule's providers, else every executive channel; disabled ones are left out."""
    names = schedule_providers(ctx, schedule_id) or [
        name for name in ctx.config.providers if ctx.config.is_executive(name)]
    return [n for n in names if (p := ctx.config.provider(n)) is None or p.enabled]


def deliver_report(ctx: StoreContext, registry: ConnectorRegistry, run_id: str,
                   providers: list[str] | None = None) -> list[Delivery]:
    """Send the run's report to executive channels; providers that already succeeded are
    skipped, so delivering a run twice never sends twice."""
    return deliver_report_outcome(ctx, registry, run_id, providers).deliveries


def deliver_report_outcome(ctx: StoreContext, registry: ConnectorRegistry, run_id: str,
                           providers: list[str] | None = None) -> DeliverOutcome:
    """``deliver_report``, and the channels a quiet window naming them kept it from (any
    severity: a report has no alert level). Delivering the run again after the window
    reaches them."""
    run, report = get_schedule_run(ctx, run_id)
    allowed = executive_providers(ctx, run.schedule_id)
    done = providers_delivered(ctx, run_id)
    chosen = list(dict.fromkeys(providers or [])) or allowed
    if not chosen:
        raise UserError('no executive provider configured (audience = ["executive"])')
    for name in chosen:
        settings = registry.config.provider(name)
        if settings is None:
            raise UserError(f"provider {name!r} is not configured")
        if not settings.enabled:
            raise UserError(f"provider {name!r} is disabled in the config")
        if not ctx.config.is_executive(name):
            raise UserError(f"provider {name!r} is not an executive channel "
                            '(set audience = ["executive"] in its config)')
    decision = ctx.require("report.deliver", [run_id])
    windows = quiet_windows_from(ctx, ctx.clock())
    results: list[Delivery] = []
    skipped: list[QuietSkip] = []
    busy: list[str] = []
    for provider in chosen:
        if provider in done:
            continue
        if _quiet(ctx, "report.deliver", decision, windows, provider, None, skipped,
                  run_id=run_id):
            continue
        attempt = next_report_attempt(ctx, run_id, provider)
        try:
            results.append(send_one(
                ctx, registry, kind="executive", provider=provider, plan_id=None,
                schedule_run_id=run_id, attempt=attempt,
                key=idempotency_key(run_id, provider, attempt),
                message=report_message(run, report, provider, attempt),
                action="report.deliver", decision=decision))
        except AlreadyDelivered:
            continue  # another process delivered it since we looked
        except Conflict as exc:  # e.g. a dead leader's send still in flight: send the rest
            busy.append(str(exc))
    _raise_if_busy(results, busy)
    return DeliverOutcome(results, skipped)
