"""store.rules.follow_up, table-driven: no database, no clock (milliseconds). Each row is a
plan's facts at a moment and the answer the rule must give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from store.config import CavraConfig
from store.rules.escalation import providers_for
from store.rules.follow_up import (
    FollowUpDecision,
    Level,
    PlanFacts,
    decide_follow_up,
    policy_levels,
)

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
THREE = (Level(("ops",), 15), Level(("pager", "slack"), 30), Level(("exec",), None))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def facts(level: int = 1, since: float | None = 0, acknowledged: bool = False,
          delivered: tuple[str, ...] = ("ops",)) -> PlanFacts:
    return PlanFacts("esc-1", level, at(since) if since is not None else None, acknowledged,
                     frozenset(delivered))


CASES: list[tuple[str, PlanFacts, tuple[Level, ...], float, dict[str, Any]]] = [
    ("level 1 before its timeout waits until it passes",
     facts(), THREE, 14, {"outcome": "wait", "due_at": at(15), "to_level": None}),
    ("one second before the deadline still waits",
     facts(), THREE, 15 - 1 / 60, {"outcome": "wait", "due_at": at(15)}),
    ("at the deadline level 1 escalates to level 2's providers",
     facts(), THREE, 15, {"outcome": "escalate", "to_level": 2,
                          "providers": ("pager", "slack"), "already_sent": ()}),
    ("long after the deadline it escalates one level, not two",
     facts(), THREE, 500, {"outcome": "escalate", "level": 1, "to_level": 2}),
    ("a provider already sent the plan is not sent again",
     facts(delivered=("ops", "slack")), THREE, 20,
     {"outcome": "escalate", "providers": ("pager",), "already_sent": ("slack",)}),
    ("every next-level provider already had it: advances, sends nothing",
     facts(delivered=("ops", "pager", "slack")), THREE, 20,
     {"outcome": "escalate", "providers": (), "already_sent": ("pager", "slack")}),
    ("a clearing acknowledgement before the timeout: nothing escalates",
     facts(acknowledged=True), THREE, 10, {"outcome": "acknowledged", "due_at": None}),
    ("an acknowledgement after the deadline, before the run: still stops it",
     facts(acknowledged=True), THREE, 90, {"outcome": "acknowledged", "to_level": None}),
    ("level 2 counts from when it was decided, with its own timeout",
     facts(level=2, since=20), THREE, 49, {"outcome": "wait", "due_at": at(50)}),
    ("level 2 past its timeout goes to level 3",
     facts(level=2, since=20), THREE, 50, {"outcome": "escalate", "to_level": 3,
                                           "providers": ("exec",)}),
    ("the last level never escalates further",
     facts(level=3, since=50), THREE, 10_000, {"outcome": "top_level", "levels": 3}),
    ("a level without a timeout never escalates",
     facts(), (Level(("ops",), None), Level(("pager",), 5)), 10_000,
     {"outcome": "no_timeout"}),
    ("the flat form is one level: top level at once",
     facts(), (Level(("ops",), None),), 10_000, {"outcome": "top_level", "levels": 1}),
    ("a level the config no longer has counts as the top",
     facts(level=3, since=0), THREE[:2], 10_000, {"outcome": "top_level", "levels": 2}),
    ("never delivered: nothing to count from",
     facts(since=None), THREE, 10_000, {"outcome": "wait", "due_at": None}),
    ("acknowledged wins over top level",
     facts(level=3, acknowledged=True), THREE, 10_000, {"outcome": "acknowledged"}),
]


@pytest.mark.parametrize(("facts_", "levels", "minute", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_the_rule(facts_: PlanFacts, levels: tuple[Level, ...], minute: float,
                  expected: dict[str, Any]) -> None:
    decision = decide_follow_up(facts_, levels, at(minute))
    assert {key: getattr(decision, key) for key in expected} == expected


LABELS: list[tuple[FollowUpDecision, float, str, str]] = [
    (FollowUpDecision("p", "wait", 1, 3, due_at=at(12)), 0, "L1/3", "12m"),
    (FollowUpDecision("p", "wait", 1, 3, due_at=at(12)), 11.5, "L1/3", "1m"),
    (FollowUpDecision("p", "wait", 2, 3, due_at=at(125)), 0, "L2/3", "2h05m"),
    (FollowUpDecision("p", "escalate", 2, 3, due_at=at(1), to_level=3), 5, "L2/3", "due"),
    (FollowUpDecision("p", "acknowledged", 1, 2), 0, "L1/2", "-"),
    (FollowUpDecision("p", "top_level", 3, 3), 0, "L3/3", "-"),
    (FollowUpDecision("p", "top_level", 3, 2), 0, "L3/3", "-"),
    (FollowUpDecision("p", "no_timeout", 1, 1), 0, "L1/1", "-"),
]


@pytest.mark.parametrize(("decision", "minute", "level", "left"), LABELS)
def test_the_console_labels(decision: FollowUpDecision, minute: float, level: str,
                            left: str) -> None:
    assert (decision.level_label, decision.time_left_label(at(minute))) == (level, left)


def _config(routing: dict[str, Any], **providers: dict[str, Any]) -> CavraConfig:
    return CavraConfig.model_validate({"providers": {
        name: {"kind": "outbox", **extra} for name, extra in providers.items()},
        "routing": routing})


def test_policy_levels_from_the_config() -> None:
    config = _config({"levels": {"critical": [
        {"providers": ["ops"], "ack_timeout_minutes": 15},
        {"providers": ["pager", "off"], "ack_timeout_minutes": 30},
        {"providers": ["off"]}]}, "warning": ["ops"]},
        ops={}, pager={}, off={"enabled": False})
    assert policy_levels("critical", config) == (
        Level(("ops",), 15), Level(("pager",), 30), Level(("outbox",), None))  # fallback
    assert policy_levels("warning", config) == (Level(("ops",), None),)
    assert policy_levels("healthy", config) == (Level(("ops",), None),)  # warning's policy
    assert providers_for("critical", config) == ["ops"]  # plans are built with level 1


def test_the_flat_form_is_level_one_as_before() -> None:
    config = _config({"critical": ["ops", "off"]}, ops={}, off={"enabled": False})
    assert providers_for("critical", config) == ["ops"]
    assert providers_for("warning", config) == ["outbox"]  # nothing configured: fallback
    assert policy_levels("critical", config) == (Level(("ops",), None),)
