"""Helpers shared by the core tests."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cavra_tui.cli import main
from store.models import RecoveryItem
from store.services.recovery import import_recovery_items

# An executive webhook on the same loopback URL as WEBHOOK_CONFIG's provider.
EXEC_HOOK = """
[providers.exec-hook]
kind = "webhook"
url_env = "CAVRA_TEST_HOOK_URL"
audience = ["executive"]
"""

WEBHOOK_CONFIG = """
[providers.ops-webhook]
kind = "webhook"
url_env = "CAVRA_TEST_HOOK_URL"
secret_env = "CAVRA_TEST_HOOK_SECRET"
timeout_s = 2

[routing]
critical = ["ops-webhook"]
warning = ["ops-webhook"]
fallback = "outbox"

[retry]
max_attempts = 3
base_delay_minutes = 15
multiplier = 2.0
"""


def item(recovery_id: str, now: datetime, age_minutes: int, **extra: Any) -> RecoveryItem:
    return RecoveryItem(recovery_id=recovery_id, connector=extra.pop("connector", "payments-api"),
                        category=extra.pop("category", "rollback"),
                        opened_at=now - timedelta(minutes=age_minutes), **extra)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = run_cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def table_dump(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: equal dumps mean nothing was written."""
    conn = sqlite3.connect(db_path)
    try:
        tables = [name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {t: sorted(map(tuple, conn.execute(f"SELECT * FROM {t}")), key=repr)
                for t in tables}
    finally:
        conn.close()


def hooked_runtime(make_runtime: Any, write_config: Any, hook_url: str, clock: Any,
                   monkeypatch: pytest.MonkeyPatch,
                   config: str = WEBHOOK_CONFIG + EXEC_HOOK) -> Any:
    """A runtime whose webhook providers post to ``hook_url``, with one open recovery item."""
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", hook_url)
    monkeypatch.setenv("CAVRA_TEST_HOOK_SECRET", "s")
    runtime = make_runtime(write_config(config))
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])
    return runtime


def race_follow_ups(monkeypatch: pytest.MonkeyPatch, module: Any, meet_before: str,
                    runtimes: tuple[Any, Any]) -> list[Any]:
    """Two live follow-up runs at once, one per runtime, held at a barrier just before
    ``module.meet_before`` so both have decided before either claims. Their results; any
    error either raised fails the test."""
    from workflows.follow_up import run_follow_up

    barrier = threading.Barrier(2, timeout=20)
    original = getattr(module, meet_before)

    def meet(*args: Any, **kwargs: Any) -> Any:
        barrier.wait()
        return original(*args, **kwargs)

    monkeypatch.setattr(module, meet_before, meet)
    results: list[Any] = []
    errors: list[BaseException] = []

    def race(runtime: Any) -> None:
        try:
            results.append(run_follow_up(runtime.ctx, runtime.registry, live=True))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(r,)) for r in runtimes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    return results
