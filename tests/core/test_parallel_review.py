"""Regressions from a review of parallel live sends: a failing provider gets no more requests
than a sequential run would send it before its circuit opens, and a manual send racing a live
run never deadlocks (PostgreSQL) or leaves a send unrecorded."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from store.errors import Conflict
from store.tables import DeliveryRow
from tests.core.helpers import run_cli
from tests.core.test_parallel_live import _config, _failed_and_accepted
from tests.loopback import LoopbackHTTP
from workflows.delivery import deliver_escalation
from workflows.worker import run_retry_worker

pytestmark = pytest.mark.backends


def test_a_failing_provider_gets_no_more_sends_than_its_circuit_allows(
        make_runtime: Any, write_config: Any, http_server: LoopbackHTTP, clock: Any,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        db_url: str) -> None:
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url())
    runtime = make_runtime(write_config(_config({"only": "CAVRA_TEST_HOOK_URL"}, threshold=3)))
    _failed_and_accepted(runtime, clock, 12, [http_server])
    run_retry_worker(runtime.ctx, runtime.registry, live=True, max_deliveries=1)  # closes it
    http_server.default_status = 500
    http_server.requests.clear()
    result = run_retry_worker(runtime.ctx, runtime.registry, live=True, max_deliveries=100)
    outcomes = Counter((e.status, e.reason) for e in result.executions)
    assert len(http_server.requests) == 3  # the threshold, as a one-by-one run would send
    assert outcomes[("skipped", "provider_circuit_open")] == len(result.executions) - 3
    code, _, err = run_cli(capsys, "--db", db_url, "audit", "verify")
    assert code == 0, err


def test_a_manual_send_racing_a_live_run_is_recorded(
        make_runtime: Any, write_config: Any, http_server: LoopbackHTTP, clock: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url())
    config = write_config(_config({f"p{i}": "CAVRA_TEST_HOOK_URL" for i in range(4)}))
    runtime = make_runtime(config)
    plans = _failed_and_accepted(runtime, clock, 6, [http_server])
    for _ in range(200):
        http_server.answer(200, delay_s=0.05)
    other = make_runtime(config)
    errors: list[str] = []

    def manual() -> None:
        for plan in plans:
            try:
                deliver_escalation(other.ctx, other.registry, plan)
            except Conflict:  # a send to that pair is in flight: refused, as designed
                pass
            except Exception as exc:
                errors.append(type(exc).__name__)

    for _ in range(3):
        thread = threading.Thread(target=manual)
        thread.start()
        run_retry_worker(runtime.ctx, runtime.registry, live=True, max_deliveries=100)
        thread.join(timeout=60)
        assert errors == []
        with runtime.db.read() as session:
            assert session.execute(select(func.count()).select_from(DeliveryRow).where(
                DeliveryRow.status == "in_flight")).scalar_one() == 0
        keys = Counter(r.idempotency_key for r in http_server.requests)
        assert max(keys.values()) == 1  # no key sent twice
