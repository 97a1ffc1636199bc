"""The retry decision as a table (``store.rules.retry_decision``): no database, no clock, no
I/O, so every branch runs in milliseconds. Each row says what a user would see: the action
and the reason in the retry plan, or the status and the reason of the execution record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from store.config import RetryPolicy
from store.errors import UserError
from store.models import PairState, RetryDecision
from store.rules.retry_decision import (
    WOULD_BLOCK,
    WOULD_DELIVER,
    PairHistory,
    RunSelection,
    SendFacts,
    Verdict,
    decide,
    delay_minutes,
    fold_delivery,
    history_pair,
    idempotency_key,
    judge,
    provider_counts_as_enabled,
    run_limit,
    select_for_run,
    sent_reason,
    staleness,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ME = "alice"


def pair(*, failures: int = 1, minutes_ago: float | None = 20, retry_after_s: int | None = None,
         ack: str | None = None, definitive: int | None = None, code: int | None = None,
         status: str = "failed", kind: str = "webhook") -> PairState:
    return PairState(
        plan_id="esc-1", definitive_count=failures if definitive is None
        else definitive, failures_since_success=failures, failed_status_codes=[500] * failures,
        last_failure_at=None if minutes_ago is None else NOW - timedelta(minutes=minutes_ago),
        last_success_at=None, retry_after_s=retry_after_s, latest_delivery_id="dlv-1",
        latest_status=status, latest_status_code=code, latest_ack_id=None,
        latest_ack_state=ack, latest_ack_by=None, ack_pending=False,
        provider=kind)


# (case, pair, policy overrides, provider enabled, expected action, expected reason)
DECISIONS: list[tuple[str, PairState, dict[str, Any], bool, str, str]] = [
    ("due after the backoff", pair(minutes_ago=16), {}, True,
     "retry", "1 failure(s) since last success"),
    ("inside the backoff", pair(minutes_ago=14), {}, True, "wait", "backoff"),
    ("backoff exactly over", pair(minutes_ago=15), {}, True,
     "retry", "1 failure(s) since last success"),
    ("second failure doubles the backoff", pair(failures=2, minutes_ago=29), {}, True,
     "wait", "backoff"),
    ("second failure, doubled backoff over", pair(failures=2, minutes_ago=30), {}, True,
     "retry", "2 failure(s) since last success"),
    ("Retry-After longer than the backoff", pair(minutes_ago=30, retry_after_s=3600), {}, True,
     "wait", "retry_after"),
    ("Retry-After shorter than the backoff", pair(minutes_ago=10, retry_after_s=60), {}, True,
     "wait", "backoff"),
    ("Retry-After over", pair(minutes_ago=61, retry_after_s=3600), {}, True,
     "retry", "1 failure(s) since last success"),
    ("no failure time: due now", pair(minutes_ago=None), {}, True,
     "retry", "1 failure(s) since last success"),
    ("one below max_attempts", pair(failures=2, minutes_ago=600), {}, True,
     "retry", "2 failure(s) since last success"),
    ("max_attempts reached", pair(failures=3, minutes_ago=600), {}, True,
     "suppress", "max_attempts_reached"),
    ("settled beats max_attempts", pair(failures=3, ack="dismissed"), {}, True,
     "suppress", "settled"),
    ("dismissed is settled", pair(ack="dismissed"), {}, True, "suppress", "settled"),
    ("resolved is settled", pair(ack="resolved"), {}, True, "suppress", "settled"),
    ("settled beats a disabled provider", pair(ack="dismissed"), {}, False,
     "suppress", "settled"),
    ("settled beats a permanent error", pair(ack="resolved", code=400), {}, True,
     "suppress", "settled"),
    ("accepted is not settled", pair(ack="accepted", minutes_ago=16), {}, True,
     "retry", "1 failure(s) since last success"),
    ("HTTP 400 is permanent", pair(code=400), {}, True, "suppress", "permanent_error: HTTP 400"),
    ("HTTP 404 is permanent", pair(code=404), {}, True, "suppress", "permanent_error: HTTP 404"),
    ("HTTP 499 is permanent", pair(code=499), {}, True, "suppress", "permanent_error: HTTP 499"),
    ("HTTP 408 is retried", pair(code=408, minutes_ago=16), {}, True,
     "retry", "1 failure(s) since last success"),
    ("HTTP 429 is retried", pair(code=429, minutes_ago=16), {}, True,
     "retry", "1 failure(s) since last success"),
    ("HTTP 500 is retried", pair(code=500, minutes_ago=16), {}, True,
     "retry", "1 failure(s) since last success"),
    ("SMTP 451 (greylisting) is retried", pair(code=451, minutes_ago=16, kind="email"), {},
     True, "retry", "1 failure(s) since last success"),
    ("SMTP 421 is retried", pair(code=421, minutes_ago=16, kind="email"), {}, True,
     "retry", "1 failure(s) since last success"),
    ("SMTP 550 is permanent", pair(code=550, kind="email"), {}, True, "suppress",
     "permanent_error: SMTP 550"),
    ("HTTP 550 is not a client error", pair(code=550, minutes_ago=16), {}, True,
     "retry", "1 failure(s) since last success"),
    ("HTTP 399 is not a client error", pair(code=399, minutes_ago=16), {}, True,
     "retry", "1 failure(s) since last success"),
    ("unknown outcome with a 400 is not a failure", pair(code=400, status="unknown",
                                                         minutes_ago=16), {}, True,
     "retry", "1 failure(s) since last success"),
    ("max_attempts beats a permanent error", pair(failures=3, code=400), {}, True,
     "suppress", "max_attempts_reached"),
    ("a permanent error beats a disabled provider", pair(code=401), {}, False,
     "suppress", "permanent_error: HTTP 401"),
    ("provider disabled", pair(), {}, False, "suppress", "provider_disabled"),
    ("disabled beats waiting", pair(minutes_ago=1), {}, False, "suppress", "provider_disabled"),
    ("zero delay still waits a minute", pair(minutes_ago=0.5), {"base_delay_minutes": 0}, True,
     "wait", "backoff"),
    ("allow_immediate: zero delay is due at once", pair(minutes_ago=0),
     {"base_delay_minutes": 0, "allow_immediate": True}, True,
     "retry", "1 failure(s) since last success"),
    ("allow_immediate still honours Retry-After", pair(minutes_ago=0, retry_after_s=60),
     {"base_delay_minutes": 0, "allow_immediate": True}, True, "wait", "retry_after"),
    ("max_attempts 1: the first failure is the last", pair(minutes_ago=600),
     {"max_attempts": 1}, True, "suppress", "max_attempts_reached"),
]


@pytest.mark.parametrize(("state", "overrides", "enabled", "action", "reason"),
                         [row[1:] for row in DECISIONS], ids=[row[0] for row in DECISIONS])
def test_decide(state: PairState, overrides: dict[str, Any], enabled: bool, action: str,
                reason: str) -> None:
    # The pair's provider is named after its kind here: decide reads the kind to know what
    # its status codes mean.
    decision = decide(state, RetryPolicy(**overrides), provider_enabled=enabled, now=NOW,
                      provider_kind=state.provider)
    assert (decision.action, decision.reason) == (action, reason)
    assert (decision.next_retry_at is None) == (action == "suppress")


def test_a_decision_names_the_next_attempt_and_when() -> None:
    decision = decide(pair(failures=2, minutes_ago=5, definitive=4), RetryPolicy(),
                      provider_enabled=True, now=NOW)
    assert (decision.attempt, decision.idempotency_key) == (5, "cavra:esc-1:webhook:5")
    assert decision.next_retry_at == NOW + timedelta(minutes=25)  # 5 ago + 15 × 2
    assert (decision.retry_count, decision.failed_status_codes) == (2, [500, 500])
    assert idempotency_key("run-1", "exec", 2) == "cavra:run-1:exec:2"


@pytest.mark.parametrize(("retry_count", "overrides", "minutes"), [
    (1, {}, 15), (2, {}, 30), (3, {}, 60), (0, {}, 15),
    (3, {"multiplier": 1.0}, 15), (1, {"base_delay_minutes": 0}, 1.0),
    (1, {"base_delay_minutes": 0, "allow_immediate": True}, 0.0),
    (1, {"base_delay_minutes": 0.25}, 1.0),
])
def test_delay_minutes(retry_count: int, overrides: dict[str, Any], minutes: float) -> None:
    assert delay_minutes(retry_count, RetryPolicy(**overrides)) == minutes


def facts(**changes: Any) -> SendFacts:
    values: dict[str, Any] = {"plan_found": True, "provider_configured": True,
                              "provider_enabled": True, "circuit": "closed",
                              "latest_ack": "accepted", "accepted_by": "bob"}
    return SendFacts(**{**values, **changes})


# (case, facts, separate duties, live status, live reason, dry-run reason, ack pending)
VERDICTS: list[tuple[str, SendFacts, bool, str, str, str, bool]] = [
    ("accepted by someone else", facts(), True, "send", "", "would_deliver", False),
    ("acknowledged", facts(latest_ack="acknowledged"), False, "send", "", "would_deliver",
     False),
    ("resolved since the plan: settled", facts(latest_ack="resolved"), False, "skipped",
     "settled", "settled", False),
    ("dismissed since the plan: settled", facts(latest_ack="dismissed"), False, "skipped",
     "settled", "settled", False),
    ("half-open circuit: one trial goes through", facts(circuit="half_open"), False,
     "send", "", "would_deliver", False),
    ("no acknowledgement", facts(latest_ack=None), False, "blocked",
     "acknowledgement_required", "live_would_block: acknowledgement_required", True),
    ("deferred", facts(latest_ack="deferred"), False, "blocked", "acknowledgement_required",
     "live_would_block: acknowledgement_required", True),
    ("escalated", facts(latest_ack="escalated"), False, "blocked",
     "acknowledgement_required", "live_would_block: acknowledgement_required", True),
    ("I accepted it, duties separated", facts(accepted_by=ME), True, "blocked",
     "separation_of_duties", "live_would_block: separation_of_duties", False),
    ("I accepted it, duties not separated", facts(accepted_by=ME), False, "send", "",
     "would_deliver", False),
    ("acknowledgement gate before separation of duties",
     facts(latest_ack="deferred", accepted_by=ME), True, "blocked",
     "acknowledgement_required", "live_would_block: acknowledgement_required", True),
    ("plan missing", facts(plan_found=False), False, "skipped", "plan_not_found",
     "plan_not_found", False),
    ("provider not configured", facts(provider_configured=False, provider_enabled=False),
     False, "skipped", "provider_not_configured", "provider_not_configured", False),
    ("provider disabled", facts(provider_enabled=False), False, "skipped",
     "provider_disabled", "provider_disabled", False),
    ("circuit open", facts(circuit="open"), False, "skipped", "provider_circuit_open",
     "provider_circuit_open", False),
    ("a missing plan is named first", facts(plan_found=False, provider_configured=False,
                                            circuit="open"), False, "skipped",
     "plan_not_found", "plan_not_found", False),
    ("skips come before the gates", facts(circuit="open", latest_ack=None), False,
     "skipped", "provider_circuit_open", "provider_circuit_open", False),
]


@pytest.mark.parametrize(("pair_facts", "separate", "status", "reason", "dry_reason",
                          "pending"), [row[1:] for row in VERDICTS],
                         ids=[row[0] for row in VERDICTS])
def test_judge(pair_facts: SendFacts, separate: bool, status: str, reason: str,
               dry_reason: str, pending: bool) -> None:
    live = judge(pair_facts, live=True, actor=ME, separate_duties=separate)
    assert (live.status, live.reason, live.acknowledgement_pending) == (status, reason, pending)
    dry = judge(pair_facts, live=False, actor=ME, separate_duties=separate)
    dry_status = "skipped" if status == "skipped" else "dry_run"
    assert (dry.status, dry.reason, dry.acknowledgement_pending) == (dry_status, dry_reason,
                                                                     pending)


def _decision(plan_id: str, action: str) -> RetryDecision:
    return RetryDecision(plan_id=plan_id, provider="ops", action=action, reason="r",
                         retry_count=1, next_retry_at=None, latest_delivery_id=None,
                         failed_status_codes=[], attempt=2,
                         idempotency_key=idempotency_key(plan_id, "ops", 2))


PLAN = [_decision("esc-a", "retry"), _decision("esc-b", "wait"), _decision("esc-c", "retry"),
        _decision("esc-d", "suppress"), _decision("esc-e", "retry"),
        _decision("esc-f", "suppress")]


SEND = Verdict("send", "")
BLOCKED = Verdict("blocked", "acknowledgement_required", acknowledgement_pending=True)
SKIPPED = Verdict("skipped", "provider_circuit_open")
WOULD = Verdict("dry_run", WOULD_DELIVER)
WOULD_STOP = Verdict("dry_run", f"{WOULD_BLOCK}acknowledgement_required", True)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _select(limit: int, previewed: set[str] | None = None,
            verdicts: dict[str, Verdict] | None = None,
            failed: dict[str, datetime] | None = None) -> RunSelection:
    verdicts = verdicts or {}
    keys = [d.idempotency_key for d in PLAN]
    return select_for_run(
        PLAN, {k: verdicts.get(k.split(":")[1], SEND) for k in keys},
        {k: (failed or {}).get(k.split(":")[1], T0) for k in keys}, limit=limit,
        previewed=previewed)


@pytest.mark.parametrize(("limit", "previewed", "selected", "retryable"), [
    (5, None, ["esc-a", "esc-c", "esc-e"], 3),
    (2, None, ["esc-a", "esc-c"], 3),
    (1, None, ["esc-a"], 3),
    (5, {"cavra:esc-c:ops:2", "cavra:esc-b:ops:2"}, ["esc-c"], 1),  # a waiting key stays out
    (5, set(), [], 0),
])
def test_select_for_run(limit: int, previewed: set[str] | None, selected: list[str],
                        retryable: int) -> None:
    selection = _select(limit, previewed)
    assert [d.plan_id for d in selection.selected] == selected
    assert selection.held == []
    summary = selection.summary()
    assert (summary["retryable"], summary["selected"], summary["waiting"],
            summary["suppressed"]) == (retryable, len(selected), 1, 2)
    assert set(summary) >= {"acknowledgement_pending", "delivered", "failed", "unknown",
                            "skipped", "blocked", "dry_run"}


@pytest.mark.parametrize(("verdicts", "limit", "selected", "held"), [
    ({"esc-a": BLOCKED, "esc-c": BLOCKED}, 2, ["esc-e"], ["esc-a", "esc-c"]),
    ({"esc-a": SKIPPED}, 1, ["esc-c"], ["esc-a"]),
    ({"esc-a": WOULD_STOP, "esc-c": WOULD}, 1, ["esc-c"], ["esc-a"]),  # a dry run alike
    ({"esc-a": BLOCKED, "esc-c": BLOCKED, "esc-e": BLOCKED}, 5, [], ["esc-a", "esc-c", "esc-e"]),
    ({"esc-a": Verdict("blocked", "separation_of_duties")}, 5, ["esc-c", "esc-e"], ["esc-a"]),
], ids=["blocked pairs take no slot", "skipped pairs take no slot", "dry run",
        "nothing sendable", "separation of duties"])
def test_pairs_that_cannot_be_sent_take_no_slot(verdicts: dict[str, Verdict], limit: int,
                                                selected: list[str], held: list[str]) -> None:
    selection = _select(limit, verdicts=verdicts)
    assert [d.plan_id for d in selection.selected] == selected
    assert [d.plan_id for d in selection.held] == held


def test_the_oldest_failure_goes_first() -> None:
    failed = {"esc-a": T0 + timedelta(hours=2), "esc-c": T0.replace(tzinfo=None),  # naive
              "esc-e": T0 + timedelta(hours=1)}  # (SQLite) and aware times compare as UTC
    selection = _select(2, failed=failed)
    assert [d.plan_id for d in selection.selected] == ["esc-c", "esc-e"]


@pytest.mark.parametrize(("requested", "expected"), [(None, 5), (1, 1), (100, 100)])
def test_run_limit(requested: int | None, expected: int) -> None:
    assert run_limit(requested, RetryPolicy()) == expected


@pytest.mark.parametrize("requested", [0, 101, -1])
def test_run_limit_refuses(requested: int) -> None:
    with pytest.raises(UserError, match="between 1 and 100"):
        run_limit(requested, RetryPolicy())


def test_fold_counts_failures_after_the_latest_success() -> None:
    at = [NOW + timedelta(minutes=m) for m in range(6)]
    history = PairHistory()
    for index, (status, code, retry_after) in enumerate([
            ("failed", 500, None), ("unknown", None, None), ("delivered", 200, None),
            ("failed", 429, 900), ("failed", 503, None)]):
        history = fold_delivery(history, delivery_id=f"dlv-{index}", status=status,
                                status_code=code, retry_after_s=retry_after, at=at[index])
        if status == "delivered":
            assert (history.failures_since_success, history.failed_status_codes,
                    history.last_success_at, history.retry_after_s) == (0, (), at[index], None)
    assert (history.definitive_count, history.failures_since_success) == (4, 2)
    assert history.failed_status_codes == (429, 503)
    assert (history.latest_delivery_id, history.latest_status) == ("dlv-4", "failed")
    assert (history.last_failure_at, history.last_success_at) == (at[4], at[2])
    assert history.retry_after_s is None  # the newest failure sent none


def test_fold_keeps_the_last_ten_status_codes_and_an_unknown_is_not_definitive() -> None:
    history = PairHistory()
    for code in range(500, 512):
        history = fold_delivery(history, delivery_id="d", status="failed", status_code=code,
                                retry_after_s=None, at=NOW)
    assert history.failed_status_codes == tuple(range(502, 512))
    unknown = fold_delivery(history, delivery_id="d", status="unknown", status_code=None,
                            retry_after_s=None, at=NOW)
    assert (unknown.definitive_count, unknown.failures_since_success) == (12, 13)


def test_a_folded_executive_pair_is_decided_like_an_escalation_pair() -> None:
    history = fold_delivery(PairHistory(), delivery_id="dlv-9", status="failed",
                            status_code=502, retry_after_s=None, at=NOW - timedelta(minutes=20))
    decision = decide(history_pair("run-1", "exec", history), RetryPolicy(),
                      provider_enabled=True, now=NOW)
    assert (decision.action, decision.attempt, decision.latest_delivery_id) == (
        "retry", 2, "dlv-9")
    assert decision.idempotency_key == "cavra:run-1:exec:2"


@pytest.mark.parametrize(("configured", "enabled", "kind", "expected"), [
    (True, True, "escalation", True), (True, False, "escalation", False),
    (False, False, "escalation", True),  # planned; the worker then skips it, named
    (True, True, "executive", True), (True, False, "executive", False),
    (False, False, "executive", False),
])
def test_provider_counts_as_enabled(configured: bool, enabled: bool, kind: str,
                                    expected: bool) -> None:
    assert provider_counts_as_enabled(configured=configured, enabled=enabled,
                                      kind=kind) is expected


@pytest.mark.parametrize(("status", "error", "reason"), [
    ("delivered", None, "delivered"), ("failed", "server_error: HTTP 503",
                                       "server_error: HTTP 503"),
    ("unknown", "timeout_after_send: ReadTimeout", "timeout_after_send: ReadTimeout"),
])
def test_sent_reason(status: str, error: str | None, reason: str) -> None:
    assert sent_reason(status, error) == reason


@pytest.mark.parametrize(("retrying", "failures", "definitive", "attempt", "stale"), [
    (True, 1, 1, 2, None),  # still due
    (True, 0, 2, 3, "delivered_since"),  # a manual send succeeded meanwhile
    (True, 2, 2, 2, "moved_on"),  # another attempt was recorded meanwhile
    (False, 0, 0, 1, None),  # a first manual delivery
    (False, 0, 1, 1, "moved_on"),
])
def test_staleness(retrying: bool, failures: int, definitive: int, attempt: int,
                   stale: str | None) -> None:
    assert staleness(retrying=retrying, failures_since_success=failures,
                     definitive_count=definitive, attempt=attempt) == stale
