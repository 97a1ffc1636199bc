"""A self-contained demo story, recorded through the real services and worker.

The demo's early deliveries go through a flaky stand-in for the outbox (target
``demo://flaky-outbox``), so the data shows failures, retries, a 429 and a recovery.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from store.clock import fixed_clock
from store.models import RecoveryItem
from store.services.acknowledgements import acknowledge
from store.services.context import StoreContext
from store.services.escalation import build_plan
from store.services.recovery import import_recovery_items
from store.services.reports import create_schedule_run
from store.services.schedules import add_schedule
from store.services.send_state import recovery_item_count
from workflows.connectors.base import Connector, OutboundMessage, Outcome
from workflows.connectors.registry import ConnectorRegistry
from workflows.delivery import deliver_escalation, deliver_report
from workflows.worker import run_retry_worker


class FlakyDemoConnector(Connector):
    kind = "demo"

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.name = "outbox"

    @property
    def timeout_s(self) -> float:
        return 5.0

    def target(self) -> str:
        return "demo://flaky-outbox"

    def send(self, message: OutboundMessage) -> Outcome:
        return self.outcome


ITEMS = [  # (id, connector, category, age in minutes, state, failures)
    ("rec-1042", "payments-api", "rollback", 20, "open", 0),
    ("rec-1043", "checkout-web", "config-revert", 45, "open", 1),
    ("rec-1038", "ledger-db", "data-restore", 330, "open", 3),
    ("rec-1039", "auth-gateway", "failover", 410, "reopened", 2),
    ("rec-1031", "search-index", "rollback", 540, "escalated", 4),
    ("rec-1027", "inventory-svc", "rollback", 1560, "resolved", 1),
    ("rec-1029", "payments-api", "data-restore", 1800, "mitigated", 0),
    ("rec-1021", "notifications", "config-revert", 3000, "deferred", 0),
    ("rec-1044", "ledger-db", "rollback", 95, "open", 0),
    ("rec-1018", "checkout-web", "rollback", 4300, "resolved", 2),
]


def seed_demo_data(ctx: StoreContext, registry: ConnectorRegistry, *,
                   only_if_empty: bool = False) -> dict[str, Any]:
    existing = recovery_item_count(ctx)
    if only_if_empty and existing:
        return {"seeded": 0}
    now = ctx.clock()

    def at(minutes_ago: float) -> StoreContext:
        return replace(ctx, clock=fixed_clock(now - timedelta(minutes=minutes_ago)))

    def opened(minutes: int) -> datetime:
        return now - timedelta(minutes=minutes)

    items = [RecoveryItem(recovery_id=rid, connector=conn, category=cat, opened_at=opened(age),
                          closure_state=state, failure_count=fails,
                          drill_id="drill-2026-11", playbook_id=f"pb-{cat}")
             for rid, conn, cat, age, state, fails in ITEMS]
    import_recovery_items(at(600), items)
    flaky_503 = FlakyDemoConnector(Outcome(status="failed", status_code=503, latency_ms=812,
                                           error="server_error: HTTP 503"))
    flaky_429 = FlakyDemoConnector(Outcome(status="failed", status_code=429, latency_ms=95,
                                           error="rate_limited: HTTP 429", retry_after_s=900))
    try:
        registry.override("outbox", flaky_503)
        first = build_plan(at(360))
        deliver_escalation(at(359), registry, first.plan_id)
        acknowledge(at(330), first.plan_id, "outbox", "acknowledged", "INC-4812")
        run_retry_worker(at(300), registry)
        run_retry_worker(at(290), registry, live=True)
        registry.override("outbox", None)
        morning, _, _ = create_schedule_run(at(240))
        deliver_report(at(239), registry, morning.run_id)
        run_retry_worker(at(180), registry, live=True)
        registry.override("outbox", flaky_429)
        second = build_plan(at(120))
        deliver_escalation(at(119), registry, second.plan_id)
        run_retry_worker(at(100), registry, live=True)
        acknowledge(at(60), second.plan_id, "outbox", "deferred", "INC-4820")
    finally:
        registry.override("outbox", None)
    third = build_plan(at(30))
    deliver_escalation(at(29), registry, third.plan_id)
    acknowledge(at(25), third.plan_id, "outbox", "accepted", "INC-4825")
    run_retry_worker(at(20), registry)
    latest, _, _ = create_schedule_run(at(10))
    # Schedules last and at "now", so a scheduler starting on the demo owes no catch-up.
    add_schedule(ctx, name="exec-morning", cron="0 8 * * 1-5", timezone="Europe/Berlin")
    add_schedule(ctx, name="retry-sweep", every="15m", kind="retry-worker")
    return {"seeded": 1, "recovery_items": len(items), "plans": 3, "schedule_runs": 2,
            "schedules": 2, "latest_plan": third.plan_id, "latest_schedule_run": latest.run_id}
