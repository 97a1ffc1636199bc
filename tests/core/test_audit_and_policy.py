"""Roles, read-only mode, denials, and the tamper-evident audit chain (SPEC §9)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from store.audit import verify_chain
from store.errors import PolicyDenied
from store.policy import current_user
from store.services.acknowledgements import acknowledge
from store.services.escalation import build_plan
from store.services.recovery import import_recovery_items
from store.tables import AuditEventRow
from tests.core.helpers import WEBHOOK_CONFIG, item, run_cli
from tests.loopback import LoopbackHTTP
from workflows.delivery import deliver_escalation
from workflows.worker import run_retry_worker

ME = current_user()


def _roles(**roles: list[str]) -> str:
    lines = ["[roles]"] + [f"{role} = {members!r}" for role, members in roles.items()]
    return "\n".join(lines).replace("'", '"') + "\n"


def _audit(runtime: Any) -> list[AuditEventRow]:
    with runtime.db.read() as session:
        return list(session.query(AuditEventRow).order_by(AuditEventRow.seq))


def test_single_operator_mode_without_role_config(make_runtime: Any) -> None:
    runtime = make_runtime()
    assert runtime.identity.single_operator
    assert runtime.identity.role_label == "single-operator"
    assert runtime.identity.actor == ME


def test_unknown_user_is_read_only_and_denials_are_audited(make_runtime: Any, write_config: Any,
                                                           clock: Any) -> None:
    runtime = make_runtime(write_config(_roles(operator=["someone-else"])))
    assert runtime.identity.read_only
    with pytest.raises(PolicyDenied, match=f"{ME} holds no role; recovery.import needs "
                       "operator or release_manager"):
        import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 5)])
    [event] = _audit(runtime)
    assert (event.actor, event.action, event.decision) == (ME, "recovery.import", "deny")


def test_live_retry_needs_release_manager(make_runtime: Any, write_config: Any, clock: Any,
                                          http_server: LoopbackHTTP,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url())
    monkeypatch.setenv("CAVRA_TEST_HOOK_SECRET", "s")
    runtime = make_runtime(write_config(WEBHOOK_CONFIG + _roles(operator=[ME])))
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])
    plan = build_plan(runtime.ctx)
    deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
    assert run_retry_worker(runtime.ctx, runtime.registry).run.mode == "dry_run"
    with pytest.raises(PolicyDenied, match="retry.run.live needs release_manager"):
        run_retry_worker(runtime.ctx, runtime.registry, live=True)
    last = _audit(runtime)[-1]
    assert (last.action, last.decision, last.role) == ("retry.run.live", "deny", "operator")
    assert "release_manager" in last.policy_rule


def test_separation_of_duties_blocks_the_accepter(make_runtime: Any, write_config: Any,
                                                  clock: Any, http_server: LoopbackHTTP,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url())
    monkeypatch.setenv("CAVRA_TEST_HOOK_SECRET", "s")
    roles = _roles(release_manager=[ME], operator=[ME]) + "separate_duties = true\n"
    runtime = make_runtime(write_config(WEBHOOK_CONFIG + roles))
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])
    plan = build_plan(runtime.ctx)
    http_server.answer(500)
    deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
    acknowledge(runtime.ctx, plan.plan_id, "ops-webhook", "accepted")
    clock.advance(minutes=20)
    sent = len(http_server.requests)
    result = run_retry_worker(runtime.ctx, runtime.registry, live=True)
    assert [(e.status, e.reason) for e in result.executions] == [
        ("blocked", "separation_of_duties")]
    assert len(http_server.requests) == sent


def test_read_only_flag_refuses_changes(make_runtime: Any, capsys: pytest.CaptureFixture[str],
                                        db_path: Path) -> None:
    code, _, err = run_cli(capsys, "--db", f"sqlite:///{db_path}", "--read-only",
                           "escalation", "plan")
    assert code == 2 and "refused: read-only mode" in err
    code, out, _ = run_cli(capsys, "--db", f"sqlite:///{db_path}", "--read-only", "metrics")
    assert code == 0 and "alert level" in out


@pytest.fixture
def chained(make_runtime: Any, clock: Any) -> tuple[Any, Path]:
    runtime = make_runtime()
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])
    for _ in range(3):
        build_plan(runtime.ctx)
    deliver_escalation(runtime.ctx, runtime.registry, "latest")
    with runtime.db.read() as session:
        assert verify_chain(session).ok
    return runtime, runtime.db.sqlite_path


def _tamper(path: Path, *statements: str) -> None:
    """What an attacker with the file would do: drop the guard, then edit."""
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(("statements", "broken", "words"), [
    (["UPDATE audit_events SET detail = 'nothing happened' WHERE seq = 3"], 3, "modified"),
    (["UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"], 2, "modified"),
    (["DELETE FROM audit_events WHERE seq = 2"], 2, "missing"),
    (["UPDATE audit_events SET seq = 100 WHERE seq = 2",
      "UPDATE audit_events SET seq = 2 WHERE seq = 3",
      "UPDATE audit_events SET seq = 3 WHERE seq = 100"], 2, "does not link"),
    (["DELETE FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)"], 6,
     "removed from the end"),
], ids=["detail", "actor", "deleted", "reordered", "truncated"])
def test_audit_verify_names_the_broken_event(chained: tuple[Any, Path], statements: list[str],
                                             broken: int, words: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    runtime, path = chained
    runtime.db.dispose()
    _tamper(path, *statements)
    code, _, err = run_cli(capsys, "--db", f"sqlite:///{path}", "audit", "verify")
    assert code == 3
    assert f"audit chain broken at seq {broken}" in err and words in err


def test_evidence_cannot_be_edited_through_sql(chained: tuple[Any, Path]) -> None:
    _, path = chained
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE escalation_plans SET alert_level = 'healthy'")
    with pytest.raises(sqlite3.IntegrityError, match="only out of in_flight"):
        conn.execute("UPDATE deliveries SET status = 'failed'")
    conn.close()


def test_audit_export_holds_every_event(chained: tuple[Any, Path],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    import json

    _, path = chained
    code, out, _ = run_cli(capsys, "--db", f"sqlite:///{path}", "audit", "export")
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["prev_sha256"] == "0" * 64
    assert all(b["prev_sha256"] == a["sha256"] for a, b in zip(events, events[1:], strict=False))
    assert {"actor", "role", "action", "target_ids", "policy_rule", "evidence_sha256"} <= set(
        events[0])
