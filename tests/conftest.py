"""Shared fixtures: a real SQLite database in a temp folder, a config file, a steerable clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cavra_tui.bootstrap import Runtime, build_runtime

FROZEN_NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class SteppingClock:
    """A clock tests move by hand: ``clock.advance(minutes=30)``."""

    def __init__(self, start: datetime = FROZEN_NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the real user data dir or config from a test."""
    monkeypatch.setenv("CAVRA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CAVRA_DB_URL", raising=False)
    monkeypatch.delenv("CAVRA_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "cavra.db"


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "cavra.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Modules marked ``backends`` run on SQLite and on PostgreSQL."""
    if metafunc.definition.get_closest_marker("backends") and (
            "db_backend" in metafunc.fixturenames):
        metafunc.parametrize("db_backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def db_url(db_backend: str, db_path: Path) -> Iterator[str]:
    """A fresh database: a SQLite file, or a new PostgreSQL database on the server named by
    ``CAVRA_TEST_PG_URL`` (``.ci/run`` starts one; without it those cases skip)."""
    if db_backend == "sqlite":
        yield f"sqlite:///{db_path}"
        return
    admin_url = os.environ.get("CAVRA_TEST_PG_URL")
    if not admin_url:
        pytest.skip("no PostgreSQL server: set CAVRA_TEST_PG_URL (see .ci/run)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"cavra_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def make_runtime(db_url: str, clock: SteppingClock) -> Iterator[Callable[..., Runtime]]:
    """Build runtimes exactly as the CLI does, on the test's database and clock."""
    built: list[Runtime] = []

    def make(config: Path | None = None, *, read_only: bool = False,
             user: str | None = None) -> Runtime:
        runtime = build_runtime(db_url=db_url,
                                config_path=str(config) if config else None,
                                read_only=read_only, clock=clock, user=user)
        built.append(runtime)
        return runtime

    yield make
    for runtime in built:
        runtime.close()


def current_user() -> str:
    from store.policy import current_user as who

    return who()


os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
