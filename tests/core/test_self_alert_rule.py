"""The self-alert rule, table-driven: one raise per failing condition, none while it stays
announced, one clear when it goes."""

from __future__ import annotations

import pytest

from store.rules.self_alerts import Announcement, Condition, announcements, conditions

WORKER = ("worker_missed", "critical", "the retry worker missed 2 runs")
LOCK = ("live_lock_held", "warning", "a live run holds the lock")
STALE = ("stale_retry_plan", "warning", "3 pairs without a plan")
AT = "20261202T010000Z"


@pytest.mark.parametrize(("alerts", "open_since", "expected"), [
    ([], {}, []),
    ([STALE], {}, []),  # a warning is not announced
    ([WORKER], {}, [("raised", "worker_missed")]),
    ([LOCK], {}, [("raised", "live_lock_held")]),  # announced whatever its severity
    ([WORKER], {"worker_missed": AT}, []),  # still failing, already announced: quiet
    ([], {"worker_missed": AT}, [("cleared", "worker_missed")]),
    ([LOCK], {"worker_missed": AT},
     [("raised", "live_lock_held"), ("cleared", "worker_missed")]),
    ([WORKER, ("worker_missed", "critical", "again")], {}, [("raised", "worker_missed")]),
])
def test_announcements(alerts: list[tuple[str, str, str]], open_since: dict[str, str],
                       expected: list[tuple[str, str]]) -> None:
    found = announcements(conditions(alerts), open_since)
    assert [(a.state, a.code) for a in found] == expected


def test_a_clear_names_the_event_that_raised_it() -> None:
    [clear] = announcements({}, {"permanent_error": AT})
    assert clear == Announcement("cleared", "permanent_error", "permanent_error has cleared",
                                 AT)


def test_the_first_message_of_a_code_stands_for_it() -> None:
    assert conditions([WORKER, ("worker_missed", "critical", "later")]) == {
        "worker_missed": Condition("worker_missed", WORKER[2])}
