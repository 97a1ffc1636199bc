"""The history bulk_seed writes: 90 days of a busy recovery loop, replayed in time order.

Plans are built and delivered, acknowledged, retried by dry and live worker runs (100
executions each, the worker's maximum), and summarised in executive reports. Pair and plan
state, counters and the audit chain follow the same rules as store/services, so the console
sees a database the services could have written. Deterministic: one seeded ``random.Random``.

Simplification (size, not shape): only the newest FULL_DECISION_RUNS retry plans store every
decision (what the console's first pages show); older ones keep their first five, else the
retry_plans table alone would be ~400 MB.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bulk_sink import Sink, as_json, stored

from store.config import RetryPolicy
from store.digest import sha256_of
from store.models import ACK_ANSWERED, ACK_CLEARS_LIVE_RETRY
from store.rules.report import OpenGroup, summarise

END = datetime(2026, 11, 27, tzinfo=UTC)  # the newest record; the bench clock is frozen here
SPAN = timedelta(days=90)
EXECUTIONS_PER_RUN = 100  # the retry worker's maximum --max
LIVE_SHARE = 0.2
PAIR_WINDOW = timedelta(hours=48)  # a worker run retries pairs of recent plans
KEPT_DECISIONS = 5
FULL_DECISION_RUNS = 1_000
ACTORS = ("ana", "bo", "chen", "dee")
SCHEDULER = "scheduler"
CONNECTORS = ("payments-api", "checkout-web", "ledger-db", "auth-gateway", "search-index",
              "inventory-svc", "notifications")
CATEGORIES = ("rollback", "config-revert", "data-restore", "failover")
TARGETS = {
    "outbox": "file://outbox.jsonl",
    "ops-webhook": "https://hooks.example.internal/***",
    "pagerduty": "https://events.pagerduty.com/***",
    "exec-slack": "https://hooks.slack.com/***",
}
EXECUTIVE_PROVIDERS = ("outbox", "exec-slack")
POLICY = RetryPolicy().model_dump(mode="json")
REPORT_SCHEDULE = "sch-0000000001"
RETRY_SCHEDULE = "sch-0000000002"


@dataclass(frozen=True)
class Sizes:
    executions: int = 1_000_000
    deliveries: int = 100_000

    @property
    def plans(self) -> int:
        return max(10, self.deliveries // 33)

    @property
    def report_runs(self) -> int:
        return max(5, self.deliveries // 50)

    @property
    def worker_runs(self) -> int:
        return max(1, -(-self.executions // EXECUTIONS_PER_RUN))


def make_id(prefix: str, n: int) -> str:
    """An odd multiplier mod 2**40 is a bijection: unique, random-looking, repeatable IDs."""
    return f"{prefix}-{(n * 0x9E3779B97F4A7C15 + 0x5DEECE66D) % (1 << 40):010x}"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(slots=True)
class Pair:
    """A mirror of pair_state, moved exactly as store/services/deliveries.py moves it."""

    definitive_count: int = 0
    failures_since_success: int = 0
    failed_status_codes: list[int] = field(default_factory=list)
    last_failure_at: datetime | None = None
    last_success_at: datetime | None = None
    retry_after_s: int | None = None
    latest_delivery_id: str | None = None
    latest_status: str | None = None
    latest_ack_id: str | None = None
    latest_ack_state: str | None = None
    latest_ack_by: str | None = None
    accepted_by: str | None = None
    ack_pending: bool = False
    updated_at: datetime = END


@dataclass(slots=True)
class PlanState:
    alert_level: str
    open: bool
    unresolved: list[str]


@dataclass(frozen=True)
class Outcome:
    status: str
    status_code: int | None
    latency_ms: int
    error: str | None
    retry_after_s: int | None


class Story:
    def __init__(self, sink: Sink, sizes: Sizes, seed: int = 7) -> None:
        self.sink = sink
        self.sizes = sizes
        self.rng = random.Random(seed)
        self.start = END - SPAN
        self.pairs: dict[tuple[str, str], Pair] = {}
        self.plans: dict[str, PlanState] = {}
        self.recent: deque[tuple[datetime, list[tuple[str, str]]]] = deque()
        self.next_id: dict[str, int] = {}

    # -- helpers -----------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        n = self.next_id.get(prefix, 0) + 1
        self.next_id[prefix] = n
        return make_id(prefix, n)

    def spread(self, count: int, begin: datetime, end: datetime) -> list[datetime]:
        """``count`` moments over [begin, end), evenly spaced with jitter, in order."""
        step = (end - begin) / count
        return [begin + step * (i + self.rng.random() * 0.8) for i in range(count)]

    def outcome(self, ok_share: float) -> Outcome:
        roll = self.rng.random()
        if roll < ok_share:
            return Outcome("delivered", 200, self.rng.randint(20, 400), None, None)
        if roll < ok_share + (1 - ok_share) * 0.55:
            return Outcome("failed", 503, self.rng.randint(200, 2000), "server_error: HTTP 503",
                           None)
        if roll < ok_share + (1 - ok_share) * 0.8:
            return Outcome("failed", 429, self.rng.randint(20, 200), "rate_limited: HTTP 429",
                           900)
        return Outcome("unknown", None, 5000, "timeout: no answer in 5.0s", None)

    # -- the whole story ---------------------------------------------------------------------

    def write(self) -> None:
        plans = self.plan_specs()
        reports = self.report_specs()
        fixed = sum(len(p["providers"]) for p in plans) + sum(len(r["sends"]) for r in reports)
        runs = self.run_specs(plans[0]["at"] + timedelta(hours=1))
        live_slots = sum(r["count"] for r in runs if r["mode"] == "live")
        self.deliveries_left = self.sizes.deliveries - fixed
        self.live_slots_left = live_slots
        if not 0 <= self.deliveries_left <= live_slots:
            raise SystemExit(f"bulk_seed: {self.sizes.deliveries} deliveries do not fit "
                             f"{self.sizes.executions} executions; use fewer deliveries")
        events: list[tuple[datetime, int, str, dict[str, Any]]] = []
        for kind, specs in (("plan", plans), ("report", reports), ("run", runs)):
            events += [(spec["at"], len(events) + i, kind, spec) for i, spec in enumerate(specs)]
        for plan in plans:
            events += [(ack["at"], len(events) + i, "ack", ack)
                       for i, ack in enumerate(plan["acks"])]
        events.sort(key=lambda event: (event[0], event[1]))
        self.write_schedules()
        self.write_recovery_items()
        handlers = {"plan": self.on_plan, "ack": self.on_ack, "run": self.on_run,
                    "report": self.on_report}
        for _at, _order, kind, spec in events:
            handlers[kind](spec)
        self.write_state()

    # -- specs: what happens when ------------------------------------------------------------

    def plan_specs(self) -> list[dict[str, Any]]:
        specs = []
        ack_states = ("acknowledged", "accepted", "resolved", "deferred", "escalated", "dismissed")
        for at in self.spread(self.sizes.plans, self.start, END - timedelta(minutes=30)):
            level = self.rng.choices(("critical", "warning", "healthy"), (2, 7, 1))[0]
            providers = ["outbox"]
            if self.rng.random() < 0.6:
                providers.append("ops-webhook")
            if level == "critical":
                providers.append("pagerduty")
            acks = []
            for provider in providers:
                moment = at + timedelta(minutes=self.rng.uniform(5, 240))
                if self.rng.random() < 0.8 and moment < END:
                    state = self.rng.choices(ack_states, (35, 20, 30, 5, 5, 5))[0]
                    acks.append({"at": moment, "provider": provider, "state": state})
                final = at + timedelta(hours=self.rng.uniform(6, 30))
                if final < END - timedelta(hours=12) and self.rng.random() < 0.9:
                    acks.append({"at": final, "provider": provider, "state": "resolved"})
            specs.append({"at": at, "level": level, "providers": providers, "acks": acks})
        for spec in specs:
            spec["plan_id"] = self.new_id("esc")
            for ack in spec["acks"]:
                ack["plan_id"] = spec["plan_id"]
        return specs

    def report_specs(self) -> list[dict[str, Any]]:
        specs = []
        for at in self.spread(self.sizes.report_runs, self.start, END - timedelta(minutes=20)):
            sends = []
            for provider in EXECUTIVE_PROVIDERS:
                sends.append((provider, 1, self.outcome(0.85)))
                if sends[-1][2].status != "delivered":
                    sends.append((provider, 2, self.outcome(0.9)))
            specs.append({"at": at.replace(second=0, microsecond=0), "sends": sends})
        return specs

    def run_specs(self, first: datetime) -> list[dict[str, Any]]:
        """Runs begin once there is a plan to retry."""
        total = self.sizes.executions
        count = self.sizes.worker_runs
        moments = self.spread(count, first, END - timedelta(minutes=5))
        specs = []
        for i, at in enumerate(moments):
            n = total // count + (1 if i < total % count else 0)
            mode = "live" if self.rng.random() < LIVE_SHARE else "dry_run"
            scheduled = self.rng.random() < 0.5
            specs.append({"at": at, "count": n, "mode": mode, "scheduled": scheduled,
                          "full": i >= count - FULL_DECISION_RUNS})
        return specs

    # -- handlers: one service call each -----------------------------------------------------

    def write_schedules(self) -> None:
        at = self.start - timedelta(days=1)
        for schedule_id, name, kind, cron, interval, providers, live in (
                (REPORT_SCHEDULE, "morning-exec", "report", "0 8 * * *", None,
                 list(EXECUTIVE_PROVIDERS), False),
                (RETRY_SCHEDULE, "retry-15m", "retry-worker", None, 900, [], True)):
            self.sink.add("report_schedules", (
                schedule_id, name, kind, cron, interval, "UTC", as_json(providers), True, live,
                300, False, stored(at), stored(at), "ana"))
            self.sink.audit(at=at, actor="ana", action="schedule.change", targets=[schedule_id],
                            detail=f"schedule {name} added", evidence={"schedule": name})
        for at in self.spread(12, self.start, END):
            self.sink.add("schedule_events", (REPORT_SCHEDULE, stored(at), "missed",
                                              "missed by 412s (grace 300s)", stored(at),
                                              SCHEDULER))
            self.sink.bump("schedule_missed", at)

    def write_recovery_items(self) -> None:
        days = SPAN.days
        per_day = max(1, self.sizes.plans // days)
        number = 1000
        for day in range(days):
            batch_at = self.start + timedelta(days=day, hours=6)
            ids = []
            for _ in range(per_day):
                number += 1
                opened = batch_at - timedelta(minutes=self.rng.uniform(10, 600))
                recent = END - batch_at < timedelta(days=2)
                states = (("open", "reopened", "escalated", "resolved") if recent
                          else ("resolved", "resolved", "mitigated", "deferred"))
                category = self.rng.choice(CATEGORIES)
                rid = f"rec-{number}"
                ids.append(rid)
                self.sink.add("recovery_items", (
                    rid, self.rng.choice(CONNECTORS), category, f"drill-{batch_at:%Y-%m}",
                    f"pb-{category}", stored(opened), self.rng.choice(states),
                    self.rng.randint(0, 4), stored(batch_at), "ana"))
            self.sink.audit(at=batch_at, actor="ana", action="recovery.import",
                            targets=ids[:20], detail=f"imported {len(ids)} recovery items",
                            evidence={"items": ids})

    def on_plan(self, spec: dict[str, Any]) -> None:
        at, plan_id, level, providers = spec["at"], spec["plan_id"], spec["level"], spec[
            "providers"]
        actor = self.rng.choice(ACTORS)
        routes = [{
            "connector": self.rng.choice(CONNECTORS), "category": self.rng.choice(CATEGORIES),
            "severity": "critical" if level == "critical" and i == 0 else "warning",
            "reason": "SLO breached" if level == "critical" else "repeated failures",
            "recommended_action": "page the release owner", "age_minutes":
                self.rng.randint(10, 600), "slo_status": "breached" if level == "critical"
                else "open", "failure_count": self.rng.randint(0, 5), "providers": providers,
        } for i in range(self.rng.randint(1, 3)) if level != "healthy"]
        counts = {"routes": len(routes), "critical": sum(r["severity"] == "critical"
                                                        for r in routes),
                  "warning": sum(r["severity"] == "warning" for r in routes)}
        self.sink.add("escalation_plans", (plan_id, level, 240, as_json(routes),
                                           as_json(providers), as_json(counts), stored(at), actor))
        # A plan opens with its first delivery (store/services/escalation.py track_plan_pair).
        self.plans[plan_id] = PlanState(level, False, [])
        self.sink.bump("escalation_plans", at)
        self.sink.audit(at=at, actor=actor, action="escalation.plan", targets=[plan_id],
                        detail=f"{level} plan, {len(routes)} routes",
                        evidence={"plan_id": plan_id, "routes": routes})
        for i, provider in enumerate(providers):
            pair = self.pairs.setdefault((plan_id, provider), Pair(updated_at=at))
            sent = at + timedelta(minutes=1, seconds=i)
            self.deliver_escalation(pair, plan_id, provider, sent, actor, self.outcome(0.8),
                                    action="escalation.deliver", rule_action=None)
        self.recent.append((at, [(plan_id, p) for p in providers]))

    def deliver_escalation(self, pair: Pair, plan_id: str, provider: str, at: datetime,
                           actor: str, outcome: Outcome, *, action: str, rule_action: str | None,
                           retry_plan_id: str | None = None,
                           worker_run_id: str | None = None) -> tuple[str, str, str]:
        """begin_delivery + finish_delivery + _count_outcome. Returns (id, key, payload)."""
        attempt = pair.definitive_count + 1
        key = f"cavra:{plan_id}:{provider}:{attempt}"
        payload = digest(key)
        delivery_id = self.new_id("dlv")
        pair.ack_pending = pair.latest_ack_state not in ACK_ANSWERED
        self.track_plan_pair(plan_id, provider,
                             settled=pair.latest_ack_state in ("resolved", "dismissed"))
        finished = at + timedelta(milliseconds=outcome.latency_ms)
        self.sink.add("deliveries", (
            delivery_id, "escalation", plan_id, None, provider, outcome.status,
            outcome.status_code, outcome.latency_ms, attempt, key, TARGETS[provider], payload,
            outcome.error, outcome.retry_after_s, retry_plan_id, worker_run_id, stored(finished),
            None, stored(at), actor))
        self.sink.bump(f"escalation_deliveries.{outcome.status}", finished)
        pair.latest_delivery_id = delivery_id
        pair.latest_status = outcome.status
        pair.updated_at = finished
        if outcome.status in ("delivered", "failed"):
            pair.definitive_count += 1
        if outcome.status == "delivered":
            pair.failures_since_success = 0
            pair.failed_status_codes = []
            pair.last_success_at = finished
            pair.retry_after_s = None
        else:
            pair.failures_since_success += 1
            pair.last_failure_at = finished
            pair.retry_after_s = outcome.retry_after_s
            if outcome.status_code is not None:
                pair.failed_status_codes = [*pair.failed_status_codes, outcome.status_code][-10:]
        self.sink.audit(at=finished, actor=actor, action=action, rule_action=rule_action,
                        targets=[delivery_id, plan_id], detail=f"{provider}: {outcome.status}",
                        evidence={"delivery_id": delivery_id, "status": outcome.status,
                                  "idempotency_key": key})
        return delivery_id, key, payload

    def on_ack(self, spec: dict[str, Any]) -> None:
        at, plan_id, provider, state = spec["at"], spec["plan_id"], spec["provider"], spec[
            "state"]
        actor = self.rng.choice(ACTORS)
        ack_id = self.new_id("ack")
        ref = f"INC-{self.rng.randint(1000, 9999)}"
        self.sink.add("acknowledgements", (ack_id, plan_id, provider, state, actor, ref, None,
                                           stored(at), actor))
        pair = self.pairs[(plan_id, provider)]
        pair.latest_ack_id, pair.latest_ack_state, pair.latest_ack_by = ack_id, state, actor
        if state == "accepted":
            pair.accepted_by = actor
        pair.updated_at = at
        pair.ack_pending = state not in ACK_ANSWERED
        self.track_plan_pair(plan_id, provider, settled=state in ("resolved", "dismissed"))
        self.sink.audit(at=at, actor=actor, action="escalation.ack", targets=[ack_id, plan_id],
                        detail=f"{provider}: {state}",
                        evidence={"ack_id": ack_id, "plan_id": plan_id, "state": state})

    def track_plan_pair(self, plan_id: str, provider: str, settled: bool) -> None:
        """store/services/escalation.py track_plan_pair: open while a provider the plan was
        delivered to lacks a resolved/dismissed latest acknowledgement."""
        plan = self.plans[plan_id]
        unresolved = [p for p in plan.unresolved if p != provider]
        if not settled:
            unresolved.append(provider)
        plan.unresolved = sorted(unresolved)
        plan.open = bool(unresolved) and plan.alert_level != "healthy"

    def pool(self, at: datetime) -> list[tuple[str, str]]:
        while self.recent and at - self.recent[0][0] > PAIR_WINDOW and len(self.recent) > 1:
            self.recent.popleft()
        return [pair for _, pairs in self.recent for pair in pairs]

    def on_run(self, spec: dict[str, Any]) -> None:
        at, n, mode = spec["at"], spec["count"], spec["mode"]
        actor = SCHEDULER if spec["scheduled"] else self.rng.choice(ACTORS)
        run_id, retry_plan_id = self.new_id("wrk"), self.new_id("rtp")
        pool = self.pool(at)
        chosen = self.rng.sample(pool, n) if len(pool) >= n else self.rng.choices(pool, k=n)
        waiting = self.rng.randint(0, 20)
        suppressed = self.rng.randint(0, 10)
        decisions = [self.decision(plan_id, provider, at) for plan_id, provider in
                     (chosen if spec["full"] else chosen[:KEPT_DECISIONS])]
        if spec["full"]:
            others = self.rng.choices(pool, k=waiting + suppressed)
            decisions += [self.decision(plan_id, provider, at, "wait", "backoff")
                          for plan_id, provider in others[:waiting]]
            decisions += [self.decision(plan_id, provider, at, "suppress",
                                        "max_attempts_reached")
                          for plan_id, provider in others[waiting:]]
        self.sink.add("retry_plans", (
            retry_plan_id, as_json(POLICY), as_json(decisions),
            as_json({"retry": n, "wait": waiting, "suppress": suppressed}), stored(at), actor))
        self.sink.bump("retry_plans", at)
        self.sink.audit(at=at, actor=actor, action="retry.plan", rule_action=f"retry.run.{mode}",
                        targets=[retry_plan_id, run_id],
                        detail=f"fresh plan for worker run {run_id}",
                        evidence={"retry_plan_id": retry_plan_id, "decisions": len(chosen)})
        summary = dict.fromkeys(("retryable", "selected", "waiting", "suppressed",
                                 "acknowledgement_pending", "dry_run", "delivered", "failed",
                                 "unknown", "skipped", "blocked"), 0)
        summary.update(retryable=n, selected=n, waiting=waiting, suppressed=suppressed)
        execution_ids: list[str] = []
        execution_digests: list[str] = []
        moment = at
        for plan_id, provider in chosen:
            moment += timedelta(milliseconds=350)
            pair = self.pairs[(plan_id, provider)]
            attempt = pair.definitive_count + 1
            key = f"cavra:{plan_id}:{provider}:{attempt}"
            delivery_id = None
            if mode == "dry_run":
                payload = digest(key)
                status, reason = (("dry_run", "would_deliver") if self.rng.random() < 0.95
                                  else ("skipped", "provider_not_configured"))
            elif self.rng.random() * self.live_slots_left < self.deliveries_left:
                self.deliveries_left -= 1  # selection sampling: exactly the deliveries asked for
                result = self.outcome(0.7)
                delivery_id, key, payload = self.deliver_escalation(
                    pair, plan_id, provider, moment, actor, result, action="retry.deliver",
                    rule_action="retry.run.live", retry_plan_id=retry_plan_id,
                    worker_run_id=run_id)
                status, reason = result.status, result.error or result.status
                moment += timedelta(milliseconds=result.latency_ms)
            else:
                payload = digest(key)
                if pair.latest_ack_state in ACK_CLEARS_LIVE_RETRY:
                    status, reason = "skipped", "delivery_in_flight"
                else:
                    status, reason = "blocked", "acknowledgement_required"
                    summary["acknowledgement_pending"] += 1
            if mode == "live":
                self.live_slots_left -= 1
            execution_id = self.new_id("exe")
            fields = {
                "execution_id": execution_id, "status": status, "reason": reason,
                "run_id": run_id, "retry_plan_id": retry_plan_id, "plan_id": plan_id,
                "provider": provider, "delivery_id": delivery_id, "idempotency_key": key,
                "payload_sha256": payload, "attempt": attempt, "mode": mode,
                "executed_by": actor, "executed_at": moment.isoformat(),
            }
            execution_sha = sha256_of(fields)  # as store/services/retry.py record_execution
            when = stored(moment)
            self.sink.add("execution_records", (
                execution_id, execution_sha, status, reason, run_id, retry_plan_id, plan_id,
                provider, delivery_id, key, payload, attempt, mode, actor, when, when, actor))
            self.sink.bump(f"retry_executions.{status}", moment)
            summary[status] += 1
            execution_ids.append(execution_id)
            execution_digests.append(execution_sha)
        trigger = "schedule" if spec["scheduled"] else "manual"
        schedule_id = RETRY_SCHEDULE if spec["scheduled"] else None
        self.sink.add("worker_runs", (run_id, mode, trigger, retry_plan_id, schedule_id,
                                      stored(at), as_json(summary), stored(moment), actor))
        self.sink.bump(f"retry_worker_runs.{mode}", moment)
        self.sink.audit(at=moment, actor=actor, action=f"retry.run.{mode}",
                        targets=[run_id, retry_plan_id, *execution_ids][:50],
                        detail=", ".join(f"{k} {v}" for k, v in summary.items() if v),
                        evidence={"run_id": run_id, "executions": execution_digests})

    def decision(self, plan_id: str, provider: str, at: datetime, action: str = "retry",
                 reason: str | None = None) -> dict[str, Any]:
        pair = self.pairs[(plan_id, provider)]
        attempt = pair.definitive_count + 1
        return {"plan_id": plan_id, "provider": provider, "action": action,
                "reason": reason or f"{pair.failures_since_success} failure(s) since last success",
                "retry_count": pair.failures_since_success,
                "next_retry_at": None if action == "suppress" else at.isoformat(),
                "latest_delivery_id": pair.latest_delivery_id,
                "failed_status_codes": list(pair.failed_status_codes), "attempt": attempt,
                "idempotency_key": f"cavra:{plan_id}:{provider}:{attempt}"}

    def on_report(self, spec: dict[str, Any]) -> None:
        at = spec["at"]
        run_id, report_id = self.new_id("run"), self.new_id("rpt")
        start = at - timedelta(hours=24)
        groups = [OpenGroup(category, self.rng.choice(CONNECTORS), self.rng.randint(1, 6),
                            at - timedelta(minutes=self.rng.randint(30, 900)),
                            self.rng.randint(0, 8))
                  for category in self.rng.sample(CATEGORIES, self.rng.randint(0, 3))]
        provider_counts = {p: {"delivered": self.rng.randint(5, 40),
                               "failed": self.rng.randint(0, 6)}
                           for p in ("outbox", "ops-webhook")}
        body = summarise(groups, provider_counts, [], at, 240)
        self.sink.add("executive_reports", (report_id, stored(start), stored(at), body["status"],
                                            as_json(body), stored(at), SCHEDULER))
        self.sink.add("schedule_runs", (run_id, REPORT_SCHEDULE, stored(at), "schedule",
                                        stored(start), stored(at), report_id, stored(at),
                                        SCHEDULER))
        self.sink.bump("schedule_runs", at)
        self.sink.audit(at=at, actor=SCHEDULER, action="report.schedule_run",
                        targets=[run_id, report_id], detail=f"report {body['status']}",
                        evidence={"run_id": run_id, "report": body})
        moment = at + timedelta(seconds=5)
        for provider, attempt, result in spec["sends"]:
            delivery_id = self.new_id("dlv")
            key = f"cavra:{run_id}:{provider}:{attempt}"
            finished = moment + timedelta(milliseconds=result.latency_ms)
            self.sink.add("deliveries", (
                delivery_id, "executive", None, run_id, provider, result.status,
                result.status_code, result.latency_ms, attempt, key, TARGETS[provider],
                digest(key), result.error, result.retry_after_s, None, None, stored(finished),
                None, stored(moment), SCHEDULER))
            self.sink.bump(f"executive_deliveries.{result.status}", finished)
            self.sink.audit(at=finished, actor=SCHEDULER, action="report.deliver",
                            targets=[delivery_id, run_id], detail=f"{provider}: {result.status}",
                            evidence={"delivery_id": delivery_id, "status": result.status})
            moment = finished + timedelta(minutes=2)

    def write_state(self) -> None:
        """The projections as the services would have left them, and the gauges."""
        for (plan_id, provider), p in self.pairs.items():
            self.sink.add("pair_state", (
                plan_id, provider, p.definitive_count, p.failures_since_success,
                as_json(p.failed_status_codes), stored(p.last_failure_at),
                stored(p.last_success_at), p.retry_after_s, p.latest_delivery_id,
                p.latest_status, p.latest_ack_id, p.latest_ack_state, p.latest_ack_by,
                p.accepted_by, p.ack_pending, stored(p.updated_at)))
        for plan_id, plan in self.plans.items():
            self.sink.add("plan_state", (plan_id, plan.alert_level, plan.open,
                                         as_json(plan.unresolved)))
        self.sink.gauge("ack_pending", sum(p.ack_pending for p in self.pairs.values()))
        self.sink.gauge("open_escalations", sum(p.open for p in self.plans.values()))
        self.sink.gauge("open_critical_escalations", sum(
            p.open and p.alert_level == "critical" for p in self.plans.values()))
