"""A live run's sends, up to ``[retry] concurrency`` at once (SPEC §5.5).

How the work is split, and why:

- **Only network I/O runs in parallel.** The run's own thread does every database step;
  a pool of sender threads does nothing but ``connector.send``. So no write transaction is
  ever held across a send, SQLite's single writer is never contended from inside the run,
  and each transaction serves a batch: one begins every pair picked at that moment (each
  still re-checked under the write lock — in flight elsewhere? still due?), one finishes every
  send that has answered since the last. Once one send has answered, the run gives the others
  in flight ``GATHER_S`` (10 ms) to answer too before it records them: the run's thread
  shares the interpreter with the senders, and two transactions serving several sends leave
  the senders more of it than two per send would. (On SQLite one transaction does both:
  see ``_turn``.)
- **A freed slot goes to the provider with the fewest sends in flight** (ties: the oldest
  pair waiting). A slow or blackholed provider holds one slot per send, each for at most its
  timeout, and gets a second slot only once every other provider with work waiting has one
  of its own; it grows into the free slots only as the others run dry. So its pairs never
  hold another provider's pairs back: those keep being sent on the remaining slots (with
  ``concurrency`` ≥ 2), and a provider's pairs are still sent in their planned order. Grouping
  by provider and draining providers one after another would let a slow provider's queue
  delay every provider behind it; one lane per provider would leave a one-provider run
  (the common case) with no parallelism at all.
- **A circuit that is not known to be closed gets one send at a time**: every provider
  starts that way until a pair's facts show its breaker closed, so a half-open provider gets
  exactly one trial (SPEC §7), as in a sequential run, and the pairs behind it re-read the
  breaker the trial left.
- **Each pair is sent once per run**, under its idempotency key: the selection holds each
  (plan, provider) once and ``begin_deliveries`` refuses a pair with a send in flight.

If anything fails mid-run, the sends already out are waited for and recorded before the
error is raised, so none is left ``in_flight`` by the worker itself.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from sqlalchemy.orm import Session

from store.errors import StaleDecision
from store.models import Delivery, ExecutionRecord, RetryDecision
from store.rules.retry_decision import CircuitState, sent_reason
from store.services.delivery_ledger import SendRequest, begin_deliveries, send_batch
from store.services.retry import record_executions
from workflows.connectors.base import Connector, OutboundMessage, Outcome
from workflows.delivery import finish_sent, safe_send
from workflows.run_steps import Judged, RunScope, Tally, judge_pairs, record, record_unsent

log = logging.getLogger(__name__)
Pair = tuple[int, RetryDecision]
# How long a turn waits, after the first send in flight answers, for the others to answer
# too. Each turn costs write transactions (two, or one on SQLite) on the run's thread, which
# shares the interpreter with the senders: a turn that records several answers leaves them
# more of it.
# A provider that is slow to answer holds the others' records back by this much at most.
GATHER_S = 0.01


@dataclass(frozen=True)
class _Sending:
    judged: Judged
    delivery: Delivery
    connector: Connector


class Lanes:
    """The pairs waiting, per provider in selection order, and the sends each has out."""

    def __init__(self, pairs: list[Pair]) -> None:
        self.waiting: dict[str, deque[Pair]] = {}
        for pair in pairs:
            self.waiting.setdefault(pair[1].provider, deque()).append(pair)
        self.busy: Counter[str] = Counter()
        # Sends a provider may have out at once: one until a pair shows its circuit closed,
        # then the failures it may still have before the circuit opens (so a failing
        # provider gets no more requests than a sequential run would send it).
        self.cap: dict[str, int] = dict.fromkeys(self.waiting, 1)

    def __bool__(self) -> bool:
        return any(self.waiting.values())

    def pick(self, free: int) -> list[Pair]:
        picked: list[Pair] = []
        while len(picked) < free:
            ready = [p for p, queue in self.waiting.items()
                     if queue and self.busy[p] < self.cap.get(p, 1)]
            if not ready:
                break
            provider = min(ready, key=lambda p: (self.busy[p], self.waiting[p][0][0]))
            picked.append(self.waiting[provider].popleft())
            self.busy[provider] += 1
        return picked

    def learn(self, provider: str, circuit: CircuitState, headroom: int) -> None:
        self.cap[provider] = max(1, headroom) if circuit == "closed" else 1

    def done(self, provider: str) -> None:
        self.busy[provider] -= 1

    def hold_back(self, judged: list[Judged]) -> list[Judged]:
        """Pairs to send beyond their provider's cap (learned from these very facts) go back
        to the front of its queue; the rest are returned in order."""
        kept: list[Judged] = []
        returned: dict[str, list[Pair]] = {}
        for pair in judged:
            provider = pair.item.provider
            if pair.verdict.status == "send" and self.busy[provider] > self.cap.get(provider, 1):
                self.busy[provider] -= 1
                returned.setdefault(provider, []).append((pair.index, pair.item))
                continue
            kept.append(pair)
        for provider, pairs in returned.items():
            self.waiting[provider].extendleft(reversed(pairs))
        return kept


def send_live(scope: RunScope, pairs: list[Pair], concurrency: int,
              tally: Tally | None = None) -> Tally:
    lanes = Lanes(pairs)
    tally = tally if tally is not None else Tally()
    sending: dict[Future[Outcome], _Sending] = {}
    answered: list[tuple[_Sending, Outcome]] = []
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="cavra-send") as pool:
        try:
            while True:
                for started, _ in answered:  # recorded below, before the picks are judged
                    lanes.done(started.judged.item.provider)
                # A run that lost its lease (another process took it) sends nothing more.
                picked = (lanes.pick(concurrency - len(sending)) if scope.still_leading()
                          else [])
                if answered or picked:
                    begun = _turn(scope, answered, picked, lanes, tally)
                    answered = []  # recorded
                    for started in begun:
                        sending[pool.submit(safe_send, started.connector,
                                            _outbound(started))] = started
                    continue  # a lane may have opened: fill the free slots before waiting
                if not sending:
                    break
                done = _answered(sending)
                answered = [(sending.pop(future), future.result()) for future in done]
        except BaseException:
            _record_the_rest(scope, answered, sending, tally)
            raise
    return tally


def _answered(sending: dict[Future[Outcome], _Sending]) -> set[Future[Outcome]]:
    """The sends that have answered: at least one, and whichever of the others answer
    within ``GATHER_S`` of it (so one turn's two transactions record several)."""
    done, rest = wait(sending, return_when=FIRST_COMPLETED)
    if rest:
        more, _ = wait(rest, timeout=GATHER_S)
        done |= more
    return done


def _outbound(started: _Sending) -> OutboundMessage:
    item = started.judged.item
    return OutboundMessage(delivery_id=started.delivery.delivery_id, kind="escalation",
                           provider=item.provider, idempotency_key=item.idempotency_key,
                           plan_id=item.plan_id, schedule_run_id=None, attempt=item.attempt,
                           message=started.judged.message)


def _turn(scope: RunScope, answered: list[tuple[_Sending, Outcome]], picked: list[Pair],
          lanes: Lanes, tally: Tally) -> list[_Sending]:
    """Two write transactions per turn of the loop (one on SQLite, below): record what the
    providers answered, then begin the pairs picked for the freed slots, judged on facts that
    include those answers.
    Kept apart so each takes its row locks in the same order as a manual send's begin and
    finish (on PostgreSQL one transaction doing both deadlocked with a manual finish). On
    SQLite, whose writers hold the whole database (BEGIN IMMEDIATE) and take no row locks,
    one transaction does both, in the same order: half the commits. (If its begin fails,
    the answers roll back with it, and the run's error path records them.)
    (A run that fails mid-turn reports nothing, so the tally may move before the commit.)"""
    if answered:
        with send_batch(scope.ctx, scope.digests) as session:
            _finish(scope, session, answered, tally)
            if picked and session.get_bind().dialect.name == "sqlite":
                return _begin(scope, session, picked, lanes, tally)
    if not picked:
        return []
    with send_batch(scope.ctx, scope.digests) as session:
        return _begin(scope, session, picked, lanes, tally)


def _begin(scope: RunScope, session: Session, picked: list[Pair], lanes: Lanes,
           tally: Tally) -> list[_Sending]:
    """Judge the picked pairs on fresh facts, record those not sent, and record the others
    in flight (audited) before any of them is sent."""
    if not picked:
        return []
    judged = judge_pairs(scope, session, picked)
    for pair in judged:
        lanes.learn(pair.item.provider, pair.circuit, pair.headroom)
    judged = lanes.hold_back(judged)  # picked on an older cap: wait for a free slot
    to_send = record_unsent(scope, session, judged, tally)
    connectors = [scope.registry.get(pair.item.provider) for pair in to_send]
    begun = begin_deliveries(scope.ctx, session, [SendRequest(
        kind="escalation", provider=pair.item.provider, plan_id=pair.item.plan_id,
        schedule_run_id=None, attempt=pair.item.attempt, idempotency_key=pair.item.idempotency_key,
        target=connector.target(), payload_sha256=pair.digest, timeout_s=connector.timeout_s,
        retry_plan_id=scope.retry_plan_id, sent_by_run_id=scope.run_id)
        for pair, connector in zip(to_send, connectors, strict=True)], decision=scope.decision)
    started: list[_Sending] = []
    refused: list[tuple[int, ExecutionRecord]] = []
    for pair, connector, result in zip(to_send, connectors, begun, strict=True):
        if isinstance(result, Delivery):
            started.append(_Sending(pair, result, connector))
            continue
        # Stale: the pair moved on (e.g. a manual send succeeded) since the plan was built.
        # Otherwise someone else's send to the pair has not finished yet.
        reason = "decision_stale" if isinstance(result, StaleDecision) else "delivery_in_flight"
        refused.append((pair.index, record(scope, pair, "skipped", reason)))
    record_executions(scope.ctx, session, [execution for _, execution in refused])
    tally.records.update(refused)
    sent = {s.judged.index for s in started}
    for pair in judged:
        if pair.index not in sent:
            lanes.done(pair.item.provider)
    return started


def _finish(scope: RunScope, session: Session, answered: list[tuple[_Sending, Outcome]],
            tally: Tally) -> None:
    """Record every send that has answered: deliveries, breakers, execution records, one
    audit event each."""
    if not answered:
        return

    def on_finish(session: Session, finished: list[Delivery]) -> None:
        records = [record(scope, started.judged, delivery.status,
                          sent_reason(delivery.status, delivery.error), delivery.delivery_id)
                   for (started, _), delivery in zip(answered, finished, strict=True)]
        record_executions(scope.ctx, session, records)
        tally.records.update((started.judged.index, execution)
                             for (started, _), execution in zip(answered, records, strict=True))

    finish_sent(scope.ctx, session, [(s.delivery, outcome) for s, outcome in answered],
                action="retry.deliver", decision=scope.decision, on_finish=on_finish)


def _record_the_rest(scope: RunScope, answered: list[tuple[_Sending, Outcome]],
                     sending: dict[Future[Outcome], _Sending], tally: Tally) -> None:
    """The run is failing: wait for the sends still out and record every answer not yet
    recorded (best effort: what cannot be recorded stays in flight, and the next live run
    settles it as unknown)."""
    wait(sending)
    rest = answered + [(started, future.result()) for future, started in sending.items()]
    sending.clear()
    if not rest:
        return
    try:
        with send_batch(scope.ctx, scope.digests) as session:
            _finish(scope, session, rest, tally)
    except Exception:
        log.exception("could not record %d sends of run %s", len(rest), scope.run_id)
