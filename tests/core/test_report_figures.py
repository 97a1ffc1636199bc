"""Every executive report figure, recomputed from the raw tables with the test's own SQL.

A seeded random history (recovery items over days, escalation deliveries with every outcome,
executive and drill deliveries that must not count, sends left in flight) is made with the
real services; each report built over it must say exactly what plain SQL over
``recovery_items`` and ``deliveries`` says. The README section "What each report figure
counts" states the rules checked here.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from contextlib import closing, suppress
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from store.digest import sha256_of
from store.errors import Conflict
from store.models import RecoveryItem
from store.services.deliveries import begin_delivery
from store.services.escalation import build_plan
from store.services.recovery import import_recovery_items
from store.services.reports import create_schedule_run
from store.services.schedules import add_schedule
from store.services.send_state import next_escalation_attempt
from tests.core.helpers import item
from tests.loopback import LoopbackHTTP
from workflows.delivery import deliver_escalation, deliver_report
from workflows.provider_drill import send_drill

SLO = 180  # not the default 240: the report must read the SLO from the config
SEED = 20261127
CATEGORIES = ("rollback", "restore", "failover", "schema-migration", "cache-flush")
CONNECTORS = ("auth-gateway", "billing", "checkout-web", "ledger-db", "payments-api",
              "search")
STATES = ("open",) * 5 + ("reopened", "escalated", "deferred", "resolved", "mitigated")
OPEN = ("open", "reopened", "escalated")
CONFIG = f"""
[providers.ops-webhook]
kind = "webhook"
url_env = "CAVRA_TEST_HOOK_URL"
timeout_s = 0.3

[providers.ops2]
kind = "webhook"
url_env = "CAVRA_TEST_HOOK_URL"
timeout_s = 0.3

[providers.chat]
kind = "outbox"
path = "chat.jsonl"

[providers.exec-out]
kind = "outbox"
path = "exec.jsonl"
audience = ["executive"]

[routing]
critical = ["ops-webhook", "ops2"]
warning = ["ops-webhook", "chat"]
fallback = "outbox"

[escalation]
slo_minutes = {SLO}
"""
ANSWERS = ((200, {}, 0.0),) * 6 + ((500, {}, 0.0), (503, {}, 0.0), (400, {}, 0.0),
                                   (429, {"Retry-After": "120"}, 0.0))


# --- the test's own reading of the tables (no code under test) -----------------------------

def stored(moment: datetime) -> str:
    """How SQLAlchemy writes a UTC datetime into SQLite."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def hours(minutes: int) -> str:
    hours_, rest = divmod(minutes, 60)
    return f"{minutes} min" if minutes < 60 else f"{hours_} h" + (f" {rest} min" if rest else "")


OPEN_ITEMS = """
WITH aged AS (
    SELECT category, connector,
           CAST(ROUND((julianday(:end) - julianday(opened_at)) * 86400) AS INTEGER) AS age_s
    FROM recovery_items
    WHERE closure_state IN ('open', 'reopened', 'escalated') AND opened_at < :end),
per_connector AS (
    SELECT category, connector, COUNT(*) AS open_n, SUM(age_s / 60 > :slo) AS past_n,
           MAX(age_s) AS oldest_s
    FROM aged GROUP BY category, connector),
per_area AS (
    SELECT category, SUM(open_n) AS open_n, SUM(past_n) AS past_n, MAX(oldest_s) AS oldest_s
    FROM per_connector GROUP BY category),
owners AS (
    SELECT c.category, c.connector, ROW_NUMBER() OVER (
        PARTITION BY c.category
        ORDER BY CASE WHEN a.past_n > 0 THEN c.past_n ELSE c.open_n END DESC, c.connector
    ) AS rank
    FROM per_connector c JOIN per_area a ON a.category = c.category)
SELECT a.category, a.open_n, a.past_n, a.oldest_s / 60, o.connector
FROM per_area a JOIN owners o ON o.category = a.category AND o.rank = 1
ORDER BY a.past_n = 0, a.past_n DESC, a.open_n DESC, a.category
"""


def expected_body(db: Path, end: datetime, slo: int) -> dict[str, Any]:
    start = end - timedelta(hours=24)
    with closing(sqlite3.connect(db)) as conn:
        areas = conn.execute(OPEN_ITEMS, {"end": stored(end), "slo": slo}).fetchall()
        sends = conn.execute(
            "SELECT provider, status, COUNT(*) FROM deliveries WHERE kind = 'escalation' "
            "AND created_at >= ? AND created_at < ? GROUP BY provider, status",
            (stored(start), stored(end))).fetchall()
        last_day = (end - timedelta(microseconds=1)).date()
        days = [(last_day - timedelta(days=n)).isoformat() for n in range(6, -1, -1)]
        first = datetime.combine(last_day - timedelta(days=6), time(), UTC)
        opened = {day: (n, closed) for day, n, closed in conn.execute(
            "SELECT date(opened_at), COUNT(*), SUM(closure_state IN ('resolved', 'mitigated')) "
            "FROM recovery_items WHERE opened_at >= ? AND opened_at < ? "
            "GROUP BY date(opened_at)", (stored(first), stored(end)))}
    risks = []
    for area, open_n, past_n, oldest, owner in areas:
        things = plural(open_n, f"open {area} recovery", f"open {area} recoveries")
        text = (f"{things} past SLO" if past_n == open_n else
                f"{things}, {past_n} past SLO" if past_n else f"{things} within SLO")
        risks.append({"area": area, "severity": "critical" if past_n else "warning",
                      "risk": text, "count": past_n or open_n, "open": open_n,
                      "past_slo": past_n, "within_slo": open_n - past_n,
                      "oldest_minutes": oldest, "owner": owner})
    summary: dict[str, dict[str, int]] = {}
    for provider, status, count in sends:
        summary.setdefault(provider, {s: 0 for s in ("delivered", "failed", "unknown",
                                                     "in_flight")})[status] = count
    providers = [{"provider": p, **c, "total": sum(c.values())} for p, c in sorted(summary.items())]
    open_total = sum(r["open"] for r in risks)
    past_total = sum(r["past_slo"] for r in risks)
    areas_past = sum(1 for r in risks if r["past_slo"])
    delivered = sum(p["delivered"] for p in providers)
    failed = sum(p["failed"] + p["unknown"] for p in providers)
    if not open_total:
        backlog = "No recovery was open at the window's end"
    else:
        backlog = f"{plural(open_total, 'recovery', 'recoveries')} open at the window's end, " + (
            f"{past_total} past the {hours(slo)} SLO in {plural(areas_past, 'area')}"
            if past_total else f"all within the {hours(slo)} SLO")
    impact = (f"{backlog}; {plural(delivered, 'escalation notification')} delivered, "
              f"{failed} failed or unconfirmed in the window.")
    actions = []
    critical = [r for r in risks if r["past_slo"]]
    if critical:
        owners = sorted({r["owner"] for r in critical})
        more = f" and {len(owners) - 5} more" if len(owners) > 5 else ""
        actions.append(f"Page the risk owners ({', '.join(owners[:5])}{more}) about the "
                       f"{plural(past_total, 'recovery', 'recoveries')} past SLO and review "
                       "their recovery playbooks")
    if failed:
        actions.append(f"Review the {plural(failed, 'failed or unconfirmed notification')} "
                       "and run the retry worker")
    if open_total and not critical:
        actions.append(f"Keep release owners on the "
                       f"{plural(open_total, 'open recovery', 'open recoveries')} until closure")
    return {
        "status": "critical" if past_total else "at_risk" if open_total or failed else "on_track",
        "business_impact": impact,
        "totals": {"open": open_total, "past_slo": past_total,
                   "within_slo": open_total - past_total, "areas": len(risks),
                   "areas_past_slo": areas_past, "delivered": delivered,
                   "failed_or_unconfirmed": failed,
                   "in_flight": sum(p["in_flight"] for p in providers)},
        "slo_minutes": slo,
        "key_risks": risks[:10],
        "provider_summary": providers,
        "closure_trend": [{"day": d, "opened": opened.get(d, (0, 0))[0],
                           "closed": opened.get(d, (0, 0))[1]} for d in days],
        "recommended_actions": actions or ["No action needed: recovery loop healthy"],
        "timezone": "UTC",
    }


# --- the seeded history, made with the real services --------------------------------------

@pytest.fixture
def runtime(make_runtime: Any, write_config: Any, http_server: LoopbackHTTP,
            monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url())
    return make_runtime(write_config(CONFIG))


def _items(rng: random.Random, now: datetime, serial: Iterator[int]) -> list[RecoveryItem]:
    return [RecoveryItem(
        recovery_id=f"rec-{next(serial):04d}", connector=rng.choice(CONNECTORS),
        category=rng.choice(CATEGORIES), closure_state=rng.choice(STATES),
        opened_at=now - timedelta(minutes=rng.randint(0, 900), seconds=rng.randint(0, 59)),
        failure_count=rng.randint(0, 4)) for _ in range(rng.randint(1, 2))]


def _deliver(runtime: Any, http_server: LoopbackHTTP, rng: random.Random, plan_id: str,
             providers: list[str]) -> None:
    chosen = rng.sample(providers, rng.randint(1, len(providers)))
    http_server.script.clear()
    for _ in chosen:
        status, headers, _ = rng.choice(ANSWERS)
        http_server.answer(status, headers, 0.5 if rng.random() < 0.02 else 0.0)  # → unknown
    with suppress(Conflict):
        deliver_escalation(runtime.ctx, runtime.registry, plan_id, chosen)


def seed_history(runtime: Any, http_server: LoopbackHTTP, clock: Any) -> list[RecoveryItem]:
    rng = random.Random(SEED)
    serial = iter(range(1, 100_000))
    clock.advance(days=-8)
    known: list[RecoveryItem] = []
    for step in range(190):
        clock.advance(minutes=rng.randint(30, 70))
        batch = _items(rng, clock.now, serial)
        if known and rng.random() < 0.3:  # an item's closure state moves on
            moved = rng.choice(known)
            batch.append(moved.model_copy(update={"closure_state": rng.choice(STATES)}))
        # Canary recoveries close within 90 min: that area stays within SLO.
        batch += [i.model_copy(update={"closure_state": "resolved"}) for i in known
                  if i.category == "canary" and clock.now - i.opened_at > timedelta(minutes=90)
                  and i.closure_state in OPEN]
        batch.append(RecoveryItem(recovery_id=f"rec-{next(serial):04d}", category="canary",
                                  connector=rng.choice(CONNECTORS), opened_at=clock.now))
        import_recovery_items(runtime.ctx, batch)
        known = [i for i in known if i.recovery_id not in {b.recovery_id for b in batch}] + batch
        plan = build_plan(runtime.ctx)
        if not plan.selected_providers:
            continue
        for _ in range(2):
            _deliver(runtime, http_server, rng, plan.plan_id, plan.selected_providers)
        if rng.random() < 0.05:  # a process died mid-send: the delivery stays in flight
            provider = rng.choice(plan.selected_providers)
            attempt = next_escalation_attempt(runtime.ctx, plan.plan_id, provider)
            with runtime.ctx.write() as session:
                begin_delivery(runtime.ctx, session, kind="escalation", provider=provider,
                               plan_id=plan.plan_id, schedule_run_id=None, attempt=attempt,
                               idempotency_key=f"cavra:{plan.plan_id}:{provider}:{attempt}",
                               target="http://127.0.0.1/***", payload={},
                               payload_sha256=sha256_of({}), timeout_s=1)
        if step % 20 == 0:  # executive and drill deliveries are not escalation notifications
            run, _, _ = create_schedule_run(runtime.ctx)
            deliver_report(runtime.ctx, runtime.registry, run.run_id, ["exec-out"])
            send_drill(runtime.ctx, runtime.registry, "chat")
    return known


def test_every_report_figure_matches_sql_over_a_random_history(
        runtime: Any, http_server: LoopbackHTTP, clock: Any, db_path: Path) -> None:
    seed_history(runtime, http_server, clock)
    now = clock.now
    # Items on the SLO boundary, at the final report's end: whole minutes decide.
    import_recovery_items(runtime.ctx, [
        item("edge-1", now, SLO, category="boundary", connector="b"),
        RecoveryItem(recovery_id="edge-2", connector="a", category="boundary",
                     opened_at=now - timedelta(minutes=SLO, seconds=59)),
        item("edge-3", now, SLO + 1, category="boundary", connector="c"),
        item("future", now, -30, category="boundary", connector="a")])  # opened after the end
    with closing(sqlite3.connect(db_path)) as conn:
        items, sends = (conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                        for t in ("recovery_items", "deliveries"))
        statuses = {s for (s,) in conn.execute("SELECT DISTINCT status FROM deliveries")}
    assert items >= 200 and sends >= 500
    assert statuses == {"delivered", "failed", "unknown", "in_flight"}

    slots = [now, now - timedelta(hours=17), now - timedelta(days=2, hours=5),
             now - timedelta(days=5)]
    reports = [create_schedule_run(runtime.ctx, scheduled_for=slot)[1] for slot in slots]
    for slot, report in zip(slots, reports, strict=True):
        assert report.body == expected_body(db_path, slot, SLO), slot
        assert report.status == report.body["status"]
    # The history exercises what the rules tell apart.
    risks = [r for report in reports for r in report.body["key_risks"]]
    assert {r["severity"] for r in risks} == {"critical", "warning"}
    assert any(0 < r["past_slo"] < r["open"] for r in risks)
    assert any(p["failed"] and p["unknown"] for r in reports
               for p in r.body["provider_summary"])
    [edge] = [r for r in reports[0].body["key_risks"] if r["area"] == "boundary"]
    assert (edge["open"], edge["past_slo"], edge["owner"]) == (3, 1, "c")


def test_a_fresh_item_does_not_make_its_category_look_past_slo(
        make_runtime: Any, write_config: Any, clock: Any, db_path: Path) -> None:
    """300 min open (past the 240-min SLO) and 10 min open, same category."""
    runtime = make_runtime(write_config(CONFIG.replace(f"slo_minutes = {SLO}",
                                                       "slo_minutes = 240")))
    import_recovery_items(runtime.ctx, [
        item("rec-old", clock.now, 300, category="rollback", connector="zeta-db"),
        item("rec-new", clock.now, 10, category="rollback", connector="alpha-api"),
        item("rec-r", clock.now, 30, category="restore", connector="alpha-api")])
    _, report, _ = create_schedule_run(runtime.ctx)
    rollback, restore = report.body["key_risks"]
    assert rollback == {
        "area": "rollback", "severity": "critical",
        "risk": "2 open rollback recoveries, 1 past SLO", "count": 1, "open": 2,
        "past_slo": 1, "within_slo": 1, "oldest_minutes": 300, "owner": "zeta-db"}
    assert restore["risk"] == "1 open restore recovery within SLO"
    assert (restore["severity"], restore["count"], restore["owner"]) == (
        "warning", 1, "alpha-api")
    assert report.body["business_impact"] == (
        "3 recoveries open at the window's end, 1 past the 4 h SLO in 1 area; "
        "0 escalation notifications delivered, 0 failed or unconfirmed in the window.")
    assert report.body["recommended_actions"] == [
        "Page the risk owners (zeta-db) about the 1 recovery past SLO and review their "
        "recovery playbooks"]
    assert report.body == expected_body(db_path, clock.now, 240)


def test_one_item_past_slo_reads_in_the_singular(make_runtime: Any, write_config: Any,
                                                 clock: Any) -> None:
    runtime = make_runtime(write_config(CONFIG))
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300, category="restore")])
    schedule = add_schedule(runtime.ctx, name="morning", cron="0 8 * * *",
                            timezone="Europe/Paris")
    _, report, _ = create_schedule_run(runtime.ctx, schedule.schedule_id,
                                       scheduled_for=clock.now)
    [risk] = report.body["key_risks"]
    assert risk["risk"] == "1 open restore recovery past SLO"
    assert report.body["timezone"] == "Europe/Paris"  # how channels show the window
