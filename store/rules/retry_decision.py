"""The whole retry decision, in one place (SPEC §5.4, §5.5, §5.7).

Pure: no database, no clock, no I/O; every fact is passed in. The services read the facts,
the retry worker asks these functions what to do and records the answer:

- ``fold_delivery``: what a pair's deliveries add up to (escalation and executive pairs alike);
- ``decide``: retry, wait or suppress one pair, and why;
- ``judge``: what a run does with a due pair — skip it, preview it, block it at a gate,
  or send it; ``staleness``: whether it is still due when its send is recorded;
- ``select_for_run``: which judged pairs one worker run takes (fair: a pair that cannot be
  sent gets its record but no slot; the oldest failure goes first).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from store.clock import as_utc
from store.config import RetryPolicy
from store.errors import UserError
from store.models import ACK_CLEARS_LIVE_RETRY, ACK_SETTLED, PairState, RetryAction, RetryDecision
from store.rules.quiet import QUIET_REASON

SkipReason = Literal["plan_not_found", "settled", "provider_not_configured", "provider_disabled",
                     "provider_circuit_open", "decision_stale", "delivery_in_flight"]
GateReason = Literal["acknowledgement_required", "separation_of_duties"]
CircuitState = Literal["closed", "open", "half_open"]
VerdictStatus = Literal["skipped", "dry_run", "blocked", "send"]

WOULD_BLOCK = "live_would_block: "  # a dry run's reason when a gate would stop the live run
WOULD_DELIVER = "would_deliver"
SEPARATION_RULE = "roles.separate_duties: who accepted a pair may not live-retry it"
MAX_STATUS_CODES = 10
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SUMMARY_KEYS = ("retryable", "selected", "waiting", "suppressed", "acknowledgement_pending",
                "dry_run", "delivered", "failed", "unknown", "skipped", "blocked")


def idempotency_key(subject_id: str, provider: str, attempt: int) -> str:
    """Same (subject, provider, attempt) → same key, so a resend after a crash dedupes."""
    return f"cavra:{subject_id}:{provider}:{attempt}"


# --- what a pair's deliveries add up to -------------------------------------------------

@dataclass(frozen=True, slots=True)
class PairHistory:
    """The counting part of a pair's state: kept in ``pair_state`` for escalations, folded
    on read for executive reports — by the same function, so both count alike."""

    definitive_count: int = 0
    failures_since_success: int = 0
    failed_status_codes: tuple[int, ...] = ()
    last_failure_at: datetime | None = None
    last_success_at: datetime | None = None
    retry_after_s: int | None = None
    latest_delivery_id: str | None = None
    latest_status: str | None = None
    latest_status_code: int | None = None


def fold_delivery(history: PairHistory, *, delivery_id: str, status: str,
                  status_code: int | None, retry_after_s: int | None,
                  at: datetime) -> PairHistory:
    """One finished delivery (delivered, failed or unknown) folded into its pair.

    A success closes the pair: only failures after the latest success count."""
    definitive = history.definitive_count + (status in ("delivered", "failed"))
    if status == "delivered":
        return PairHistory(definitive_count=definitive, last_failure_at=history.last_failure_at,
                           last_success_at=at, latest_delivery_id=delivery_id,
                           latest_status=status, latest_status_code=status_code)
    codes = history.failed_status_codes
    if status_code is not None:
        codes = (*codes, status_code)[-MAX_STATUS_CODES:]
    return PairHistory(definitive_count=definitive,
                       failures_since_success=history.failures_since_success + 1,
                       failed_status_codes=codes, last_failure_at=at,
                       last_success_at=history.last_success_at, retry_after_s=retry_after_s,
                       latest_delivery_id=delivery_id, latest_status=status,
                       latest_status_code=status_code)


def history_pair(subject_id: str, provider: str, history: PairHistory) -> PairState:
    """A folded pair without acknowledgements (executive reports have none)."""
    return PairState(plan_id=subject_id, provider=provider,
                     definitive_count=history.definitive_count,
                     failures_since_success=history.failures_since_success,
                     failed_status_codes=list(history.failed_status_codes),
                     last_failure_at=history.last_failure_at,
                     last_success_at=history.last_success_at,
                     retry_after_s=history.retry_after_s,
                     latest_delivery_id=history.latest_delivery_id,
                     latest_status=history.latest_status,
                     latest_status_code=history.latest_status_code, latest_ack_id=None,
                     latest_ack_state=None, latest_ack_by=None, ack_pending=False)


# --- retry, wait or suppress ----------------------------------------------------------

def delay_minutes(retry_count: int, policy: RetryPolicy) -> float:
    delay = policy.base_delay_minutes * policy.multiplier ** max(0, retry_count - 1)
    return delay if policy.allow_immediate else max(1.0, delay)


def provider_counts_as_enabled(*, configured: bool, enabled: bool, kind: str) -> bool:
    """An escalation pair whose provider left the config is still planned (the worker then
    skips it as ``provider_not_configured``); an executive one is suppressed."""
    if not configured:
        return kind == "escalation"
    return enabled


def permanent_error(status: str | None, status_code: int | None,
                    provider_kind: str | None = None) -> str | None:
    """A failure that resending cannot fix: the configuration needs one. Over HTTP (webhook,
    Slack, PagerDuty — its 400 "invalid event" included) a 4xx other than 408 and 429, which
    ask to try again. Over SMTP, whose codes the email connector records, a 5xx (550 no such
    mailbox …): its 4xx (421, 450, 451 greylisting) are transient."""
    if status != "failed" or status_code is None:
        return None
    if provider_kind == "email":
        return f"permanent_error: SMTP {status_code}" if 500 <= status_code < 600 else None
    if provider_kind == "outbox":
        return None
    if 400 <= status_code < 500 and status_code not in (408, 429):
        return f"permanent_error: HTTP {status_code}"
    return None


def decide(pair: PairState, policy: RetryPolicy, *, provider_enabled: bool,
           now: datetime, provider_kind: str | None = None) -> RetryDecision:
    """``provider_kind`` (webhook, email, …) says what the status codes mean."""
    retry_count = pair.failures_since_success
    wait = timedelta(minutes=delay_minutes(retry_count, policy))
    if pair.retry_after_s:
        wait = max(wait, timedelta(seconds=pair.retry_after_s))
    next_at = (pair.last_failure_at + wait) if pair.last_failure_at else now
    action: RetryAction
    permanent = permanent_error(pair.latest_status, pair.latest_status_code, provider_kind)
    if pair.latest_ack_state in ACK_SETTLED:  # resolved or dismissed: never sent again
        action, reason = "suppress", "settled"
    elif retry_count >= policy.max_attempts:
        action, reason = "suppress", "max_attempts_reached"
    elif permanent is not None:
        action, reason = "suppress", permanent
    elif not provider_enabled:
        action, reason = "suppress", "provider_disabled"
    elif now < next_at:
        action, reason = "wait", ("retry_after" if pair.retry_after_s and
                                  timedelta(seconds=pair.retry_after_s) >= wait else "backoff")
    else:
        action, reason = "retry", f"{retry_count} failure(s) since last success"
    attempt = pair.definitive_count + 1
    return RetryDecision(
        plan_id=pair.plan_id, provider=pair.provider, action=action, reason=reason,
        retry_count=retry_count, next_retry_at=next_at if action != "suppress" else None,
        latest_delivery_id=pair.latest_delivery_id,
        failed_status_codes=list(pair.failed_status_codes), attempt=attempt,
        idempotency_key=idempotency_key(pair.plan_id, pair.provider, attempt),
    )


# --- which decisions a run takes ------------------------------------------------------

def run_limit(requested: int | None, policy: RetryPolicy) -> int:
    limit = requested if requested is not None else policy.max_deliveries
    if not 1 <= limit <= 100:
        raise UserError("--max must be between 1 and 100")
    return limit


def due_pairs(decisions: Iterable[RetryDecision],
              previewed: Collection[str] | None = None) -> list[RetryDecision]:
    """The ``retry`` decisions, in plan order. ``previewed``: the idempotency keys a person
    confirmed from a dry run; a pair that became due since is left for a later run."""
    due = [d for d in decisions if d.action == "retry"]
    if previewed is not None:
        due = [d for d in due if d.idempotency_key in previewed]
    return due


@dataclass(frozen=True)
class RunSelection:
    retryable: list[RetryDecision]
    selected: list[RetryDecision]  # take a slot: sent (live) or previewed as sent (dry run)
    held: list[RetryDecision]  # skipped or stopped at a gate: a record each, no slot
    waiting: int
    suppressed: int

    def summary(self) -> dict[str, int]:
        """The run's counts before anything is recorded (the keys every summary has)."""
        counts = dict.fromkeys(SUMMARY_KEYS, 0)
        counts.update(retryable=len(self.retryable), selected=len(self.selected),
                      waiting=self.waiting, suppressed=self.suppressed)
        return counts


def select_for_run(decisions: Iterable[RetryDecision], verdicts: Mapping[str, Verdict],
                   failed_at: Mapping[str, datetime | None], *, limit: int,
                   previewed: Collection[str] | None = None) -> RunSelection:
    """Fair selection (SPEC §5.5). ``verdicts`` and ``failed_at`` are keyed by idempotency
    key: every due pair judged before any slot is counted. A pair that cannot be sent
    (skipped, or a gate stops it) is held: it gets its record and takes no slot. Among the
    sendable, the oldest failure goes first (plan order breaks ties), ``limit`` of them."""
    decisions = list(decisions)
    due = due_pairs(decisions, previewed)
    held = [d for d in due if not verdicts[d.idempotency_key].takes_slot]
    order = {d.idempotency_key: position for position, d in enumerate(due)}

    def oldest_first(d: RetryDecision) -> tuple[bool, datetime, int]:
        failed = failed_at.get(d.idempotency_key)
        return (failed is not None, as_utc(failed) if failed else _EPOCH,
                order[d.idempotency_key])

    sendable = sorted((d for d in due if verdicts[d.idempotency_key].takes_slot),
                      key=oldest_first)
    return RunSelection(retryable=due, selected=sendable[:limit], held=held,
                        waiting=sum(d.action == "wait" for d in decisions),
                        suppressed=sum(d.action == "suppress" for d in decisions))


# --- what a run does with one selected pair -------------------------------------------

@dataclass(frozen=True)
class SendFacts:
    """What is true of a pair when the run reaches it."""

    plan_found: bool
    provider_configured: bool
    provider_enabled: bool
    circuit: CircuitState
    latest_ack: str | None
    accepted_by: str | None
    # Failures the provider may still have before its circuit opens: at most this many sends
    # to it may be out at once, so a parallel run opens the circuit when a sequential one would.
    headroom: int = 1
    last_failure_at: datetime | None = None  # fair selection: the oldest failure goes first
    # The quiet window (``store.rules.quiet``) that silences a send to the pair now, by name.
    quiet_window: str | None = None


@dataclass(frozen=True)
class Verdict:
    status: VerdictStatus
    reason: str
    acknowledgement_pending: bool = False  # counted in the run's summary

    @property
    def takes_slot(self) -> bool:
        """Sent by a live run, or previewed as sent by a dry run: counts against --max."""
        return self.status == "send" or (self.status == "dry_run" and self.reason == WOULD_DELIVER)


def skip_reason(facts: SendFacts) -> str | None:
    """Why the pair cannot be sent at all (it takes its record, nothing is sent): a
    ``SkipReason``, or ``quiet_window: NAME`` while a quiet window silences it (it stays due,
    and is sent once the window is over)."""
    if not facts.plan_found:
        return "plan_not_found"
    if facts.latest_ack in ACK_SETTLED:  # resolved or dismissed since the plan was built
        return "settled"
    if not facts.provider_configured:
        return "provider_not_configured"
    if not facts.provider_enabled:
        return "provider_disabled"
    if facts.quiet_window is not None:
        return f"{QUIET_REASON}{facts.quiet_window}"
    if facts.circuit == "open":
        return "provider_circuit_open"
    return None


def live_gate(latest_ack: str | None, accepted_by: str | None, *, actor: str,
              separate_duties: bool) -> GateReason | None:
    """Why a live run may not send to this pair, or None."""
    if latest_ack not in ACK_CLEARS_LIVE_RETRY:
        return "acknowledgement_required"
    if separate_duties and accepted_by == actor:
        return "separation_of_duties"
    return None


def judge(facts: SendFacts, *, live: bool, actor: str, separate_duties: bool) -> Verdict:
    """Skip reasons first, then the gates; a dry run says what live would do, gates
    included (SPEC §5.5)."""
    skip = skip_reason(facts)
    if skip is not None:
        return Verdict("skipped", skip)
    gate = live_gate(facts.latest_ack, facts.accepted_by, actor=actor,
                     separate_duties=separate_duties)
    pending = gate == "acknowledgement_required"
    if not live:
        return Verdict("dry_run", f"{WOULD_BLOCK}{gate}" if gate else WOULD_DELIVER, pending)
    if gate is not None:
        return Verdict("blocked", gate, pending)
    return Verdict("send", "", pending)


def staleness(*, retrying: bool, failures_since_success: int, definitive_count: int,
              attempt: int) -> Literal["delivered_since", "moved_on"] | None:
    """Why a decision went stale between planning and sending (checked again under the
    write lock, just before the attempt is recorded): a retry whose pair was delivered
    since, or an attempt that is no longer the pair's next one."""
    if retrying and failures_since_success == 0:
        return "delivered_since"
    if definitive_count + 1 != attempt:
        return "moved_on"
    return None


def sent_reason(status: str, error: str | None) -> str:
    """A sent pair's execution reason: the connector's error class, else its status."""
    return error or status
