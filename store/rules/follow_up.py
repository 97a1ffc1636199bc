"""Escalation follow-up (issue 13; the anchor is PagerDuty's escalation policies): does an
open plan that nobody acknowledged in time go to its next escalation level?

Pure: no database, no clock; the facts and the moment are passed in.

- A plan's levels are those of its alert level's policy (``[[routing.levels.critical]]`` for a
  critical plan, ``…warning`` otherwise); the flat ``critical = [...]`` form is one level
  without a timeout. Level 1 is the plan's own delivery (``cavra escalation deliver``).
- The plan is at level N: the highest level a follow-up run has claimed for it, else 1.
  Level N's clock starts when level N was first delivered (level 1: the plan's first
  escalation delivery) or decided (level 2 on: when the follow-up run claimed it).
- Any clearing acknowledgement (accepted, acknowledged, resolved or dismissed: the latest one
  of a pair counts) by a provider the plan has reached — this level's or an earlier one's —
  stops escalation, whenever it arrived: an acknowledgement recorded after the deadline but
  before a run decides still counts (the escalation is answered; paging more people would be
  noise). The order of the answers: ``acknowledged``, ``top_level`` (the last level, or a level
  the config no longer has), ``no_timeout`` (this level has none), ``wait`` (until ``due_at``),
  ``escalate`` (to level N+1, once ``now`` ≥ ``due_at``).
- Escalating sends level N+1's providers the plan, except those it was already sent to (a
  provider is never sent the same plan twice by a follow-up; retries of a failed send belong
  to the retry plan). A level whose providers all had the plan still advances the plan (its
  own timeout starts), sending nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from store.config import CavraConfig
from store.rules.escalation import level_providers

Outcome = Literal["escalate", "wait", "acknowledged", "top_level", "no_timeout"]
OUTCOMES: tuple[Outcome, ...] = ("escalate", "wait", "acknowledged", "top_level", "no_timeout")


@dataclass(frozen=True)
class Level:
    providers: tuple[str, ...]
    ack_timeout_minutes: int | None


@dataclass(frozen=True)
class PlanFacts:
    """What the rule needs about one plan, read in one query (``store.services.follow_up``)."""

    plan_id: str
    level: int  # the level the plan is at: 1 (its own delivery) or the highest claimed
    level_since: datetime | None  # level 1: first delivered; level 2 on: when decided
    acknowledged: bool  # a clearing latest acknowledgement of a provider the plan reached
    delivered: frozenset[str] = frozenset()  # providers the plan has been sent to


@dataclass(frozen=True)
class FollowUpDecision:
    plan_id: str
    outcome: Outcome
    level: int
    levels: int  # how many levels the plan's policy has now
    due_at: datetime | None = None  # when the current level's timeout passes(d)
    to_level: int | None = None  # escalate: the level it goes to
    providers: tuple[str, ...] = ()  # escalate: the providers to send it to now
    already_sent: tuple[str, ...] = ()  # escalate: that level's providers that had it

    @property
    def level_label(self) -> str:
        """``L2/3``: the plan's level of its policy's levels."""
        return f"L{self.level}/{max(self.level, self.levels)}"

    def time_left_label(self, now: datetime) -> str:
        """``12m`` (or ``1h05m``) until the next level, ``due`` when it is owed now, ``-``
        when it will not escalate (acknowledged, last level, no timeout)."""
        if self.outcome == "escalate":
            return "due"
        if self.outcome != "wait" or self.due_at is None:
            return "-"
        minutes = max(1, math.ceil((self.due_at - now).total_seconds() / 60))
        return f"{minutes}m" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def severity_of(alert_level: str) -> str:
    """The policy a plan follows: critical plans the critical one, the others warning."""
    return "critical" if alert_level == "critical" else "warning"


def policy_levels(alert_level: str, config: CavraConfig) -> tuple[Level, ...]:
    """The plan's levels as the config says now: each level's usable providers (configured
    and enabled; the fallback when none is), and its timeout."""
    severity = severity_of(alert_level)
    configured = config.routing.levels_for(severity)
    return tuple(Level(tuple(level_providers(severity, number, config)),
                       level.ack_timeout_minutes)
                 for number, level in enumerate(configured, 1))


def decide_follow_up(facts: PlanFacts, levels: Sequence[Level],
                     now: datetime) -> FollowUpDecision:
    level, count = facts.level, len(levels)
    if facts.acknowledged:
        return FollowUpDecision(facts.plan_id, "acknowledged", level, count)
    if level >= count:
        return FollowUpDecision(facts.plan_id, "top_level", level, count)
    timeout = levels[level - 1].ack_timeout_minutes
    if timeout is None:
        return FollowUpDecision(facts.plan_id, "no_timeout", level, count)
    if facts.level_since is None:  # never delivered: nothing to count from
        return FollowUpDecision(facts.plan_id, "wait", level, count)
    due = facts.level_since + timedelta(minutes=timeout)
    if now < due:
        return FollowUpDecision(facts.plan_id, "wait", level, count, due_at=due)
    nxt = levels[level].providers
    return FollowUpDecision(
        facts.plan_id, "escalate", level, count, due_at=due, to_level=level + 1,
        providers=tuple(p for p in nxt if p not in facts.delivered),
        already_sent=tuple(p for p in nxt if p in facts.delivered))
