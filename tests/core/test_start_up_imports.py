"""Starting fast (issue 11), checked where it can break: what a command or the console's first
frame imports, in a fresh interpreter, and the light Core tables the quick reads use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import DateTime, TableClause

from store.core_tables import CORE_TABLES
from store.settings import EnvSettings
from store.tables import Base

ROOT = Path(__file__).parents[2]


def _loaded(code: str, tmp_path: Path) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    out = tmp_path / "modules.json"
    script = f"{code}\nimport json, sys\njson.dump(sorted(sys.modules), open({str(out)!r}, 'w'))"
    env = {**os.environ, "CAVRA_DATA_DIR": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(out.read_text(encoding="utf-8")))


def _packages(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_metrics_on_a_current_database_loads_no_textual_alembic_or_connectors(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cavra.db'}"
    _loaded(f"from cavra_tui.cli import main; "
            f"assert main(['--db', {url!r}, 'escalation', 'plan']) == 0",
            tmp_path)  # creates the database: the migrations need Alembic, this once
    modules = _loaded(
        f"import cavra_tui.cli\nassert cavra_tui.cli.main(['--db', {url!r}, 'metrics']) == 0",
        tmp_path)
    assert "store.services.metrics" in modules  # it did read the metrics
    assert _packages(modules) & {"textual", "alembic", "httpx", "apscheduler",
                                 "pydantic_settings"} == set()
    # Nor the ORM: the read runs on SQLAlchemy Core (store.core_tables).
    assert {"sqlalchemy.orm", "store.tables", "store.audit", "workflows"} & modules == set()


def test_the_console_module_loads_only_textual(tmp_path: Path) -> None:
    """Everything the first frame needs: the app, the console launcher, the command line."""
    modules = _loaded("import cavra_tui.app, cavra_tui.console, cavra_tui.cli\n"
                      "cavra_tui.cli.build_parser()", tmp_path)
    assert "textual.app" in modules
    assert _packages(modules) & {"sqlalchemy", "pydantic", "alembic", "httpx", "apscheduler",
                                 "workflows", "scheduler"} == set()
    assert {m for m in modules if m.split(".")[0] == "store"} <= {
        "store", "store.errors", "store.settings", "store.schedule_limits"}


@pytest.mark.parametrize("light", CORE_TABLES, ids=lambda table: table.name)
def test_each_light_table_matches_the_orm_schema(light: TableClause) -> None:
    """store.core_tables restates a few columns without the ORM: same names, same kinds."""
    orm = Base.metadata.tables[light.name]
    for column in light.columns:
        assert column.name in orm.columns, f"{light.name}.{column.name}"
        mapped = orm.columns[column.name].type
        assert column.type._type_affinity is mapped._type_affinity, column.name
        if isinstance(mapped, DateTime):
            assert column.type.timezone == mapped.timezone, column.name


def test_the_environment_settings_are_the_three_cavra_variables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CAVRA_DB_URL", "CAVRA_CONFIG", "CAVRA_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CAVRA_DB_URL", "sqlite:///x.db")
    monkeypatch.setenv("cavra_config", "/etc/cavra.toml")  # any case, as pydantic-settings read
    assert EnvSettings() == EnvSettings(db_url="sqlite:///x.db", config="/etc/cavra.toml",
                                        data_dir=None)


def test_the_dashboards_reads_load_no_orm(tmp_path: Path) -> None:
    """The dashboard's first numbers (metrics, health, the scheduler, the activity feed) are
    Core reads: its Health tile does not wait for ``sqlalchemy.orm`` and every mapper."""
    url = f"sqlite:///{tmp_path / 'cavra.db'}"
    _loaded(f"from cavra_tui.cli import main; "
            f"assert main(['--db', {url!r}, 'escalation', 'plan']) == 0", tmp_path)
    modules = _loaded(
        "from cavra_tui.bootstrap import build_runtime\n"
        "from scheduler.status import read_scheduler_status\n"
        "from store.services.audit_listing import list_audit_events\n"
        "from store.services.health import read_health\n"
        "from store.services.metrics import read_metrics\n"
        f"runtime = build_runtime(db_url={url!r})\n"
        "now = runtime.ctx.clock()\n"
        "assert read_health(runtime.ctx).status\n"
        "read_metrics(runtime.ctx, now); read_scheduler_status(runtime.ctx, now)\n"
        "list_audit_events(runtime.ctx, limit=8)\n", tmp_path)
    assert "store.services.health" in modules
    assert {"sqlalchemy.orm", "store.tables"} & modules == set()
