"""Quiet windows (issue 13): sends to the providers a window names are recorded ``skipped``
(``quiet_window: NAME``), never sent and never dropped silently — by `escalation deliver`, the
console's deliver, both retry workers and executive report delivery; critical sends only when
the window says so; sends resume when it ends. Against a real database (SQLite, and
PostgreSQL where ``CAVRA_TEST_PG_URL`` names a server) and a loopback webhook."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from scheduler.status import read_scheduler_status
from store.audit import verify_chain
from store.errors import PolicyDenied, UserError
from store.evidence_check import cross_check
from store.pg_roles import append_only_problems
from store.policy import current_user
from store.services.acknowledgements import acknowledge
from store.services.escalation import build_plan
from store.services.quiet_reads import list_quiet_windows
from store.services.quiet_windows import add_quiet_window, remove_quiet_window
from store.services.recovery import import_recovery_items
from store.services.reports import create_schedule_run
from store.tables import AuditEventRow, DeliveryRow, ExecutionRecordRow, QuietWindowRow
from tests.core.helpers import EXEC_HOOK, item
from tests.loopback import LoopbackHTTP
from workflows.delivery import deliver_escalation_outcome, deliver_report_outcome
from workflows.report_retry import run_report_retry
from workflows.worker import run_retry_worker

pytestmark = pytest.mark.backends

ME = current_user()
CONFIG = """
[providers.ops-webhook]
kind = "webhook"
url_env = "CAVRA_TEST_HOOK_URL"
timeout_s = 2

[providers.backup-hook]
kind = "webhook"
url_env = "CAVRA_TEST_BACKUP_URL"
timeout_s = 2

[routing]
critical = ["ops-webhook"]
warning = ["ops-webhook"]
fallback = "outbox"
"""
BOTH_HOOKS = CONFIG.replace('warning = ["ops-webhook"]', 'warning = ["ops-webhook", "backup-hook"]')


@pytest.fixture
def hooks(http_server: LoopbackHTTP, monkeypatch: pytest.MonkeyPatch) -> LoopbackHTTP:
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url("/ops"))
    monkeypatch.setenv("CAVRA_TEST_BACKUP_URL", http_server.url("/backup"))
    monkeypatch.setenv("CAVRA_TEST_HOOK_SECRET", "s")
    return http_server


@pytest.fixture
def runtime(make_runtime: Any, write_config: Any, hooks: LoopbackHTTP) -> Any:
    return make_runtime(write_config(CONFIG))


def _plan(runtime: Any, clock: Any, age_minutes: int, recovery_id: str = "rec-1") -> Any:
    """A plan from one open item: within the 240 min SLO → warning, past it → critical."""
    import_recovery_items(runtime.ctx, [item(recovery_id, clock.now, age_minutes)])
    return build_plan(runtime.ctx)


def _count(runtime: Any, model: Any) -> int:
    with runtime.db.read() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def _events(runtime: Any, action: str) -> list[AuditEventRow]:
    with runtime.db.read() as session:
        return list(session.execute(select(AuditEventRow).where(
            AuditEventRow.action == action).order_by(AuditEventRow.seq)).scalars())


def _chain_and_evidence_ok(runtime: Any) -> None:
    with runtime.db.read() as session:
        chain = verify_chain(session)
        evidence = cross_check(session)
    assert chain.ok, chain.describe()
    assert evidence.ok, evidence.problems


# --- escalation deliver -------------------------------------------------------------------


def test_a_window_records_the_send_as_skipped_and_the_server_sees_nothing(
        runtime: Any, hooks: LoopbackHTTP, clock: Any) -> None:
    plan = _plan(runtime, clock, 30)
    assert plan.alert_level == "warning"
    window = add_quiet_window(runtime.ctx, name="db-maintenance", providers=["ops-webhook"],
                              starts="now", ends="+2h")
    assert window.severities == ["warning"]  # the default

    outcome = deliver_escalation_outcome(runtime.ctx, runtime.registry, plan.plan_id)

    assert outcome.deliveries == []
    [skip] = outcome.skipped
    assert (skip.provider, skip.status, skip.reason, skip.plan_id, skip.window_id) == (
        "ops-webhook", "skipped", "quiet_window: db-maintenance", plan.plan_id,
        window.window_id)
    assert hooks.requests == []
    assert _count(runtime, DeliveryRow) == 0
    # Never silent: the skip is in the audit chain, naming the plan and the window.
    [event] = [e for e in _events(runtime, "escalation.deliver") if e.decision == "allow"]
    assert event.detail == "ops-webhook: skipped (quiet_window: db-maintenance)"
    assert event.target_ids == [plan.plan_id, window.window_id]
    assert window.window_id in (event.records or {})
    _chain_and_evidence_ok(runtime)


def test_a_critical_plan_passes_a_warning_window_and_a_critical_window_holds_it(
        runtime: Any, hooks: LoopbackHTTP, clock: Any) -> None:
    critical = _plan(runtime, clock, 300)
    assert critical.alert_level == "critical"
    add_quiet_window(runtime.ctx, name="warnings-only", providers=["ops-webhook"],
                     starts="now", ends="+2h")

    sent = deliver_escalation_outcome(runtime.ctx, runtime.registry, critical.plan_id)
    assert [(d.provider, d.status) for d in sent.deliveries] == [("ops-webhook", "delivered")]
    assert sent.skipped == []
    assert [r.path for r in hooks.requests] == ["/ops"]

    add_quiet_window(runtime.ctx, name="all-quiet", providers=["ops-webhook"], starts="now",
                     ends="+1h", severities=["critical"])
    clock.advance(minutes=1)
    again = build_plan(runtime.ctx)
    held = deliver_escalation_outcome(runtime.ctx, runtime.registry, again.plan_id)
    assert held.deliveries == []
    assert [s.reason for s in held.skipped] == ["quiet_window: all-quiet"]
    assert len(hooks.requests) == 1


def test_a_critical_only_window_lets_warning_sends_through(
        runtime: Any, hooks: LoopbackHTTP, clock: Any) -> None:
    plan = _plan(runtime, clock, 30)
    add_quiet_window(runtime.ctx, name="critical-only", providers=["ops-webhook"],
                     starts="now", ends="+1h", severities=["critical"])
    outcome = deliver_escalation_outcome(runtime.ctx, runtime.registry, plan.plan_id)
    assert [d.status for d in outcome.deliveries] == ["delivered"]
    assert outcome.skipped == [] and len(hooks.requests) == 1


def test_only_the_named_providers_are_kept_quiet_and_sends_resume_when_it_ends(
        make_runtime: Any, write_config: Any, hooks: LoopbackHTTP, clock: Any) -> None:
    runtime = make_runtime(write_config(BOTH_HOOKS))
    plan = _plan(runtime, clock, 30)
    assert plan.selected_providers == ["ops-webhook", "backup-hook"]
    add_quiet_window(runtime.ctx, name="ops-upgrade", providers=["ops-webhook"],
                     starts="now", ends="+30m")
    outcome = deliver_escalation_outcome(runtime.ctx, runtime.registry, plan.plan_id)
    assert [d.provider for d in outcome.deliveries] == ["backup-hook"]
    assert [s.provider for s in outcome.skipped] == ["ops-webhook"]
    assert [r.path for r in hooks.requests] == ["/backup"]

    clock.advance(minutes=30)  # ends_at is exclusive: the window is over
    resumed = deliver_escalation_outcome(runtime.ctx, runtime.registry, plan.plan_id,
                                         ["ops-webhook"])
    assert [(d.provider, d.status) for d in resumed.deliveries] == [("ops-webhook",
                                                                     "delivered")]
    assert resumed.skipped == []
    assert [r.path for r in hooks.requests] == ["/backup", "/ops"]


def test_an_upcoming_window_silences_nothing_before_it_starts(
        runtime: Any, hooks: LoopbackHTTP, clock: Any) -> None:
    plan = _plan(runtime, clock, 30)
    # 13:00+01:00 is 12:00 UTC: stored as that instant.
    window = add_quiet_window(runtime.ctx, name="tonight", providers=["ops-webhook"],
                              starts="2026-11-27T14:00:00+01:00", ends="2026-11-27T15:00:00Z")
    assert window.starts_at.isoformat() == "2026-11-27T13:00:00+00:00"
    with runtime.db.connect() as conn:
        stored = conn.execute(text("SELECT starts_at FROM quiet_windows")).scalar_one()
    assert str(stored).startswith("2026-11-27 13:00:00")
    outcome = deliver_escalation_outcome(runtime.ctx, runtime.registry, plan.plan_id)
    assert [d.status for d in outcome.deliveries] == ["delivered"] and not outcome.skipped
    clock.advance(hours=1)  # 13:00 UTC: in force
    later = deliver_escalation_outcome(runtime.ctx, runtime.registry, plan.plan_id)
    assert later.deliveries == [] and [s.window for s in later.skipped] == ["tonight"]


# --- the retry workers --------------------------------------------------------------------


def test_the_retry_worker_skips_quiet_pairs_without_a_slot_and_sends_after_the_window(
        make_runtime: Any, write_config: Any, hooks: LoopbackHTTP, clock: Any) -> None:
    runtime = make_runtime(write_config(BOTH_HOOKS))
    ctx, registry = runtime.ctx, runtime.registry
    plan = _plan(runtime, clock, 30)
    hooks.default_status = 500
    failed = deliver_escalation_outcome(ctx, registry, plan.plan_id).deliveries
    assert [d.status for d in failed] == ["failed", "failed"]
    for provider in ("ops-webhook", "backup-hook"):
        acknowledge(ctx, plan.plan_id, provider, "accepted")
    clock.advance(minutes=16)  # past the backoff: both pairs due
    hooks.default_status = 200
    hooks.requests.clear()
    window = add_quiet_window(ctx, name="ops-upgrade", providers=["ops-webhook"],
                              starts="now", ends="+1h")

    dry = run_retry_worker(ctx, registry)
    assert sorted((e.provider, e.status, e.reason) for e in dry.executions) == [
        ("backup-hook", "dry_run", "would_deliver"),
        ("ops-webhook", "skipped", "quiet_window: ops-upgrade")]
    assert hooks.requests == []

    # --max 1: the quiet pair takes no slot, the other one is sent.
    live = run_retry_worker(ctx, registry, live=True, max_deliveries=1)
    assert sorted((e.provider, e.status, e.reason) for e in live.executions) == [
        ("backup-hook", "delivered", "delivered"),
        ("ops-webhook", "skipped", "quiet_window: ops-upgrade")]
    summary = live.run.summary
    assert (summary["selected"], summary["skipped"], summary["delivered"]) == (1, 1, 1)
    assert [r.path for r in hooks.requests] == ["/backup"]

    # The skipped pair stays due; the skips page nobody about the maintenance itself.
    clock.advance(minutes=59)
    still = run_retry_worker(ctx, registry, live=True)
    assert [(e.provider, e.reason) for e in still.executions] == [
        ("ops-webhook", "quiet_window: ops-upgrade")]
    assert not [r for r in build_plan(ctx).routes if r.category == "retry-execution"]

    clock.advance(minutes=1)  # the window is over
    after = run_retry_worker(ctx, registry, live=True)
    assert [(e.provider, e.status) for e in after.executions] == [("ops-webhook", "delivered")]
    assert [r.path for r in hooks.requests] == ["/backup", "/ops"]
    assert hooks.requests[-1].idempotency_key == f"cavra:{plan.plan_id}:ops-webhook:2"
    with runtime.db.read() as session:
        reasons = session.execute(select(ExecutionRecordRow.reason).where(
            ExecutionRecordRow.status == "skipped")).scalars().all()
    assert reasons == ["quiet_window: ops-upgrade"] * 3  # dry run, two live runs
    assert window.window_id
    _chain_and_evidence_ok(runtime)


def test_executive_reports_are_held_by_a_window_naming_their_channel(
        make_runtime: Any, write_config: Any, hooks: LoopbackHTTP, clock: Any) -> None:
    runtime = make_runtime(write_config(CONFIG + EXEC_HOOK))
    ctx, registry = runtime.ctx, runtime.registry
    import_recovery_items(ctx, [item("rec-1", clock.now, 300)])
    run, _, _ = create_schedule_run(ctx)
    # A window on another provider changes nothing; severities do not apply to reports.
    add_quiet_window(ctx, name="ops-only", providers=["ops-webhook"], starts="now", ends="+1h",
                     severities=["critical", "warning"])
    add_quiet_window(ctx, name="exec-freeze", providers=["exec-hook"], starts="now",
                     ends="+1h")
    held = deliver_report_outcome(ctx, registry, run.run_id, ["exec-hook"])
    assert held.deliveries == []
    assert [(s.provider, s.run_id, s.reason) for s in held.skipped] == [
        ("exec-hook", run.run_id, "quiet_window: exec-freeze")]
    assert hooks.requests == []
    [event] = [e for e in _events(runtime, "report.deliver") if "skipped" in e.detail]
    assert event.target_ids[0] == run.run_id

    clock.advance(hours=1)
    sent = deliver_report_outcome(ctx, registry, run.run_id, ["exec-hook"])
    assert [(d.provider, d.status) for d in sent.deliveries] == [("exec-hook", "delivered")]


def test_the_executive_retry_worker_skips_a_quiet_channel(
        make_runtime: Any, write_config: Any, hooks: LoopbackHTTP, clock: Any) -> None:
    runtime = make_runtime(write_config(CONFIG + EXEC_HOOK))
    ctx, registry = runtime.ctx, runtime.registry
    import_recovery_items(ctx, [item("rec-1", clock.now, 300)])
    run, _, _ = create_schedule_run(ctx)
    hooks.answer(503)
    [failed] = deliver_report_outcome(ctx, registry, run.run_id, ["exec-hook"]).deliveries
    assert failed.status == "failed"
    clock.advance(minutes=16)
    hooks.requests.clear()
    add_quiet_window(ctx, name="exec-freeze", providers=["exec-hook"], starts="now",
                     ends="+1h")
    for live in (False, True):
        result = run_report_retry(ctx, registry, live=live)
        assert [(e.status, e.reason) for e in result.executions] == [
            ("skipped", "quiet_window: exec-freeze")]
        assert result.run.summary["selected"] == 0
    assert hooks.requests == []
    clock.advance(hours=1)
    sent = run_report_retry(ctx, registry, live=True)
    assert [e.status for e in sent.executions] == ["delivered"]


# --- managing windows ---------------------------------------------------------------------


def test_list_remove_reuse_and_the_audit_chain(runtime: Any, clock: Any) -> None:
    ctx = runtime.ctx
    active = add_quiet_window(ctx, name="maint", providers=["ops-webhook", "outbox"],
                              starts="now", ends="+2h")
    upcoming = add_quiet_window(ctx, name="night", providers=["ops-webhook"],
                                starts="2026-11-28T01:00:00+01:00", ends="+1d",
                                severities=["warning", "critical"])
    listed = list_quiet_windows(runtime.ctx, clock.now)
    assert [w.name for w in listed] == ["maint", "night"]
    status = read_scheduler_status(runtime.ctx, clock.now)
    assert [q.label for q in status.quiet] == [
        "quiet: maint (ops-webhook, outbox) until 14:00 UTC",
        "quiet from Sat 11-28 00:00 UTC: night (ops-webhook) +critical"]

    removed = remove_quiet_window(ctx, "maint")
    assert (removed.removed, removed.removed_by) == (True, ME)
    assert [w.name for w in list_quiet_windows(runtime.ctx, clock.now)] == ["night"]
    everything = list_quiet_windows(runtime.ctx, clock.now, include_past=True)
    assert {w.window_id for w in everything} == {active.window_id, upcoming.window_id}
    with pytest.raises(UserError, match="'maint' not found"):
        remove_quiet_window(ctx, "maint")
    again = add_quiet_window(ctx, name="maint", providers=["outbox"], starts="now", ends="+1h")
    remove_quiet_window(ctx, again.window_id)  # by ID too

    changes = _events(runtime, "quiet.change")
    assert [e.detail.split(" ")[0] for e in changes] == ["add", "add", "remove", "add", "remove"]
    assert all(e.decision == "allow" and e.role for e in changes)
    assert changes[2].target_ids == [active.window_id]
    _chain_and_evidence_ok(runtime)


def test_the_database_holds_a_window_to_its_one_change(runtime: Any) -> None:
    window = add_quiet_window(runtime.ctx, name="maint", providers=["ops-webhook"],
                              starts="now", ends="+2h")
    for statement in ("UPDATE quiet_windows SET ends_at = starts_at",
                      "UPDATE quiet_windows SET providers = '[\"outbox\"]'",
                      "DELETE FROM quiet_windows"):
        with runtime.db.write_engine.connect() as conn, pytest.raises(DBAPIError) as refused:
            conn.execute(text(statement))
        assert "a quiet window changes only by being removed" in str(refused.value.orig)
    remove_quiet_window(runtime.ctx, window.window_id)  # the one change cavra makes
    with runtime.db.write_engine.connect() as conn, pytest.raises(DBAPIError):
        conn.execute(text("UPDATE quiet_windows SET removed = false"))
    assert append_only_problems(runtime.db) == []


def test_removing_a_window_needs_release_manager_and_refusals_are_audited(
        make_runtime: Any, write_config: Any, hooks: LoopbackHTTP) -> None:
    manager = make_runtime(write_config(CONFIG + f'[roles]\nrelease_manager = ["{ME}"]\n'))
    window = add_quiet_window(manager.ctx, name="maint", providers=["ops-webhook"],
                              starts="now", ends="+1h")
    operator = make_runtime(write_config(CONFIG + f'[roles]\noperator = ["{ME}"]\n'))
    with pytest.raises(PolicyDenied, match="quiet.change needs release_manager"):
        remove_quiet_window(operator.ctx, "maint")
    with pytest.raises(PolicyDenied, match="quiet.change needs release_manager"):
        add_quiet_window(operator.ctx, name="other", providers=["ops-webhook"], starts="now",
                         ends="+1h")
    denials = [e for e in _events(operator, "quiet.change") if e.decision == "deny"]
    assert [e.role for e in denials] == ["operator", "operator"]
    assert denials[0].target_ids == [window.window_id]
    assert [w.name for w in list_quiet_windows(operator.ctx, operator.ctx.clock())] == ["maint"]
    assert _count(operator, QuietWindowRow) == 1


def test_migration_0006_downgrades_and_upgrades_again(runtime: Any) -> None:
    from alembic import command

    from store.db import _alembic_config

    add_quiet_window(runtime.ctx, name="maint", providers=["ops-webhook"], starts="now",
                     ends="+1h")
    config = _alembic_config()
    engine = runtime.db.write_engine
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0005")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0005"
        assert not engine.dialect.has_table(conn, "quiet_windows")
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM quiet_windows")).scalar() == 0
    assert append_only_problems(runtime.db) == []


# --- the console's deliver ------------------------------------------------------------------


def test_the_consoles_deliver_and_preview_say_what_is_kept_quiet(
        runtime: Any, hooks: LoopbackHTTP, clock: Any) -> None:
    from cavra_tui.workflow import deliver_plan, preview_plan_send

    plan = _plan(runtime, clock, 30)
    add_quiet_window(runtime.ctx, name="maint", providers=["ops-webhook"], starts="now",
                     ends="+2h")
    with pytest.raises(UserError, match="quiet_window: maint until 14:00 UTC"):
        preview_plan_send(runtime, plan.plan_id)
    result = deliver_plan(runtime, plan.plan_id)
    assert result.summary == (f"delivered plan {plan.plan_id}: ops-webhook skipped "
                              "(quiet_window: maint)")
    assert result.severity == "warning"
    assert hooks.requests == []


# --- the rule itself (no database) ----------------------------------------------------------


def test_the_rule_windows_are_half_open_and_match_provider_and_level() -> None:
    from datetime import timedelta

    from store.models import QuietWindow
    from store.rules.quiet import send_level, silencing, window_state
    from tests.conftest import FROZEN_NOW

    def window(name: str, severities: list[str], hours: int = 2, **extra: Any) -> QuietWindow:
        return QuietWindow(window_id=f"qwn-{name}", name=name, providers=["hook"],
                           severities=severities, starts_at=FROZEN_NOW,
                           ends_at=FROZEN_NOW + timedelta(hours=hours), removed=False,
                           removed_at=None, removed_by=None, created_at=FROZEN_NOW,
                           created_by="x", **extra)

    short, long_ = window("short", ["warning"], 1), window("long", ["warning", "critical"], 2)
    end = FROZEN_NOW + timedelta(hours=1)
    assert silencing([short], "hook", "warning", FROZEN_NOW) == short  # from is inclusive
    assert silencing([short], "hook", "warning", end) is None  # until is exclusive
    assert silencing([short], "hook", "warning", FROZEN_NOW - timedelta(seconds=1)) is None
    assert silencing([short], "other", "warning", FROZEN_NOW) is None
    assert silencing([short], "hook", "critical", FROZEN_NOW) is None
    assert silencing([short], "hook", None, FROZEN_NOW) == short  # executive: any severity
    assert silencing([short, long_], "hook", "warning", FROZEN_NOW) == long_  # ends last
    assert silencing([window("gone", ["warning"]).model_copy(update={"removed": True})],
                     "hook", "warning", FROZEN_NOW) is None
    assert (send_level("critical"), send_level("warning"), send_level("healthy")) == (
        "critical", "warning", "warning")
    assert [window_state(short, FROZEN_NOW + timedelta(minutes=m)) for m in (-1, 0, 60)] == [
        "upcoming", "active", "ended"]
