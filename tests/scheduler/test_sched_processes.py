"""Four real `cavra scheduler run` processes on one SQLite database: one leader fires, the
leader is SIGKILLed mid-way, another takes over, and every slot is delivered exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cavra_tui.bootstrap import build_runtime
from scheduler.status import LEADER_LOCK
from store.services.schedules import add_schedule
from store.tables import DeliveryRow, LockRow, ScheduleRunRow

pytestmark = pytest.mark.slow
PROVIDERS = {"exec-outbox", "outbox"}


def _wait(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@pytest.fixture
def processes() -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    started: dict[str, subprocess.Popen[bytes]] = {}
    yield started
    for proc in started.values():  # never leave a scheduler behind, whatever happened
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_four_schedulers_one_leader_exactly_once_across_a_killed_leader(
        tmp_path: Path, exec_config: Path,
        processes: dict[str, subprocess.Popen[bytes]]) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    setup = build_runtime(db_url=url, config_path=str(exec_config))
    schedule = add_schedule(setup.ctx, name="every-2s", every="2s")
    anchor = schedule.created_at.replace(microsecond=0)

    def lease_holder() -> str | None:
        with setup.db.read() as session:
            row = session.get(LockRow, LEADER_LOCK)
            return row.holder if row else None

    def runs() -> list[tuple[str, datetime, datetime]]:
        with setup.db.read() as session:
            return [(r.run_id, r.scheduled_for.replace(tzinfo=UTC),
                     r.created_at.replace(tzinfo=UTC)) for r in session.execute(
                select(ScheduleRunRow).where(ScheduleRunRow.schedule_id == schedule.schedule_id)
                .order_by(ScheduleRunRow.scheduled_for)).scalars()]

    for n in range(4):
        name = f"proc-{n}"
        env = {**os.environ, "CAVRA_DATA_DIR": str(tmp_path / name)}
        processes[name] = subprocess.Popen(
            [sys.executable, "-m", "cavra_tui.cli", "scheduler", "run", "--db", url,
             "--config", str(exec_config), "--lease-ttl", "2", "--poll", "0.3",
             "--holder", name], env=env, stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"{name}.err").open("wb"))
    try:
        _wait(lambda: len(runs()) >= 3, 25, "three runs from the first leader")
        first_leader = lease_holder()
        assert first_leader in processes
        processes[first_leader].send_signal(signal.SIGKILL)
        processes[first_leader].wait(timeout=10)
        killed_at = datetime.now(UTC)
        before_kill = len(runs())
        new_leader = _wait(lambda: (h := lease_holder()) not in (None, first_leader) and h,
                           10, "a standby to take the lease")
        _wait(lambda: len([r for r in runs() if r[2] > killed_at]) >= 3, 20,
              "three runs from the new leader")
    finally:
        for proc in processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        exit_codes = {name: proc.wait(timeout=15) for name, proc in processes.items()}

    # Clean shutdown on SIGTERM for every survivor; the killed one died by SIGKILL.
    assert exit_codes.pop(first_leader) == -signal.SIGKILL
    assert set(exit_codes.values()) == {0}, exit_codes
    assert new_leader in processes and new_leader != first_leader
    assert "is now leader" in (tmp_path / f"{new_leader}.err").read_text()

    all_runs = runs()
    assert len(all_runs) >= before_kill + 3
    slots = [slot for _, slot, _ in all_runs]
    assert len(slots) == len(set(slots))  # one run per scheduled_for
    assert all((slot - anchor).total_seconds() % 2 == 0 for slot in slots)  # on the 2 s grid

    with setup.db.read() as session:
        deliveries = session.execute(select(DeliveryRow.run_id, DeliveryRow.provider,
                                            DeliveryRow.status)).all()
    per_pair = Counter((run_id, provider) for run_id, provider, _ in deliveries)
    expected = {(run_id, provider) for run_id, _, _ in all_runs for provider in PROVIDERS}
    assert set(per_pair) == expected  # every run reached every provider...
    assert set(per_pair.values()) == {1}  # ...exactly once
    # Only a send cut off by the SIGKILL itself may be left in flight.
    assert sum(status != "delivered" for _, _, status in deliveries) <= 1

    lines = [json.loads(line) for line in
             (tmp_path / "exec-outbox.jsonl").read_text().splitlines()]
    sent = Counter(line["run_id"] for line in lines)
    assert max(sent.values()) == 1 and len(sent) >= len(all_runs) - 1
    setup.close()
