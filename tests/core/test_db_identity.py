"""`[identity] source = "database"` on a real PostgreSQL server: the actor is the role the
database authenticated (password login here), so two operators on two jump hosts cannot claim
each other's names, whatever USER says (SPEC §9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from tests import pg_roles_fixtures
from tests.core.helpers import run_cli
from tests.pg_roles_fixtures import GrantedDatabase, engine

pg_granted = pg_roles_fixtures.pg_granted


def _audit(url: str) -> list[tuple[str, str, str]]:
    eng = engine(url)
    try:
        with eng.connect() as conn:
            return [(str(a), str(b), str(c)) for a, b, c in conn.execute(text(
                "SELECT actor, action, decision FROM audit_events ORDER BY seq"))]
    finally:
        eng.dispose()


def test_each_login_role_is_audited_under_its_own_name(
        pg_granted: GrantedDatabase, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    manager, operator = pg_granted.roles
    group = pg_granted.add_login_role("oncall")  # a role used as a group
    pg_granted.admin_sql(f"GRANT {group.name} TO {operator.name}")
    config = tmp_path / "cavra.toml"
    config.write_text(f'[identity]\nsource = "database"\n\n[roles]\n'
                      f'release_manager = ["{manager.name}"]\noperator = ["@{group.name}"]\n')
    monkeypatch.setenv("USER", manager.name)  # the environment claims the manager: ignored
    monkeypatch.setenv("LOGNAME", manager.name)
    before = len(_audit(pg_granted.admin_url))
    for role in (manager, operator):
        code, _, err = run_cli(capsys, "--db", role.url, "--config", str(config),
                               "escalation", "plan")
        assert code == 0, err
    code, _, err = run_cli(capsys, "--db", operator.url, "--config", str(config),
                           "retry", "run", "--live")
    assert code == 2 and "refused" in err and operator.name in err
    code, _, err = run_cli(capsys, "--db", manager.url, "--config", str(config),
                           "retry", "run", "--live")
    assert code == 0, err
    events = _audit(pg_granted.admin_url)[before:]
    assert events[0] == (manager.name, "escalation.plan", "allow")
    assert events[1] == (operator.name, "escalation.plan", "allow")
    assert events[2] == (operator.name, "retry.run.live", "deny")
    assert {actor for actor, action, _ in events[3:]} == {manager.name}


def test_a_role_without_a_cavra_role_is_read_only(pg_granted: GrantedDatabase, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    manager, operator = pg_granted.roles
    config = tmp_path / "cavra.toml"
    config.write_text(f'[identity]\nsource = "database"\n\n[roles]\n'
                      f'release_manager = ["{manager.name}"]\n')
    code, _, err = run_cli(capsys, "--db", operator.url, "--config", str(config),
                           "escalation", "plan")
    assert code == 2 and "refused" in err
    assert _audit(pg_granted.admin_url)[-1] == (operator.name, "escalation.plan", "deny")


def test_audit_verify_names_login_roles_that_could_delete_evidence(
        pg_granted: GrantedDatabase, capsys: pytest.CaptureFixture[str]) -> None:
    manager, operator = pg_granted.roles
    pg_granted.owner_sql(f"GRANT DELETE ON audit_events TO {operator.name}")
    code, out, err = run_cli(capsys, "--db", manager.url, "audit", "verify")
    assert code == 0, err  # the chain is intact: privileges are warnings, not breakage
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert any(operator.name in line and "DELETE on audit_events" in line for line in warnings)
    assert any("is a superuser" in line for line in warnings)
    assert not any(manager.name in line for line in warnings)


def test_a_missing_grant_is_one_line_not_an_internal_error(
        pg_granted: GrantedDatabase, capsys: pytest.CaptureFixture[str]) -> None:
    _, operator = pg_granted.roles
    pg_granted.owner_sql(f"REVOKE INSERT ON escalation_plans FROM {operator.name}")
    code, out, err = run_cli(capsys, "--db", operator.url, "escalation", "plan")
    assert code == 2 and out == ""
    assert err.startswith("cavra: error: database: permission denied for table escalation_plans")
    assert len(err.splitlines()) == 1
