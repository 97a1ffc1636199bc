"""Fixtures for scheduler tests: configs with executive channels and a bounded wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cavra_tui.bootstrap import Runtime
from store.tables import AuditEventRow, ScheduleEventRow, ScheduleRow, ScheduleRunRow

EXEC_CONFIG = """
[providers.exec-outbox]
kind = "outbox"
path = "exec-outbox.jsonl"
audience = ["executive"]

[providers.ops-outbox]
kind = "outbox"
path = "ops-outbox.jsonl"
audience = ["operations"]
"""

ROLES_CONFIG = EXEC_CONFIG + """
[roles]
release_manager = ["alice"]
operator = ["bob"]
auditor = ["carol"]
"""


@pytest.fixture
def exec_config(write_config: Callable[[str], Path]) -> Path:
    return write_config(EXEC_CONFIG)


@pytest.fixture
def roles_config(write_config: Callable[[str], Path]) -> Path:
    return write_config(ROLES_CONFIG)


def count_rows(runtime: Runtime) -> dict[str, int]:
    """What a rejected request must leave unchanged."""
    with runtime.db.read() as session:
        return {table.__tablename__: session.execute(
            select(func.count()).select_from(table)).scalar_one()
            for table in (ScheduleRow, ScheduleRunRow, ScheduleEventRow, AuditEventRow)}


async def wait_until(check: Callable[[], bool], timeout_s: float = 8.0) -> None:
    """Poll a condition a scheduler thread will make true; fail (not hang) after timeout."""
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.05)


@pytest.fixture
def wait() -> Callable[..., Awaitable[None]]:
    return wait_until


@pytest.fixture
def rows() -> Callable[[Runtime], dict[str, int]]:
    return count_rows
