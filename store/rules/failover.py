"""Failover (issue 13, step 2; the anchor is Alertmanager's fallback receivers): does a
suppressed escalation pair go, once, to its provider's failover provider?

Pure: no database, no clock; the facts are passed in.

- A pair (plan, provider) of an open plan is suppressed when the retry worker will not send
  it again on its own: ``max_attempts_reached`` (its failures since the last success reached
  ``[retry] max_attempts``), a permanent error (``permanent_error: HTTP 400``: resending cannot
  fix it, ``store.rules.retry_decision.permanent_error``), or ``provider_circuit_open`` (its
  latest send failed and the provider's circuit is open). The order is the retry decision's.
  A settled pair (resolved, dismissed) is not suppressed: nobody needs to be told.
- Its target is the provider's ``failover`` (default ``[routing] fallback``). No target (the
  provider is its own fallback), a target no longer configured or disabled: skipped (not
  claimed: it fails over once that changes). A target the plan was already sent to: the pair
  is claimed with nothing to send (``already_sent``). Otherwise the plan is sent to the target
  as its first attempt, once per pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from store.models import ACK_SETTLED
from store.rules.retry_decision import CircuitState, permanent_error

FailoverOutcome = Literal["fail_over", "already_sent", "skip"]
CIRCUIT_OPEN = "provider_circuit_open"
MAX_ATTEMPTS = "max_attempts_reached"


@dataclass(frozen=True)
class FailoverPairFacts:
    """What the rule needs about one escalation pair (``store.services.failover``)."""

    plan_id: str
    provider: str
    failures_since_success: int
    latest_status: str | None
    latest_status_code: int | None
    latest_ack_state: str | None
    provider_kind: str | None  # None: the provider left the config
    circuit: CircuitState = "closed"


@dataclass(frozen=True)
class FailoverTarget:
    """The pair's failover provider as the config says now."""

    name: str | None  # None: the provider is its own fallback
    configured: bool = True
    enabled: bool = True


@dataclass(frozen=True)
class FailoverDecision:
    plan_id: str
    provider: str
    outcome: FailoverOutcome
    reason: str  # why the pair is suppressed
    target: str | None
    skip_reason: str | None = None  # skip: no_failover | failover_not_configured | …_disabled

    @property
    def describe(self) -> str:
        """``failover ops-webhook → outbox: permanent_error: HTTP 400`` (the claim's event)."""
        return f"failover {self.provider} → {self.target}: {self.reason}"


def suppression_reason(pair: FailoverPairFacts, *, max_attempts: int) -> str | None:
    """Why the retry worker will not send this pair again on its own, or None."""
    if pair.failures_since_success <= 0 or pair.latest_status not in ("failed", "unknown"):
        return None
    if pair.latest_ack_state in ACK_SETTLED:
        return None
    if pair.failures_since_success >= max_attempts:
        return MAX_ATTEMPTS
    permanent = permanent_error(pair.latest_status, pair.latest_status_code, pair.provider_kind)
    if permanent is not None:
        return permanent
    if pair.circuit == "open":
        return CIRCUIT_OPEN
    return None


def decide_failover(pair: FailoverPairFacts, target: FailoverTarget, *,
                    delivered: frozenset[str], max_attempts: int) -> FailoverDecision | None:
    """The pair's failover, or None when it is not suppressed. ``delivered``: the providers
    the plan has been sent to (a pair exists once a send began)."""
    reason = suppression_reason(pair, max_attempts=max_attempts)
    if reason is None:
        return None

    def answer(outcome: FailoverOutcome, skip: str | None = None) -> FailoverDecision:
        return FailoverDecision(pair.plan_id, pair.provider, outcome, reason, target.name, skip)

    if target.name is None or target.name == pair.provider:
        return answer("skip", "no_failover")
    if not target.configured:
        return answer("skip", "failover_not_configured")
    if not target.enabled:
        return answer("skip", "failover_disabled")
    if target.name in delivered:
        return answer("already_sent")
    return answer("fail_over")
