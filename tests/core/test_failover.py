"""Failover inside `cavra escalation follow-up` (issue 13, step 2) on a stepping clock and a
loopback server with a path per provider, on SQLite and PostgreSQL: a suppressed pair (a
permanent error, max attempts, an open circuit) → a dry run records the failover and sends
nothing; live sends the plan once to the provider's failover (also when two runs race), never
again; a quiet window holds it; the evidence of both deliveries shows it; the audit chain
vouches for it; a bad failover name is a one-line config error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

import workflows.failover as failover_workflow
from cavra_tui.cli import main
from store.audit import verify_chain
from store.pg_roles import append_only_problems, grant_statements
from store.services.acknowledgements import acknowledge
from store.services.audit_verify import verify_audit
from store.services.escalation import build_plan
from store.services.evidence import evidence_chain
from store.services.quiet_windows import add_quiet_window, remove_quiet_window
from store.services.recovery import import_recovery_items
from store.services.retry import build_retry_plan
from store.tables import AuditEventRow, DeliveryRow, FailoverClaimRow
from tests.core.helpers import item, race_follow_ups
from tests.loopback import LoopbackHTTP
from workflows.delivery import deliver_escalation
from workflows.follow_up import run_follow_up
from workflows.worker import run_retry_worker

pytestmark = pytest.mark.backends

PROVIDERS = """
[providers.ops-webhook]
kind = "webhook"
url_env = "CAVRA_TEST_OPS_URL"
failover = "backup"

[providers.backup]
kind = "webhook"
url_env = "CAVRA_TEST_BACKUP_URL"
"""

CONFIG = PROVIDERS + """
[routing]
critical = ["ops-webhook"]
warning = ["ops-webhook"]
"""


@pytest.fixture
def env(http_server: LoopbackHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, path in (("OPS", "/ops"), ("BACKUP", "/backup")):
        monkeypatch.setenv(f"CAVRA_TEST_{name}_URL", http_server.url(path))


def make(make_runtime: Any, write_config: Any, clock: Any, config: str = CONFIG) -> Any:
    runtime = make_runtime(write_config(config))
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])  # breached: critical
    return runtime


@pytest.fixture
def runtime(env: None, make_runtime: Any, write_config: Any, clock: Any) -> Any:
    return make(make_runtime, write_config, clock)


def paths(server: LoopbackHTTP) -> list[str]:
    return [request.path for request in server.requests]


def failed_plan(runtime: Any, server: LoopbackHTTP, status: int = 400) -> tuple[str, Any]:
    """A critical plan whose one send (to ops-webhook) failed with ``status``."""
    plan = build_plan(runtime.ctx)
    assert plan.selected_providers == ["ops-webhook"]
    server.answer(status)
    [first] = deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
    assert (first.status, first.status_code) == ("failed", status)
    assert paths(server) == ["/ops"]
    return plan.plan_id, first


def deliveries_to(runtime: Any, plan_id: str, provider: str) -> list[Any]:
    with runtime.db.read() as session:
        return list(session.execute(select(DeliveryRow).where(
            DeliveryRow.plan_id == plan_id, DeliveryRow.provider == provider)
            .order_by(DeliveryRow.created_at)).scalars())


def claims(runtime: Any) -> list[Any]:
    with runtime.db.read() as session:
        return list(session.execute(select(FailoverClaimRow)).scalars())


def test_a_permanent_error_fails_over_once_dry_run_first(
        runtime: Any, http_server: LoopbackHTTP, clock: Any, db_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    plan_id, original = failed_plan(runtime, http_server, 400)
    [decision] = build_retry_plan(runtime.ctx).decisions
    assert (decision.action, decision.reason) == ("suppress", "permanent_error: HTTP 400")

    dry = run_follow_up(runtime.ctx, runtime.registry)
    [entry] = dry.failovers
    assert (entry["plan_id"], entry["provider"], entry["target"], entry["suppressed"],
            entry["status"]) == (plan_id, "ops-webhook", "backup", "permanent_error: HTTP 400",
                                 "would_fail_over")
    [send] = entry["sends"]
    assert send["idempotency_key"] == f"cavra:{plan_id}:backup:1"
    assert len(send["payload_sha256"]) == 64
    assert dry.summary["failover_would_fail_over"] == 1
    assert paths(http_server) == ["/ops"]  # nothing sent, claimed or recorded
    assert deliveries_to(runtime, plan_id, "backup") == [] and claims(runtime) == []

    live = run_follow_up(runtime.ctx, runtime.registry, live=True)
    [entry] = live.failovers
    assert (entry["status"], entry["target"]) == ("failed_over", "backup")
    assert paths(http_server) == ["/ops", "/backup"]  # exactly one failover request
    [request] = [r for r in http_server.requests if r.path == "/backup"]
    assert request.idempotency_key == f"cavra:{plan_id}:backup:1"
    assert request.json()["plan_id"] == plan_id
    [backup] = deliveries_to(runtime, plan_id, "backup")
    assert (backup.kind, backup.worker_run_id, backup.attempt, backup.status) == (
        "escalation", live.run_id, 1, "delivered")
    assert entry["sends"][0]["delivery_id"] == backup.delivery_id
    [claim] = claims(runtime)
    assert (claim.plan_id, claim.provider, claim.target, claim.reason, claim.status,
            claim.run_id) == (plan_id, "ops-webhook", "backup", "permanent_error: HTTP 400",
                              "sent", live.run_id)

    # Never twice: again at once, and much later.
    assert run_follow_up(runtime.ctx, runtime.registry, live=True).failovers == []
    clock.advance(days=1)
    assert run_follow_up(runtime.ctx, runtime.registry, live=True).failovers == []
    assert paths(http_server) == ["/ops", "/backup"]
    assert len(claims(runtime)) == 1

    # The audit event of the claim names the pair, the failover provider and the reason.
    with runtime.db.read() as session:
        assert verify_chain(session).ok
        details = session.execute(select(AuditEventRow.detail).where(
            AuditEventRow.action == "escalation.follow_up.failover")).scalars().all()
    assert details == ["failover ops-webhook → backup: permanent_error: HTTP 400"]
    verdict = verify_audit(runtime.ctx, witness_paths=[])
    assert verdict.ok, verdict.lines()

    # Evidence: the failover delivery names the claim it was sent for …
    assert main(["--db", db_url, "evidence", "show", backup.delivery_id]) == 0
    chain = json.loads(capsys.readouterr().out)
    assert chain["delivery"]["worker_run_id"] == live.run_id
    assert chain["follow_up_run"]["failovers"][0]["sends"][0]["delivery_id"] == (
        backup.delivery_id)
    sent_for = chain["failover"]["sent_for"]
    assert (sent_for["provider"], sent_for["target"], sent_for["reason"],
            sent_for["run_id"]) == ("ops-webhook", "backup", "permanent_error: HTTP 400",
                                    live.run_id)
    assert chain["failover"]["pair_failed_over"] is None
    # … and the original failed delivery shows that its pair failed over.
    original_chain = evidence_chain(runtime.ctx, original.delivery_id).to_json()
    assert original_chain["failover"]["pair_failed_over"]["target"] == "backup"
    assert original_chain["failover"]["sent_for"] is None
    assert "escalation.follow_up.failover" in {e["action"] for e in
                                                original_chain["audit_events"]}


def test_two_racing_live_runs_fail_over_once(
        env: None, make_runtime: Any, write_config: Any, http_server: LoopbackHTTP,
        clock: Any, db_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(CONFIG)
    first, second = make_runtime(config), make_runtime(config)  # two engines, one database
    import_recovery_items(first.ctx, [item("rec-1", clock.now, 300)])
    plan_id, _ = failed_plan(first, http_server, 404)
    # Both decide the pair is suppressed before either claims it (PostgreSQL: inside the
    # claim's transaction, so both are open at once; SQLite serialises writers).
    name = "claim_failover" if db_backend == "postgresql" else "_fail_over"
    results = race_follow_ups(monkeypatch, failover_workflow, name, (first, second))
    assert sorted(run.failovers[0]["status"] for run in results) == [
        "claimed_elsewhere", "failed_over"]
    assert paths(http_server) == ["/ops", "/backup"]  # exactly one failover request
    assert len(deliveries_to(first, plan_id, "backup")) == 1
    [claim] = claims(first)
    winner = next(run for run in results if run.failovers[0]["status"] == "failed_over")
    assert claim.run_id == winner.run_id
    with first.db.read() as session:
        assert verify_chain(session).ok


def test_max_attempts_reached_fails_over_with_that_reason(
        runtime: Any, http_server: LoopbackHTTP, clock: Any) -> None:
    plan_id, _ = failed_plan(runtime, http_server, 500)  # 500: transient, retried
    # Retrying, not suppressed: no failover yet.
    assert run_follow_up(runtime.ctx, runtime.registry, live=True).failovers == []
    acknowledge(runtime.ctx, plan_id, "ops-webhook", "accepted")  # live retries need one
    for wait_minutes in (16, 31):  # past each backoff (15, then 30 minutes)
        http_server.answer(500)
        clock.advance(minutes=wait_minutes)
        run_retry_worker(runtime.ctx, runtime.registry, live=True)
        if wait_minutes == 16:  # two failures of three: still retrying
            assert run_follow_up(runtime.ctx, runtime.registry, live=True).failovers == []
    [decision] = build_retry_plan(runtime.ctx).decisions
    assert (decision.action, decision.reason, decision.retry_count) == (
        "suppress", "max_attempts_reached", 3)
    assert paths(http_server) == ["/ops"] * 3

    live = run_follow_up(runtime.ctx, runtime.registry, live=True)
    [entry] = live.failovers
    assert (entry["status"], entry["suppressed"], entry["target"]) == (
        "failed_over", "max_attempts_reached", "backup")
    assert paths(http_server) == ["/ops"] * 3 + ["/backup"]
    [claim] = claims(runtime)
    assert claim.reason == "max_attempts_reached"
    [backup] = deliveries_to(runtime, plan_id, "backup")
    chain = evidence_chain(runtime.ctx, backup.delivery_id).to_json()
    assert chain["failover"]["sent_for"]["reason"] == "max_attempts_reached"
    assert run_follow_up(runtime.ctx, runtime.registry, live=True).failovers == []
    assert paths(http_server) == ["/ops"] * 3 + ["/backup"]


def test_an_open_circuit_fails_over_and_the_default_target_is_the_fallback(
        env: None, make_runtime: Any, write_config: Any, http_server: LoopbackHTTP,
        clock: Any) -> None:
    config = CONFIG.replace('failover = "backup"\n', "") + (
        '\n[circuit]\nfailure_threshold = 1\n').replace("[routing]", "[routing]")
    config = config.replace('warning = ["ops-webhook"]\n',
                            'warning = ["ops-webhook"]\nfallback = "backup"\n')
    runtime = make(make_runtime, write_config, clock, config)
    failed_plan(runtime, http_server, 503)  # one failure opens the circuit
    [entry] = run_follow_up(runtime.ctx, runtime.registry, live=True).failovers
    assert (entry["status"], entry["suppressed"], entry["target"]) == (
        "failed_over", "provider_circuit_open", "backup")
    assert paths(http_server) == ["/ops", "/backup"]


def test_a_target_already_sent_the_plan_is_claimed_without_sending(
        env: None, make_runtime: Any, write_config: Any, http_server: LoopbackHTTP,
        clock: Any) -> None:
    config = CONFIG.replace('critical = ["ops-webhook"]', 'critical = ["ops-webhook", "backup"]')
    runtime = make(make_runtime, write_config, clock, config)
    plan = build_plan(runtime.ctx)
    assert plan.selected_providers == ["ops-webhook", "backup"]
    http_server.answer(400)
    deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
    assert sorted(paths(http_server)) == ["/backup", "/ops"]
    dry = run_follow_up(runtime.ctx, runtime.registry)
    assert [e["status"] for e in dry.failovers] == ["already_sent"]
    assert claims(runtime) == []
    live = run_follow_up(runtime.ctx, runtime.registry, live=True)
    assert [(e["status"], e["sends"]) for e in live.failovers] == [("already_sent", [])]
    assert [c.status for c in claims(runtime)] == ["already_sent"]
    assert run_follow_up(runtime.ctx, runtime.registry, live=True).failovers == []
    assert len(http_server.requests) == 2  # never sent twice


def test_a_disabled_target_or_none_is_skipped_and_not_claimed(
        env: None, make_runtime: Any, write_config: Any, http_server: LoopbackHTTP,
        clock: Any) -> None:
    config = CONFIG.replace('url_env = "CAVRA_TEST_BACKUP_URL"\n',
                            'url_env = "CAVRA_TEST_BACKUP_URL"\nenabled = false\n')
    runtime = make(make_runtime, write_config, clock, config)
    failed_plan(runtime, http_server, 400)
    run = run_follow_up(runtime.ctx, runtime.registry, live=True)
    assert (run.failovers, run.summary["failover_skipped"]) == ([], 1)
    assert paths(http_server) == ["/ops"] and claims(runtime) == []


def test_a_quiet_window_on_the_target_holds_the_failover(
        runtime: Any, http_server: LoopbackHTTP, clock: Any) -> None:
    failed_plan(runtime, http_server, 400)
    window = add_quiet_window(runtime.ctx, name="backup-maintenance", providers=["backup"],
                              starts="now", ends="+1h",
                              severities=["warning", "critical"])
    [entry] = run_follow_up(runtime.ctx, runtime.registry, live=True).failovers
    assert entry["status"] == "held" and "backup-maintenance" in entry["reason"]
    assert paths(http_server) == ["/ops"] and claims(runtime) == []
    remove_quiet_window(runtime.ctx, window.window_id)
    [entry] = run_follow_up(runtime.ctx, runtime.registry, live=True).failovers
    assert entry["status"] == "failed_over"
    assert paths(http_server) == ["/ops", "/backup"]


def test_the_claims_are_append_only_and_granted_as_evidence(
        runtime: Any, http_server: LoopbackHTTP) -> None:
    plan_id, _ = failed_plan(runtime, http_server, 400)
    run_follow_up(runtime.ctx, runtime.registry, live=True)
    assert append_only_problems(runtime.db) == []
    for statement in (f"UPDATE failover_claims SET target = 'x' WHERE plan_id = '{plan_id}'",
                      "DELETE FROM failover_claims"):
        with pytest.raises(DBAPIError, match="append-only"), runtime.db.write() as session:
            session.execute(text(statement))
    with runtime.db.read() as session:
        assert session.execute(select(func.count()).select_from(FailoverClaimRow)
                               ).scalar_one() == 1
    sql = " ".join(grant_statements(["ops_a"], ["failover_claims"]))
    assert 'GRANT SELECT, INSERT ON TABLE "failover_claims" TO "ops_a"' in sql
    assert "UPDATE" not in sql and "DELETE" not in sql


BAD_CONFIGS = [
    (CONFIG.replace('failover = "backup"', 'failover = "nobody"'),
     "providers.ops-webhook.failover: unknown provider 'nobody'"),
    (CONFIG.replace('failover = "backup"', 'failover = "ops-webhook"'),
     "providers.ops-webhook.failover: a provider cannot fail over to itself"),
]


@pytest.mark.parametrize(("text_", "expected"), BAD_CONFIGS, ids=["unknown", "itself"])
def test_bad_failover_config_is_one_line_exit_2(
        db_url: str, write_config: Any, capsys: pytest.CaptureFixture[str], text_: str,
        expected: str) -> None:
    code = main(["--db", db_url, "--config", str(write_config(text_)), "escalation",
                 "follow-up"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and expected in err, err
    assert err.startswith("cavra: error: config: ")
