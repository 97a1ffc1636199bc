"""The Audit screen: the latest checkpoint, whether the chain still agrees with it, the
signing mode; `w` writes a checkpoint to the witnesses, `v` runs the full check."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import Static

from cavra_tui.bootstrap import Runtime
from tests.audit_config import witness_toml
from tests.core.audit_attacker import recompute_chain
from tests.tui.conftest import make_app, settle
from workflows.demo import seed_demo_data


@pytest.fixture
def witnessed(open_runtime: Callable[..., Runtime], tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.setenv("CAVRA_TEST_AUDIT_KEY", "console key")
    runtime = open_runtime(witness_toml(tmp_path / "witness" / "audit.jsonl"))
    seed_demo_data(runtime.ctx, runtime.registry)
    return runtime


def _line(app: object, widget_id: str) -> str:
    return str(app.screen.query_one(f"#{widget_id}", Static).render())  # type: ignore[attr-defined]


async def test_checkpoint_from_the_audit_screen(witnessed: Runtime, tmp_path: Path) -> None:
    app = make_app(witnessed)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        await settle(pilot)
        assert "no checkpoint yet" in _line(app, "checkpoint-status")
        assert "hmac checkpoints · unsigned events" in _line(app, "checkpoint-status")
        await pilot.press("w")
        await settle(pilot)
        [line] = (tmp_path / "witness" / "audit.jsonl").read_text().splitlines()
        sent = json.loads(line)["message"]
        status = _line(app, "checkpoint-status")
        assert f"checkpoint seq {sent['seq']}" in status
        assert "audit-witness delivered" in status and "agrees" in status
        await pilot.press("v")
        await settle(pilot)
        assert any("audit verified" in n.message and "1 witness file(s) agree" in n.message
                   for n in app._notifications)


async def test_the_screen_says_when_the_chain_no_longer_agrees(witnessed: Runtime) -> None:
    app = make_app(witnessed)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6", "w")
        await settle(pilot)
        path = Path(str(witnessed.db.sqlite_path))
        conn = sqlite3.connect(path)
        conn.execute("DROP TRIGGER audit_events_no_update")
        conn.execute("UPDATE audit_events SET detail = 'edited' WHERE seq = 3")
        conn.commit()
        conn.close()
        recompute_chain(path)
        await pilot.press("v")
        await settle(pilot)
        assert "DISAGREES" in _line(app, "checkpoint-status")
        assert "audit chain intact" in _line(app, "chain-status")  # the walk alone passes
        assert any("has another hash" in n.message for n in app._notifications)


async def test_a_database_without_its_triggers_is_announced(open_runtime: Callable[..., Runtime],
                                                            tmp_path: Path) -> None:
    runtime = open_runtime()
    runtime.close()
    conn = sqlite3.connect(tmp_path / "cavra.db")
    conn.execute("DROP TRIGGER deliveries_no_delete")
    conn.commit()
    conn.close()
    app = make_app(open_runtime())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert any("trigger deliveries_no_delete is missing" in n.message
                   for n in app._notifications)
