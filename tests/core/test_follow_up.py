"""Escalation levels and `cavra escalation follow-up` (issue 13, step 1) on a stepping clock
and a loopback server that records every request, on SQLite and PostgreSQL: level 1 sent, no
acknowledgement, the timeout passes → a dry run records level 2 and sends nothing; live sends
level 2 once (also when two runs race); an acknowledgement stops it; the last level and the
flat form never escalate; the run is evidence the audit chain vouches for."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

import workflows.follow_up as follow_up_workflow
from cavra_tui.cli import main
from scheduler.jobs import JobHost, fire_schedule, register_host, unregister_host
from scheduler.lease import LeaderLease
from scheduler.schedules import add_schedule
from store.audit import verify_chain
from store.errors import PolicyDenied
from store.pg_roles import append_only_problems, grant_statements
from store.services.acknowledgements import acknowledge
from store.services.audit_verify import verify_audit
from store.services.escalation import build_plan
from store.services.evidence import evidence_chain
from store.services.follow_up import list_plans_with_levels, plan_claims
from store.services.records import read_record
from store.services.recovery import import_recovery_items
from store.tables import AuditEventRow, DeliveryRow, FollowUpClaimRow, FollowUpRunRow
from tests.core.helpers import item, race_follow_ups
from tests.loopback import LoopbackHTTP
from workflows.delivery import deliver_escalation
from workflows.follow_up import run_follow_up

pytestmark = pytest.mark.backends

PROVIDERS = """
[providers.ops-webhook]
kind = "webhook"
url_env = "CAVRA_TEST_OPS_URL"

[providers.pager]
kind = "webhook"
url_env = "CAVRA_TEST_PAGER_URL"

[providers.team-slack]
kind = "webhook"
url_env = "CAVRA_TEST_SLACK_URL"
"""

LEVELS = PROVIDERS + """
[[routing.levels.critical]]
providers = ["ops-webhook"]
ack_timeout_minutes = 15

[[routing.levels.critical]]
providers = ["pager", "team-slack"]
ack_timeout_minutes = 30

[[routing.levels.warning]]
providers = ["ops-webhook"]
"""

FLAT = PROVIDERS + """
[routing]
critical = ["ops-webhook"]
warning = ["ops-webhook"]
"""

LEVEL_2 = ("/pager", "/slack")


@pytest.fixture
def env(http_server: LoopbackHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, path in (("OPS", "/ops"), ("PAGER", "/pager"), ("SLACK", "/slack")):
        monkeypatch.setenv(f"CAVRA_TEST_{name}_URL", http_server.url(path))


@pytest.fixture
def runtime(env: None, make_runtime: Any, write_config: Any, clock: Any) -> Any:
    runtime = make_runtime(write_config(LEVELS))
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])  # breached: critical
    return runtime


def paths(server: LoopbackHTTP) -> list[str]:
    return sorted(request.path for request in server.requests)


def delivered_plan(runtime: Any, server: LoopbackHTTP) -> str:
    """A critical plan delivered to level 1 (ops-webhook), nobody acknowledging it."""
    plan = build_plan(runtime.ctx)
    assert plan.alert_level == "critical" and plan.selected_providers == ["ops-webhook"]
    [first] = deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
    assert first.status == "delivered" and paths(server) == ["/ops"]
    return plan.plan_id


def count(runtime: Any, table: Any) -> int:
    with runtime.db.read() as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def level_2_deliveries(runtime: Any, plan_id: str) -> list[Any]:
    with runtime.db.read() as session:
        return list(session.execute(select(DeliveryRow).where(
            DeliveryRow.plan_id == plan_id, DeliveryRow.provider.in_(("pager", "team-slack")))
            .order_by(DeliveryRow.provider)).scalars())


def test_before_the_timeout_nothing_and_after_it_a_dry_run_records_level_2(
        runtime: Any, http_server: LoopbackHTTP, clock: Any) -> None:
    plan_id = delivered_plan(runtime, http_server)
    clock.advance(minutes=14)
    early = run_follow_up(runtime.ctx, runtime.registry)
    assert (early.summary["considered"], early.summary["wait"], early.escalations) == (1, 1, [])

    clock.advance(minutes=2)  # 16 min: level 1's 15 min passed without an acknowledgement
    dry = run_follow_up(runtime.ctx, runtime.registry)
    assert dry.mode == "dry_run" and dry.summary["escalate"] == 1
    [entry] = dry.escalations
    assert (entry["plan_id"], entry["from_level"], entry["to_level"], entry["status"]) == (
        plan_id, 1, 2, "would_escalate")
    assert entry["providers"] == ["pager", "team-slack"]
    assert [s["idempotency_key"] for s in entry["sends"]] == [
        f"cavra:{plan_id}:pager:1", f"cavra:{plan_id}:team-slack:1"]
    assert all(len(s["payload_sha256"]) == 64 for s in entry["sends"])
    # Nothing was sent, claimed or recorded as a delivery: the server saw level 1 only.
    assert paths(http_server) == ["/ops"]
    assert level_2_deliveries(runtime, plan_id) == []
    assert count(runtime, FollowUpClaimRow) == 0
    # The run is a record: opened by ID (the console's detail view), vouched for.
    stored = read_record(runtime.ctx, dry.run_id)
    assert stored is not None and stored["mode"] == "dry_run"
    assert stored["escalations"][0]["to_level"] == 2


def test_live_sends_level_2_once_and_the_last_level_never_escalates(
        runtime: Any, http_server: LoopbackHTTP, clock: Any, db_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    plan_id = delivered_plan(runtime, http_server)
    clock.advance(minutes=16)
    live = run_follow_up(runtime.ctx, runtime.registry, live=True)
    [entry] = live.escalations
    assert entry["status"] == "escalated"
    assert paths(http_server) == ["/ops", *LEVEL_2]  # one request per level-2 provider
    sent = {request.path: request for request in http_server.requests}
    assert sent["/pager"].idempotency_key == f"cavra:{plan_id}:pager:1"
    assert sent["/pager"].json()["plan_id"] == plan_id
    pager, slack = level_2_deliveries(runtime, plan_id)
    for delivery in (pager, slack):
        assert (delivery.kind, delivery.plan_id, delivery.worker_run_id, delivery.status,
                delivery.attempt) == ("escalation", plan_id, live.run_id, "delivered", 1)
    assert [c.level for c in plan_claims(runtime.ctx, plan_id)] == [2]
    assert live.summary["escalated"] == 1 and live.summary["delivered"] == 2

    # Again at once, and much later: level 2 is the last level (its timeout changes nothing).
    again = run_follow_up(runtime.ctx, runtime.registry, live=True)
    assert (again.summary["top_level"], again.escalations) == (1, [])
    clock.advance(hours=6)
    last = run_follow_up(runtime.ctx, runtime.registry, live=True)
    assert (last.summary["top_level"], last.escalations) == (1, [])
    assert paths(http_server) == ["/ops", *LEVEL_2]

    # The evidence: a level-2 delivery names the follow-up run that decided it.
    assert main(["--db", db_url, "evidence", "show", pager.delivery_id]) == 0
    chain = json.loads(capsys.readouterr().out)
    assert chain["delivery"]["worker_run_id"] == live.run_id
    assert chain["follow_up_run"]["run_id"] == live.run_id
    assert chain["follow_up_run"]["escalations"][0]["sends"][0]["delivery_id"] in (
        pager.delivery_id, slack.delivery_id)
    assert evidence_chain(runtime.ctx, pager.delivery_id).follow_up_run is not None
    with runtime.db.read() as session:
        assert verify_chain(session).ok
        actions = set(session.execute(select(AuditEventRow.action)).scalars())
    assert {"escalation.follow_up.live", "escalation.follow_up.claim",
            "escalation.follow_up.deliver"} <= actions
    verdict = verify_audit(runtime.ctx, witness_paths=[])
    assert verdict.ok, verdict.lines()
    assert verdict.evidence.checked > 0


def test_each_level_counts_from_when_it_was_decided(
        env: None, make_runtime: Any, write_config: Any, http_server: LoopbackHTTP,
        clock: Any) -> None:
    three = PROVIDERS + """
[[routing.levels.critical]]
providers = ["ops-webhook"]
ack_timeout_minutes = 15

[[routing.levels.critical]]
providers = ["pager"]
ack_timeout_minutes = 30

[[routing.levels.critical]]
providers = ["team-slack"]
"""
    runtime = make_runtime(write_config(three))
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])
    plan_id = delivered_plan(runtime, http_server)
    clock.advance(minutes=20)  # level 1 is 5 minutes overdue when level 2 is decided
    assert run_follow_up(runtime.ctx, runtime.registry, live=True).summary["escalated"] == 1
    assert paths(http_server) == ["/ops", "/pager"]
    clock.advance(minutes=29)  # level 2's 30 minutes count from its claim, not from level 1
    waiting = run_follow_up(runtime.ctx, runtime.registry, live=True)
    assert (waiting.summary["wait"], waiting.escalations) == (1, [])
    clock.advance(minutes=1)
    [entry] = run_follow_up(runtime.ctx, runtime.registry, live=True).escalations
    assert (entry["from_level"], entry["to_level"], entry["providers"]) == (2, 3,
                                                                            ["team-slack"])
    clock.advance(days=1)
    assert run_follow_up(runtime.ctx, runtime.registry, live=True).summary["top_level"] == 1
    assert paths(http_server) == ["/ops", "/pager", "/slack"]
    assert [c.level for c in plan_claims(runtime.ctx, plan_id)] == [3, 2]


def test_two_racing_live_runs_send_level_2_once(
        env: None, make_runtime: Any, write_config: Any, http_server: LoopbackHTTP,
        clock: Any, db_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(LEVELS)
    first, second = make_runtime(config), make_runtime(config)  # two engines, one database
    import_recovery_items(first.ctx, [item("rec-1", clock.now, 300)])
    plan_id = delivered_plan(first, http_server)
    clock.advance(minutes=16)
    # Both runs have decided the plan is due before either claims it: on SQLite (writers
    # serialised) they meet before the claim's transaction, on PostgreSQL inside it, just
    # before the claim, so both transactions are open at once.
    name = "claim_level" if db_backend == "postgresql" else "_escalate"
    results = race_follow_ups(monkeypatch, follow_up_workflow, name, (first, second))
    statuses = sorted(run.escalations[0]["status"] for run in results)
    assert statuses == ["claimed_elsewhere", "escalated"]
    assert paths(http_server) == ["/ops", *LEVEL_2]  # exactly one request each
    assert len(level_2_deliveries(first, plan_id)) == 2
    assert count(first, FollowUpClaimRow) == 1
    winner = next(run for run in results if run.escalations[0]["status"] == "escalated")
    assert [c.follow_up_run_id for c in plan_claims(first.ctx, plan_id)] == [winner.run_id]
    with first.db.read() as session:
        assert verify_chain(session).ok


@pytest.mark.parametrize("state", ["accepted", "acknowledged", "resolved", "dismissed"])
def test_a_clearing_ack_before_the_timeout_stops_escalation(
        runtime: Any, http_server: LoopbackHTTP, clock: Any, state: str) -> None:
    plan_id = delivered_plan(runtime, http_server)
    clock.advance(minutes=10)
    acknowledge(runtime.ctx, plan_id, "ops-webhook", state)
    clock.advance(minutes=60)
    run = run_follow_up(runtime.ctx, runtime.registry, live=True)
    assert run.escalations == []
    # resolved/dismissed settle the plan's only pair: it is closed, not even considered.
    assert run.summary["acknowledged"] == (0 if state in ("resolved", "dismissed") else 1)
    assert paths(http_server) == ["/ops"] and count(runtime, FollowUpClaimRow) == 0


def test_an_ack_after_the_deadline_but_before_the_run_still_counts_a_deferral_does_not(
        runtime: Any, http_server: LoopbackHTTP, clock: Any) -> None:
    plan_id = delivered_plan(runtime, http_server)
    clock.advance(minutes=20)  # past the deadline; no run has decided yet
    acknowledge(runtime.ctx, plan_id, "ops-webhook", "accepted")
    assert run_follow_up(runtime.ctx, runtime.registry, live=True).summary["acknowledged"] == 1
    acknowledge(runtime.ctx, plan_id, "ops-webhook", "deferred")  # the latest one counts
    run = run_follow_up(runtime.ctx, runtime.registry, live=True)
    assert [e["status"] for e in run.escalations] == ["escalated"]
    assert paths(http_server) == ["/ops", *LEVEL_2]


def test_the_flat_form_is_one_level_that_never_escalates(
        env: None, make_runtime: Any, write_config: Any, http_server: LoopbackHTTP,
        clock: Any) -> None:
    runtime = make_runtime(write_config(FLAT))
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])
    delivered_plan(runtime, http_server)
    clock.advance(days=2)
    run = run_follow_up(runtime.ctx, runtime.registry, live=True)
    assert (run.summary["top_level"], run.escalations) == (1, [])
    assert paths(http_server) == ["/ops"]


def test_the_console_page_shows_each_plans_level_and_time_left(
        runtime: Any, http_server: LoopbackHTTP, clock: Any) -> None:
    never = build_plan(runtime.ctx)  # built, never sent
    plan_id = delivered_plan(runtime, http_server)

    def shown() -> dict[str, tuple[str, str]]:
        page = list_plans_with_levels(runtime.ctx, clock.now)
        return {i.plan.plan_id: (i.level, i.next) for i in page.items}

    assert shown() == {plan_id: ("L1/2", "15m"), never.plan_id: ("-", "-")}
    clock.advance(minutes=3)
    assert shown()[plan_id] == ("L1/2", "12m")
    clock.advance(minutes=13)
    assert shown()[plan_id] == ("L1/2", "due")
    run_follow_up(runtime.ctx, runtime.registry, live=True)
    assert shown()[plan_id] == ("L2/2", "-")  # the last level: no next

    from cavra_tui.screens.escalations import plan_row, timeline_rows

    page = list_plans_with_levels(runtime.ctx, clock.now)
    row_id, cells = plan_row(next(i for i in page.items if i.plan.plan_id == plan_id))
    assert row_id == plan_id and cells[3:5] == ("L2/2", "-")
    [pager] = [d for d in level_2_deliveries(runtime, plan_id) if d.provider == "pager"]
    from store.services.listing import list_deliveries

    deliveries = list_deliveries(runtime.ctx, plan_id=plan_id, kind="escalation").items
    rows = dict(timeline_rows(deliveries, [], plan_claims(runtime.ctx, plan_id)))
    assert pager.worker_run_id in rows[pager.delivery_id][4]  # the run that sent it
    assert rows[pager.worker_run_id][1] == "level 2"  # the claim, opened as the run


def test_a_follow_up_schedule_runs_it_under_the_leader_once_per_slot(
        runtime: Any, http_server: LoopbackHTTP, clock: Any) -> None:
    delivered_plan(runtime, http_server)
    schedule = add_schedule(runtime.ctx, name="follow-ups", every="5m", kind="follow-up",
                            live=True)
    assert (schedule.kind, schedule.live) == ("follow-up", True)
    lease = LeaderLease(runtime.ctx, "leader-1", 60, clock)
    register_host(JobHost(runtime.ctx, runtime.registry, lease))
    try:
        clock.advance(minutes=10)  # a slot before level 1's deadline: waits
        assert lease.renew()
        fire_schedule("leader-1", schedule.schedule_id)
        clock.advance(minutes=10)  # the next slot, past it
        assert lease.renew()
        fire_schedule("leader-1", schedule.schedule_id)
        fire_schedule("leader-1", schedule.schedule_id)  # the same slot again: nothing
    finally:
        unregister_host("leader-1")
    assert paths(http_server) == ["/ops", *LEVEL_2]
    with runtime.db.read() as session:
        runs = session.execute(select(FollowUpRunRow.mode, FollowUpRunRow.trigger,
                                      FollowUpRunRow.schedule_id)).all()
    assert [tuple(r) for r in runs] == [("live", "schedule", schedule.schedule_id)] * 2


def test_cli_dry_run_live_json_and_the_role_it_needs(
        runtime: Any, http_server: LoopbackHTTP, clock: Any, db_url: str, write_config: Any,
        make_runtime: Any, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import cavra_tui.bootstrap as bootstrap

    build = bootstrap.build_runtime
    monkeypatch.setattr(bootstrap, "build_runtime",  # the CLI on the test's clock
                        lambda **kwargs: build(**kwargs, clock=clock))
    delivered_plan(runtime, http_server)
    clock.advance(minutes=16)
    argv = ["--db", db_url, "--config", str(write_config(LEVELS))]
    assert main([*argv, "escalation", "follow-up"]) == 0
    out = capsys.readouterr().out
    assert "dry_run" in out and "L1 → L2/2" in out and "would_escalate" in out
    assert paths(http_server) == ["/ops"]
    assert main([*argv, "escalation", "follow-up", "--live", "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert (run["mode"], run["escalations"][0]["status"]) == ("live", "escalated")
    assert paths(http_server) == ["/ops", *LEVEL_2]

    auditor = make_runtime(write_config(LEVELS + '[roles]\nauditor = ["carol"]\n'),
                           user="carol")
    with pytest.raises(PolicyDenied, match="escalation.follow_up.dry_run needs"):
        run_follow_up(auditor.ctx, auditor.registry)
    with runtime.db.read() as session:
        denied = session.execute(select(AuditEventRow.action).where(
            AuditEventRow.decision == "deny")).scalars().all()
    assert denied == ["escalation.follow_up.dry_run"]


BAD_CONFIGS = [
    (PROVIDERS + '[routing]\ncritical = ["ops-webhook"]\n\n[[routing.levels.critical]]\n'
     'providers = ["pager"]\n', "critical is given both as a list"),
    (PROVIDERS + '[[routing.levels.warning]]\nproviders = ["ops-webhook"]\n'
     'ack_timeout_minutes = 5\n\n[[routing.levels.warning]]\nproviders = ["nobody"]\n',
     "routing.levels.warning (level 2): unknown provider 'nobody'"),
    (PROVIDERS + '[[routing.levels.critical]]\nproviders = ["ops-webhook"]\n'
     'ack_timeout_minutes = 0\n', "routing.levels.critical.0.ack_timeout_minutes"),
    (PROVIDERS + '[[routing.levels.critical]]\nproviders = []\n',
     "routing.levels.critical.0.providers"),
    (PROVIDERS + '[[routing.levels.critical]]\nproviders = ["pager"]\nack_timeout = 5\n',
     "routing.levels.critical.0.ack_timeout: unknown key"),
]


@pytest.mark.parametrize(("text_", "expected"), BAD_CONFIGS,
                         ids=["both-forms", "unknown-provider", "timeout-below-1",
                              "no-providers", "unknown-key"])
def test_bad_level_config_is_one_line_exit_2(
        db_url: str, write_config: Any, capsys: pytest.CaptureFixture[str], text_: str,
        expected: str) -> None:
    code = main(["--db", db_url, "--config", str(write_config(text_)), "escalation",
                 "follow-up"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and expected in err, err
    assert err.startswith("cavra: error: config: ")


def test_the_new_tables_are_append_only_and_granted_as_evidence(
        runtime: Any, http_server: LoopbackHTTP, clock: Any, db_backend: str) -> None:
    plan_id = delivered_plan(runtime, http_server)
    clock.advance(minutes=16)
    run_follow_up(runtime.ctx, runtime.registry, live=True)
    assert append_only_problems(runtime.db) == []
    for statement in (f"UPDATE follow_up_claims SET level = 3 WHERE plan_id = '{plan_id}'",
                      "DELETE FROM follow_up_claims", "UPDATE follow_up_runs SET mode = 'x'",
                      "DELETE FROM follow_up_runs"):
        with pytest.raises(DBAPIError, match="append-only"), runtime.db.write() as session:
            session.execute(text(statement))
    sql = " ".join(grant_statements(["ops_a"], ["follow_up_runs", "follow_up_claims"]))
    assert ('GRANT SELECT, INSERT ON TABLE "follow_up_runs", "follow_up_claims" TO "ops_a"'
            in sql)
    assert "UPDATE" not in sql and "DELETE" not in sql  # evidence: read and append only


def test_a_level_whose_providers_all_had_the_plan_advances_without_sending(
        env: None, make_runtime: Any, write_config: Any, http_server: LoopbackHTTP,
        clock: Any) -> None:
    config = LEVELS.replace('providers = ["pager", "team-slack"]', 'providers = ["ops-webhook"]')
    runtime = make_runtime(write_config(config))
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])
    plan_id = delivered_plan(runtime, http_server)
    clock.advance(minutes=16)
    [entry] = run_follow_up(runtime.ctx, runtime.registry, live=True).escalations
    assert (entry["status"], entry["providers"], entry["already_sent"], entry["sends"]) == (
        "escalated", [], ["ops-webhook"], [])
    assert paths(http_server) == ["/ops"]  # never sent twice
    assert [c.level for c in plan_claims(runtime.ctx, plan_id)] == [2]



def test_a_level_is_claimed_once_whatever_the_run(runtime: Any) -> None:
    """The guard under the race test: a second claim of (plan, level) inserts nothing."""
    from store.services.follow_up import claim_level

    def claim(level: int, run_id: str) -> bool:
        with runtime.db.write() as session:
            return claim_level(runtime.ctx, session, plan_id="esc-x", level=level,
                               run_id=run_id, providers=["pager"])

    assert claim(2, "fup-a") is True
    assert claim(2, "fup-b") is False
    assert claim(3, "fup-b") is True
    assert [(c.level, c.follow_up_run_id) for c in plan_claims(runtime.ctx, "esc-x")] == [
        (3, "fup-b"), (2, "fup-a")]


def test_a_quiet_window_on_the_next_level_holds_it_until_the_window_ends(
        runtime: Any, http_server: LoopbackHTTP, clock: Any) -> None:
    from store.services.quiet_windows import add_quiet_window

    plan_id = delivered_plan(runtime, http_server)
    add_quiet_window(runtime.ctx, name="pager-maint", providers=["pager"], starts="now",
                     ends="+1h", severities=["critical"])
    clock.advance(minutes=16)
    held = run_follow_up(runtime.ctx, runtime.registry, live=True)
    [entry] = held.escalations
    assert (entry["status"], entry["reason"]) == ("held", "quiet_window: pager-maint")
    assert paths(http_server) == ["/ops"] and level_2_deliveries(runtime, plan_id) == []
    assert plan_claims(runtime.ctx, plan_id) == []  # not claimed: it can still escalate
    clock.advance(minutes=45)  # the window has ended
    after = run_follow_up(runtime.ctx, runtime.registry, live=True)
    assert [e["status"] for e in after.escalations] == ["escalated"]
    assert paths(http_server) == ["/ops", *LEVEL_2]
