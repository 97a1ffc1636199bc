"""The scheduler leader checkpoints the audit chain head to the witnesses (SPEC §9): every
``[audit] checkpoint_minutes`` when the head moved, after every scheduled live retry-worker run
and report delivery; a standby never does. Real SQLite files, a stepping clock."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.triggers.interval import IntervalTrigger

from cavra_tui.cli import main
from scheduler.lease import LeaderLease
from scheduler.runner import CHECKPOINT_JOB_ID, SchedulerService
from scheduler.status import LEADER_LOCK
from store.services.schedules import add_schedule, disable_schedule
from tests.audit_config import KEY_ENV, witness_toml
from workflows.checkpoints import write_checkpoint

Wait = Callable[..., Awaitable[None]]


@pytest.fixture
def witness(tmp_path: Path) -> Path:
    """Outside the database's folder, as a witness should be."""
    return tmp_path / "witness" / "audit.jsonl"


@pytest.fixture
def config(write_config: Callable[[str], Path], witness: Path,
           monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(KEY_ENV, "test-only checkpoint key")
    return write_config('[providers.exec-outbox]\nkind = "outbox"\n'
                        'path = "exec-outbox.jsonl"\naudience = ["executive"]\n'
                        + witness_toml(witness, key_env=KEY_ENV))


def _witnessed(witness: Path) -> list[dict[str, Any]]:
    if not witness.exists():
        return []
    lines = [json.loads(line) for line in witness.read_text(encoding="utf-8").splitlines()]
    assert all(line["kind"] == "checkpoint" for line in lines)
    return [line["message"] for line in lines]


def _sql(db_path: Path, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """An independent look at the file, past the application's own code."""
    with sqlite3.connect(db_path) as conn:
        return conn.execute(query, params).fetchall()


def _head(db_path: Path) -> tuple[int, str]:
    [(seq, sha)] = _sql(db_path, "SELECT seq, sha256 FROM audit_head WHERE id = 1")
    return seq, sha


def _event_sha(db_path: Path, seq: int) -> str:
    [(sha,)] = _sql(db_path, "SELECT sha256 FROM audit_events WHERE seq = ?", seq)
    return str(sha)


def _checkpoint_rows(db_path: Path) -> int:
    [(count,)] = _sql(db_path, "SELECT count(*) FROM audit_checkpoints")
    return int(count)


def _service(runtime: Any, name: str) -> SchedulerService:
    return SchedulerService(runtime.ctx, runtime.registry, holder=name, lease_ttl_s=30, poll_s=0.1)


def _executed(service: SchedulerService) -> list[str]:
    """IDs of the jobs the service has run (APScheduler's own event, from its threads)."""
    done: list[str] = []
    assert service._scheduler is not None

    def listen(event: JobExecutionEvent) -> None:
        done.append(event.job_id)

    service._scheduler.add_listener(listen, EVENT_JOB_EXECUTED)
    return done


async def _interval_passes(service: SchedulerService, clock: Any) -> None:
    """The test's clock moves on by the interval, the leader renews its lease at the new time,
    and the checkpoint job comes due (APScheduler keeps real time, not the test's clock)."""
    clock.advance(minutes=15)
    await asyncio.to_thread(service.tick)
    assert service.is_leader
    assert service._scheduler is not None
    service._scheduler.modify_job(CHECKPOINT_JOB_ID, next_run_time=datetime.now(UTC))


async def test_the_leader_checkpoints_each_interval_only_when_the_head_moved(
        make_runtime: Any, clock: Any, config: Path, witness: Path, db_path: Path,
        wait: Wait, caplog: pytest.LogCaptureFixture) -> None:
    runtime = make_runtime(config)
    schedule = add_schedule(runtime.ctx, name="weekly", cron="0 9 * * 1")
    write_checkpoint(runtime.ctx, runtime.registry)  # a fresh one: not due at start
    assert len(_witnessed(witness)) == 1
    service = _service(runtime, "leader")
    service.start()
    executed = _executed(service)
    try:
        await wait(lambda: service.is_leader and CHECKPOINT_JOB_ID in service.job_ids())
        assert service._scheduler is not None
        job = service._scheduler.get_job(CHECKPOINT_JOB_ID)
        assert isinstance(job.trigger, IntervalTrigger)
        assert job.trigger.interval == timedelta(minutes=15)  # the default checkpoint_minutes
        assert job.trigger.timezone == UTC
        assert (job.coalesce, job.max_instances) == (True, 1)
        assert job.next_run_time > datetime.now(UTC) + timedelta(minutes=14)  # not at once

        # The interval passes, the head has not moved: nothing is written.
        await _interval_passes(service, clock)
        await wait(lambda: executed.count(CHECKPOINT_JOB_ID) == 1)
        assert len(_witnessed(witness)) == 1 and _checkpoint_rows(db_path) == 1

        # The head moves; at the next interval the leader certifies the new head.
        disable_schedule(runtime.ctx, schedule.schedule_id)
        await _interval_passes(service, clock)
        await wait(lambda: executed.count(CHECKPOINT_JOB_ID) == 2)
    finally:
        service.shutdown()
    assert "no longer the leader" not in caplog.text  # each run really looked at the head
    checkpoints = _witnessed(witness)
    assert len(checkpoints) == 2 and _checkpoint_rows(db_path) == 2
    seq, sha = _head(db_path)
    latest = checkpoints[-1]
    assert (latest["seq"], latest["head_sha256"]) == (seq, sha) == (seq, _event_sha(db_path, seq))
    assert latest["seq"] > checkpoints[0]["seq"]
    assert latest["method"] == "hmac" and latest["signature"]
    assert datetime.fromisoformat(latest["at"]) == clock.now


async def test_a_standby_writes_none_a_new_leader_checkpoints_an_overdue_head_at_once(
        make_runtime: Any, clock: Any, config: Path, witness: Path, db_path: Path,
        wait: Wait) -> None:
    runtime = make_runtime(config)
    add_schedule(runtime.ctx, name="weekly", cron="0 9 * * 1")  # the head moved: seq > 0
    other = LeaderLease(runtime.ctx, "other", 30, clock)
    assert other.renew()  # another process leads
    standby = _service(make_runtime(config), "standby")
    standby.start()
    try:
        for _ in range(3):  # its own housekeeping ticks too; these make sure it has looked
            await asyncio.to_thread(standby.tick)
        assert not standby.is_leader and standby.job_ids() == []
        assert _witnessed(witness) == [] and _checkpoint_rows(db_path) == 0

        other.release()  # the leader hands over: there is no checkpoint yet, so one is due
        await wait(lambda: standby.is_leader and len(_witnessed(witness)) == 1)
        assert _witnessed(witness)[0]["seq"] == _head(db_path)[0]

        # Leadership is lost (the lease taken over): the checkpoint job goes with it.
        with sqlite3.connect(db_path) as conn:
            conn.execute("UPDATE locks SET holder = 'other', expires_at = ? WHERE name = ?",
                         ((clock.now + timedelta(hours=1)).replace(tzinfo=None).isoformat(" "),
                          LEADER_LOCK))
        await wait(lambda: not standby.is_leader and standby.job_ids() == [])
    finally:
        standby.shutdown()
    assert len(_witnessed(witness)) == 1


async def test_a_scheduled_delivery_is_checkpointed_and_the_witness_catches_a_truncation(
        make_runtime: Any, clock: Any, config: Path, witness: Path, db_path: Path,
        db_url: str, wait: Wait, capsys: pytest.CaptureFixture[str]) -> None:
    clock.now = datetime(2026, 11, 27, 7, 58, tzinfo=UTC)
    runtime = make_runtime(config)
    add_schedule(runtime.ctx, name="morning", cron="0 8 * * *", providers=["exec-outbox"])
    write_checkpoint(runtime.ctx, runtime.registry)  # fresh: the periodic job is not due
    clock.now = datetime(2026, 11, 27, 8, 1, tzinfo=UTC)  # 08:00 inside the grace: catch-up
    service = _service(runtime, "leader")
    service.start()
    try:
        await wait(lambda: bool(_sql(db_path, "SELECT 1 FROM deliveries "
                                              "WHERE status = 'delivered'")))
        await wait(lambda: len(_witnessed(witness)) == 2)
    finally:
        service.shutdown()
    seq, sha = _head(db_path)
    latest = _witnessed(witness)[-1]
    assert latest["seq"] == seq and latest["head_sha256"] == sha == _event_sha(db_path, seq)
    assert {"seq", "head_sha256", "signer", "method", "signature"} <= latest.keys()
    [(delivered_seq,)] = _sql(db_path, "SELECT max(seq) FROM audit_events "
                                       "WHERE action = 'report.deliver'")
    assert delivered_seq is not None and delivered_seq <= latest["seq"]

    verify = ["--db", db_url, "--config", str(config), "audit", "verify",
              "--witness", str(witness)]
    capsys.readouterr()
    assert main(verify) == 0, capsys.readouterr().err

    # An attacker with write access deletes the last event and winds the head back.
    [(prev_seq, prev_sha)] = _sql(db_path, "SELECT seq, sha256 FROM audit_events "
                                           "WHERE seq < ? ORDER BY seq DESC LIMIT 1", seq)
    with sqlite3.connect(db_path) as conn:
        conn.execute("DROP TRIGGER audit_events_no_delete")
        conn.execute("DELETE FROM audit_events WHERE seq = ?", (seq,))
        conn.execute("UPDATE audit_head SET seq = ?, sha256 = ? WHERE id = 1",
                     (prev_seq, prev_sha))
    capsys.readouterr()
    assert main(verify) == 3
    err = capsys.readouterr().err
    assert f"seq {seq}" in err and "shorter than witnessed" in err, err


@pytest.mark.parametrize("live", [True, False], ids=["live", "dry-run"])
async def test_a_scheduled_live_worker_run_is_checkpointed_a_dry_run_is_not(
        make_runtime: Any, clock: Any, config: Path, witness: Path, db_path: Path,
        wait: Wait, live: bool) -> None:
    clock.now = datetime(2026, 11, 27, 7, 58, tzinfo=UTC)
    runtime = make_runtime(config)
    schedule = add_schedule(runtime.ctx, name="retries", cron="0 8 * * *",
                            kind="retry-worker", live=live)
    write_checkpoint(runtime.ctx, runtime.registry)
    clock.now = datetime(2026, 11, 27, 8, 1, tzinfo=UTC)
    service = _service(runtime, "leader")
    service.start()
    executed = _executed(service)
    try:
        await wait(lambda: any(j.startswith(schedule.schedule_id) for j in executed))
    finally:
        service.shutdown()
    mode = "live" if live else "dry_run"
    assert _sql(db_path, "SELECT mode FROM worker_runs") == [(mode,)]
    checkpoints = _witnessed(witness)
    if live:
        assert len(checkpoints) == 2
        seq, sha = _head(db_path)
        assert (checkpoints[-1]["seq"], checkpoints[-1]["head_sha256"]) == (seq, sha)
    else:
        assert len(checkpoints) == 1
        assert checkpoints[0]["seq"] < _head(db_path)[0]  # the dry run moved the head
