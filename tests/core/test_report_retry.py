"""The executive delivery retry worker (SPEC §5.7), against a loopback webhook: dry-run sends
nothing, live delivers once under the pair's idempotency key, a second run sends nothing,
every execution is bound and shown by `evidence show`, metrics equal the rows, and the
`report-retry` schedule kind fires under the leader once per slot."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cavra_tui.cli import main
from scheduler.jobs import JobHost, fire_schedule, register_host, unregister_host
from scheduler.lease import LeaderLease
from scheduler.schedules import add_schedule
from store.services.evidence import evidence_chain
from store.services.metrics import read_metrics
from store.services.recovery import import_recovery_items
from store.services.reports import create_schedule_run
from tests.core.helpers import EXEC_HOOK, WEBHOOK_CONFIG, item
from tests.loopback import LoopbackHTTP
from workflows.delivery import deliver_report
from workflows.report_retry import build_report_retry_plan, run_report_retry


@pytest.fixture
def failed_run(make_runtime: Any, write_config: Any, http_server: LoopbackHTTP, clock: Any,
               monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """A runtime and a schedule run whose executive delivery failed, past the backoff."""
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url())
    monkeypatch.setenv("CAVRA_TEST_HOOK_SECRET", "s")
    runtime = make_runtime(write_config(WEBHOOK_CONFIG + EXEC_HOOK))
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])
    run, _, _ = create_schedule_run(runtime.ctx)
    http_server.answer(503)
    [failed] = deliver_report(runtime.ctx, runtime.registry, run.run_id, ["exec-hook"])
    assert failed.status == "failed"
    clock.advance(minutes=16)
    http_server.requests.clear()
    return runtime, run.run_id


def test_the_plan_is_stored_and_names_the_pair(failed_run: tuple[Any, str]) -> None:
    runtime, run_id = failed_run
    plan = build_report_retry_plan(runtime.ctx)
    [decision] = plan.decisions
    assert plan.subject == "executive"
    assert (decision.plan_id, decision.provider, decision.action, decision.attempt) == (
        run_id, "exec-hook", "retry", 2)
    assert decision.idempotency_key == f"cavra:{run_id}:exec-hook:2"


def test_dry_run_sends_nothing_live_delivers_once_then_nothing(
        failed_run: tuple[Any, str], http_server: LoopbackHTTP, db_path: Path) -> None:
    runtime, run_id = failed_run
    dry = run_report_retry(runtime.ctx, runtime.registry)
    assert [(e.status, e.reason) for e in dry.executions] == [("dry_run", "would_deliver")]
    assert http_server.requests == []

    live = run_report_retry(runtime.ctx, runtime.registry, live=True)
    [execution] = live.executions
    assert (execution.status, execution.plan_id, execution.provider) == (
        "delivered", run_id, "exec-hook")
    [request] = http_server.requests
    assert request.idempotency_key == f"cavra:{run_id}:exec-hook:2"
    assert request.json()["run_id"] == run_id

    again = run_report_retry(runtime.ctx, runtime.registry, live=True)
    assert again.executions == [] and len(http_server.requests) == 1

    chain = evidence_chain(runtime.ctx, execution.execution_id).to_json()  # what the CLI prints
    assert chain["worker_run"]["run_id"] == live.run.run_id
    assert chain["worker_run"]["subject"] == "executive"
    assert chain["delivery"]["worker_run_id"] == live.run.run_id
    assert chain["delivery"]["run_id"] == run_id
    assert chain["retry_decision"]["idempotency_key"] == execution.idempotency_key

    metrics = read_metrics(runtime.ctx, runtime.ctx.clock())
    with sqlite3.connect(db_path) as db:  # the numbers, counted independently
        runs = dict(db.execute("SELECT mode, COUNT(*) FROM worker_runs WHERE subject = "
                               "'executive' GROUP BY mode").fetchall())
        outcomes = dict(db.execute(
            "SELECT e.status, COUNT(*) FROM execution_records e JOIN worker_runs w "
            "ON w.run_id = e.run_id WHERE w.subject = 'executive' GROUP BY e.status").fetchall())
        escalation_runs = db.execute("SELECT COUNT(*) FROM worker_runs WHERE subject IS NULL"
                                     ).fetchone()[0]
    assert metrics.report_retry_runs == {"dry_run": runs["dry_run"], "live": runs["live"]}
    assert {k: v for k, v in metrics.report_retry_executions.items() if v} == outcomes
    assert sum(metrics.retry_worker_runs.values()) == escalation_runs == 0


def test_cli_commands_and_bad_input(failed_run: tuple[Any, str], db_path: Path,
                                    write_config: Any, http_server: LoopbackHTTP,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--db", f"sqlite:///{db_path}", "--config",
            str(write_config(WEBHOOK_CONFIG + EXEC_HOOK))]
    assert main([*argv, "report", "retry-plan"]) == 0
    assert "retry" in capsys.readouterr().out
    assert main([*argv, "report", "retry", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "dry_run"
    try:
        code = main([*argv, "report", "retry", "--max", "0"])
    except SystemExit as exit_:  # argparse refuses before a handler runs
        code = int(exit_.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--max" in err
    assert main([*argv, "audit", "verify"]) == 0
    assert http_server.requests == []


def test_the_schedule_kind_fires_once_per_slot_under_the_leader(
        failed_run: tuple[Any, str], http_server: LoopbackHTTP, clock: Any) -> None:
    runtime, _ = failed_run
    schedule = add_schedule(runtime.ctx, name="exec-retries", every="10m",
                            kind="report-retry", live=True)
    lease = LeaderLease(runtime.ctx, "leader-1", 60, clock)
    register_host(JobHost(runtime.ctx, runtime.registry, lease))
    try:
        clock.advance(minutes=10)
        assert lease.renew()
        fire_schedule("leader-1", schedule.schedule_id)
        fire_schedule("leader-1", schedule.schedule_id)  # the same slot again
        assert len(http_server.requests) == 1
        clock.advance(minutes=10)
        assert lease.renew()
        fire_schedule("leader-1", schedule.schedule_id)  # next slot: nothing left to send
    finally:
        unregister_host("leader-1")
    assert len(http_server.requests) == 1
    with runtime.db.read() as session:
        from store.tables import WorkerRunRow

        runs = session.query(WorkerRunRow).filter_by(schedule_id=schedule.schedule_id).all()
    assert [(r.subject, r.mode, r.trigger) for r in runs] == [("executive", "live", "schedule")] * 2
    assert all(timedelta(0) <= clock.now - r.started_at.replace(tzinfo=clock.now.tzinfo)
               for r in runs)


def test_the_oldest_executive_failure_is_resent_first(
        failed_run: tuple[Any, str], http_server: LoopbackHTTP, clock: Any) -> None:
    """Oldest *latest* failure first, not the plan's order (which follows the first
    delivery): run A failed first, but failed again after run B did."""
    runtime, first = failed_run  # A: failed at t0, due now (t0 + 16 min)
    newer, _, _ = create_schedule_run(runtime.ctx)
    http_server.answer(503)
    deliver_report(runtime.ctx, runtime.registry, newer.run_id, ["exec-hook"])  # B fails
    clock.advance(minutes=1)
    http_server.answer(503)
    again = run_report_retry(runtime.ctx, runtime.registry, live=True, max_deliveries=1)
    assert [(e.plan_id, e.status) for e in again.executions] == [(first, "failed")]
    clock.advance(minutes=60)  # both due again; B's failure is now the older one
    http_server.requests.clear()
    result = run_report_retry(runtime.ctx, runtime.registry, live=True, max_deliveries=1)
    assert [e.plan_id for e in result.executions] == [newer.run_id]
