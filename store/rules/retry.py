"""The retry decision for one (plan, provider) pair (SPEC §5.4)."""

from __future__ import annotations

from datetime import datetime, timedelta

from store.config import RetryPolicy
from store.models import PairState, RetryAction, RetryDecision


def idempotency_key(subject_id: str, provider: str, attempt: int) -> str:
    """Same (subject, provider, attempt) → same key, so a resend after a crash dedupes."""
    return f"cavra:{subject_id}:{provider}:{attempt}"


def delay_minutes(retry_count: int, policy: RetryPolicy) -> float:
    delay = policy.base_delay_minutes * policy.multiplier ** max(0, retry_count - 1)
    return delay if policy.allow_immediate else max(1.0, delay)


def decide(pair: PairState, policy: RetryPolicy, *, provider_enabled: bool,
           now: datetime) -> RetryDecision:
    retry_count = pair.failures_since_success
    wait = timedelta(minutes=delay_minutes(retry_count, policy))
    if pair.retry_after_s:
        wait = max(wait, timedelta(seconds=pair.retry_after_s))
    next_at = (pair.last_failure_at + wait) if pair.last_failure_at else now
    action: RetryAction
    if retry_count >= policy.max_attempts:
        action, reason = "suppress", "max_attempts_reached"
    elif pair.latest_ack_state == "dismissed":
        action, reason = "suppress", "acknowledgement_dismissed"
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
