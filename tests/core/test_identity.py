"""Identity comes from the effective uid, never the environment (SPEC §9).

The oracle for "who am I" is `id`, not our own code: a spoofed USER, LOGNAME, LNAME or
USERNAME must change neither the actor recorded in the audit chain nor the roles granted."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cavra_tui.app import CavraApp
from cavra_tui.bootstrap import build_runtime
from tests.tui.conftest import settle

SPOOFED = ("USER", "LOGNAME", "LNAME", "USERNAME")


def _id(flag: str) -> str:
    return subprocess.run(["id", flag], capture_output=True, text=True, check=True,
                          timeout=10).stdout.strip()


ME = _id("-un")
MY_GROUP = _id("-gn")


def _cavra(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "CAVRA_DATA_DIR": str(tmp_path / "data"), **env}
    return subprocess.run([sys.executable, "-m", "cavra_tui.cli", "--db",
                           f"sqlite:///{tmp_path / 'cavra.db'}", "--config",
                           str(tmp_path / "cavra.toml"), *args],
                          capture_output=True, text=True, env=full_env, timeout=60)


def _audit(tmp_path: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(tmp_path / "cavra.db")
    try:
        return list(conn.execute("SELECT actor, action, decision FROM audit_events ORDER BY seq"))
    finally:
        conn.close()


@pytest.mark.parametrize("variable", SPOOFED)
def test_a_spoofed_name_in_the_environment_is_not_an_identity(tmp_path: Path,
                                                              variable: str) -> None:
    # alice may run live retries and change schedules; the real user holds no role at all.
    (tmp_path / "cavra.toml").write_text('[roles]\nrelease_manager = ["alice"]\n')
    spoof = {name: ME for name in SPOOFED} | {variable: "alice"}
    live = _cavra(tmp_path, "retry", "run", "--live", env=spoof)
    assert live.returncode == 2, live.stdout + live.stderr
    assert "refused" in live.stderr and "alice" not in live.stderr
    schedule = _cavra(tmp_path, "schedule", "add", "nightly", "--every", "1h", env=spoof)
    assert schedule.returncode == 2
    events = _audit(tmp_path)
    assert events, "denials are audited"
    assert {actor for actor, _, _ in events} == {ME}
    assert {decision for _, _, decision in events} == {"deny"}
    with sqlite3.connect(tmp_path / "cavra.db") as conn:
        assert conn.execute("SELECT count(*) FROM report_schedules").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM worker_runs").fetchone() == (0,)


def test_the_real_user_and_real_groups_grant_roles(tmp_path: Path) -> None:
    (tmp_path / "cavra.toml").write_text(
        f'[roles]\nrelease_manager = ["@{MY_GROUP}"]\noperator = ["alice"]\n')
    result = _cavra(tmp_path, "--json", "schedule", "add", "nightly", "--every", "1h",
                    env={"USER": "alice", "LOGNAME": "alice"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["name"] == "nightly"
    assert _audit(tmp_path)[-1] == (ME, "schedule.change", "allow")


def test_a_group_the_user_is_not_in_grants_nothing(tmp_path: Path) -> None:
    (tmp_path / "cavra.toml").write_text('[roles]\nrelease_manager = ["@no-such-group-x"]\n')
    result = _cavra(tmp_path, "schedule", "add", "nightly", "--every", "1h", env={})
    assert result.returncode == 2
    assert _audit(tmp_path) == [(ME, "schedule.change", "deny")]


async def test_the_console_header_shows_the_real_user(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SPOOFED:
        monkeypatch.setenv(name, "alice")
    config = tmp_path / "cavra.toml"
    config.write_text('[roles]\nrelease_manager = ["alice"]\n')
    runtime = build_runtime(db_url=f"sqlite:///{tmp_path / 'cavra.db'}",
                            config_path=str(config))
    try:
        app = CavraApp(runtime, start_scheduler=False, live_refresh=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            header = str(app.query_one("ConsoleHeader").render())
            assert f"{ME} (os)" in header
            assert "alice" not in header
            assert "READ-ONLY" in header
    finally:
        runtime.close()
