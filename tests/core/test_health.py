"""Retry health alerts appear with their condition and clear when it is gone (SPEC §5.7)."""

from __future__ import annotations

from typing import Any

import pytest

from store.services.acknowledgements import acknowledge
from store.services.escalation import build_plan
from store.services.health import read_health
from store.services.reports import create_schedule_run
from store.tables import ScheduleRow
from tests.core.helpers import hooked_runtime
from tests.loopback import LoopbackHTTP
from workflows.delivery import deliver_escalation, deliver_report
from workflows.worker import run_retry_worker


def _codes(runtime: Any) -> set[str]:
    return {alert.code for alert in read_health(runtime.ctx).alerts}


@pytest.fixture
def runtime(make_runtime: Any, write_config: Any, http_server: LoopbackHTTP, clock: Any,
            monkeypatch: pytest.MonkeyPatch) -> Any:
    runtime = hooked_runtime(make_runtime, write_config, http_server.url(), clock, monkeypatch)
    return runtime


def test_acknowledgement_gap_and_failed_executions_come_and_go(
        runtime: Any, http_server: LoopbackHTTP, clock: Any) -> None:
    assert read_health(runtime.ctx).status == "healthy"
    plan = build_plan(runtime.ctx)
    http_server.answer(500)
    deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
    assert "acknowledgement_gap" in _codes(runtime)
    acknowledge(runtime.ctx, plan.plan_id, "ops-webhook", "accepted")
    assert "acknowledgement_gap" not in _codes(runtime)
    clock.advance(minutes=20)
    http_server.answer(500)
    run_retry_worker(runtime.ctx, runtime.registry, live=True)
    report = read_health(runtime.ctx)
    assert report.status == "critical" and "failed_executions" in _codes(runtime)
    clock.advance(hours=25)  # out of the 24 h lookback
    assert "failed_executions" not in _codes(runtime)


def test_worker_freshness_and_disabled_schedule(runtime: Any, clock: Any) -> None:
    with runtime.db.write() as session:
        session.add(ScheduleRow(
            schedule_id="sch-retry", name="retries", kind="retry-worker", cron=None,
            interval_s=600, timezone="UTC", providers=[], enabled=True, live=False,
            misfire_grace_s=60, removed=False, created_at=clock.now, created_by="t",
            updated_at=clock.now))
    assert "worker_missed" in _codes(runtime)  # never ran
    run_retry_worker(runtime.ctx, runtime.registry)
    assert "worker_missed" not in _codes(runtime)
    clock.advance(minutes=21)  # more than twice the 10 min interval
    assert "worker_missed" in _codes(runtime)
    with runtime.db.write() as session:
        schedule = session.get(ScheduleRow, "sch-retry")
        assert schedule is not None
        schedule.enabled = False
    codes = _codes(runtime)
    assert "retry_schedule_disabled" in codes and "worker_missed" not in codes


def test_executive_delivery_retry_plan_has_no_ack_gate(runtime: Any, http_server: LoopbackHTTP,
                                                       clock: Any) -> None:
    run, _, _ = create_schedule_run(runtime.ctx)
    http_server.answer(503)
    [failed] = deliver_report(runtime.ctx, runtime.registry, run.run_id, ["exec-hook"])
    assert failed.status == "failed"
    [decision] = read_health(runtime.ctx).executive_retry
    assert (decision.plan_id, decision.provider, decision.action) == (run.run_id, "exec-hook",
                                                                      "wait")
    clock.advance(minutes=16)
    [decision] = read_health(runtime.ctx).executive_retry
    assert decision.action == "retry"
    [ok] = deliver_report(runtime.ctx, runtime.registry, run.run_id, ["exec-hook"])
    assert ok.status == "delivered" and ok.attempt == 2
    assert read_health(runtime.ctx).executive_retry == []
    # Delivering the run again skips the provider that already succeeded.
    assert deliver_report(runtime.ctx, runtime.registry, run.run_id, ["exec-hook"]) == []


def test_a_second_sender_with_a_stale_view_does_not_resend(runtime: Any,
                                                           http_server: LoopbackHTTP) -> None:
    """Two schedulers racing on one run: the check inside the write lock stops the second."""
    from store.errors import AlreadyDelivered
    from store.policy import authorize
    from workflows.delivery import send_one

    run, _, _ = create_schedule_run(runtime.ctx)
    [first] = deliver_report(runtime.ctx, runtime.registry, run.run_id, ["exec-hook"])
    sent = len(http_server.requests)
    with pytest.raises(AlreadyDelivered):
        send_one(runtime.ctx, runtime.registry, kind="executive", provider="exec-hook",
                 plan_id=None, schedule_run_id=run.run_id, attempt=2, key="k", message={},
                 action="report.deliver", decision=authorize(runtime.identity, "report.deliver"))
    assert len(http_server.requests) == sent and first.status == "delivered"


def test_metrics_cli_shows_the_scheduler(runtime: Any, capsys: pytest.CaptureFixture[str],
                                         db_url: str, write_config: Any) -> None:
    import json

    from cavra_tui.cli import main

    with runtime.db.write() as session:
        session.add(ScheduleRow(
            schedule_id="sch-exec", name="exec", kind="report", cron="0 8 * * *",
            interval_s=None, timezone="Europe/Berlin", providers=["exec-hook"], enabled=True,
            live=False, misfire_grace_s=60, removed=False, created_at=runtime.ctx.clock(),
            created_by="t", updated_at=runtime.ctx.clock()))
    assert main(["--db", db_url, "metrics", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["scheduler"]["leader"] is None
    assert [s["name"] for s in shown["scheduler"]["schedules"]] == ["exec"]
    assert {"retry_worker_runs", "retry_executions", "executive_deliveries", "failed_deliveries",
            "acknowledgement_pending", "alert_level"} <= set(shown)
