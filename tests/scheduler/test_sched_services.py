"""Schedule management: validation, policy, audit (SPEC §8, §9)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from scheduler.schedules import add_schedule
from store.errors import NotFound, PolicyDenied, UserError
from store.services.schedules import (
    disable_schedule,
    enable_schedule,
    get_schedule,
    list_schedules,
    parse_duration,
    remove_schedule,
)
from store.tables import AuditEventRow


def test_add_report_schedule_is_stored_and_audited(make_runtime: Any, exec_config: Path) -> None:
    runtime = make_runtime(exec_config)
    schedule = add_schedule(runtime.ctx, name="exec-daily", cron="0  8 * * 1-5",
                            timezone="Europe/Berlin", providers=["exec-outbox"])
    assert schedule.schedule_id.startswith("sch-")
    assert (schedule.cron, schedule.timezone, schedule.providers) == (
        "0 8 * * 1-5", "Europe/Berlin", ["exec-outbox"])
    assert [s.schedule_id for s in list_schedules(runtime.ctx)] == [schedule.schedule_id]
    with runtime.db.read() as session:
        event = session.execute(select(AuditEventRow).order_by(AuditEventRow.seq.desc())
                                ).scalars().first()
    assert event is not None
    assert (event.action, event.decision, event.target_ids) == (
        "schedule.change", "allow", [schedule.schedule_id])
    assert "exec-daily" in event.detail


def test_no_provider_named_means_every_executive_channel(make_runtime: Any,
                                                         exec_config: Path) -> None:
    schedule = add_schedule(make_runtime(exec_config).ctx, name="all", every="1h")
    assert schedule.providers == ["exec-outbox", "outbox"]  # ops-outbox is not executive
    assert schedule.interval_s == 3600


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"cron": "61 * * * *"}, "cron '61 * * * *'"),
    ({"cron": "* * *"}, "3 fields: give five"),
    ({"cron": "0 8 * * 1-8"}, "day of week value 8 is outside 0-7"),
    ({"cron": "0 0 30 2 *"}, "day of month 30 never occurs"),
    ({"cron": "@reboot"}, "unknown macro"),
    ({"every": "5x"}, "duration '5x'"),
    ({"every": "0s"}, "between 1s and 366d"),
    ({"every": "1m", "timezone": "Mars/Olympus"}, "not a known IANA zone"),
    ({"every": "1m", "providers": ["ops-outbox"]}, "not an executive channel"),
    ({"every": "1m", "providers": ["nope"]}, "'nope' is not configured"),
    ({"every": "1m", "live": True}, "--live applies to retry-worker"),
    ({"every": "1m", "kind": "retry-worker", "providers": ["outbox"]}, "report schedules only"),
    ({"every": "1m", "kind": "backup"}, "choose report, retry-worker, report-retry or follow-up"),
    ({"every": "1m", "misfire_grace_s": 0}, "misfire grace"),
    ({}, "exactly one of --cron"),
    ({"cron": "0 8 * * *", "every": "1h"}, "exactly one of --cron"),
])
def test_bad_input_is_one_line_and_writes_nothing(make_runtime: Any, exec_config: Path, rows: Any,
                                                  kwargs: dict[str, Any], message: str) -> None:
    runtime = make_runtime(exec_config)
    before = rows(runtime)
    with pytest.raises(UserError) as error:
        add_schedule(runtime.ctx, name="bad", **kwargs)
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert rows(runtime) == before


def test_duplicate_name_is_refused(make_runtime: Any, exec_config: Path) -> None:
    runtime = make_runtime(exec_config)
    first = add_schedule(runtime.ctx, name="daily", every="1d")
    with pytest.raises(UserError, match="already exists"):
        add_schedule(runtime.ctx, name="daily", every="1h")
    remove_schedule(runtime.ctx, first.schedule_id)
    add_schedule(runtime.ctx, name="daily", every="1h")  # the name is free again


def test_durations() -> None:
    assert [parse_duration(t) for t in ("30s", "5m", "1h", "1d")] == [30, 300, 3600, 86400]
    with pytest.raises(UserError):
        parse_duration("1w")


def test_enable_disable_remove_by_id_or_name(make_runtime: Any, exec_config: Path) -> None:
    runtime = make_runtime(exec_config)
    schedule = add_schedule(runtime.ctx, name="nightly", cron="0 2 * * *")
    assert not disable_schedule(runtime.ctx, "nightly").enabled
    assert enable_schedule(runtime.ctx, schedule.schedule_id).enabled
    remove_schedule(runtime.ctx, "nightly")
    assert list_schedules(runtime.ctx) == []
    with pytest.raises(NotFound):
        get_schedule(runtime.ctx, schedule.schedule_id)
    with pytest.raises(NotFound):
        enable_schedule(runtime.ctx, schedule.schedule_id)


def test_operator_may_not_change_schedules_and_the_denial_is_audited(
        make_runtime: Any, roles_config: Path, rows: Any) -> None:
    bob = make_runtime(roles_config, user="bob")
    before = rows(bob)
    with pytest.raises(PolicyDenied, match="schedule.change needs release_manager"):
        add_schedule(bob.ctx, name="exec", every="1h")
    after = rows(bob)
    assert after["report_schedules"] == before["report_schedules"]
    with bob.db.read() as session:
        event = session.execute(select(AuditEventRow).order_by(AuditEventRow.seq.desc())
                                ).scalars().first()
    assert event is not None and (event.actor, event.decision) == ("bob", "deny")


def test_live_retry_worker_schedule_needs_release_manager(make_runtime: Any,
                                                          roles_config: Path) -> None:
    alice = make_runtime(roles_config, user="alice")
    schedule = add_schedule(alice.ctx, name="live-retries", every="15m", kind="retry-worker",
                            live=True)
    assert schedule.live and schedule.kind == "retry-worker" and schedule.providers == []
    carol = make_runtime(roles_config, user="carol")
    with pytest.raises(PolicyDenied):
        disable_schedule(carol.ctx, schedule.schedule_id)
