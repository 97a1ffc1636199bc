"""Keyset-paged lists (store.services.listing): every record once, newest first, even when
many records share one timestamp (a frozen clock makes them all tie); read on Core tables that
restate the ORM schema, so a list's screen never loads the ORM."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import DateTime, TableClause

from cavra_tui.bootstrap import Runtime
from store.core_tables import WHOLE_TABLES
from store.errors import UserError
from store.models import RecoveryItem
from store.services.escalation import build_plan
from store.services.listing import list_audit_events, list_plans
from store.services.recovery import import_recovery_items
from store.tables import Base

ROOT = Path(__file__).parents[2]


def _plans(runtime: Runtime, count: int) -> list[str]:
    import_recovery_items(runtime.ctx, [RecoveryItem(
        recovery_id="rec-1", connector="payments-api", category="rollback",
        opened_at=runtime.ctx.clock())])
    return [build_plan(runtime.ctx).plan_id for _ in range(count)]


def test_pages_walk_every_record_once_in_order_despite_equal_timestamps(
        runtime: Runtime) -> None:
    made = _plans(runtime, 23)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = list_plans(runtime.ctx, cursor=cursor, limit=5)
        seen += [plan.plan_id for plan in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 5
    assert seen == sorted(made, reverse=True)  # same created_at: the ID breaks the tie


def test_search_and_bad_cursor(runtime: Runtime) -> None:
    made = _plans(runtime, 3)
    assert [p.plan_id for p in list_plans(runtime.ctx, search=made[1]).items] == [made[1]]
    with pytest.raises(UserError, match="cursor"):
        list_plans(runtime.ctx, cursor="not-a-cursor")
    with pytest.raises(UserError, match="page size"):
        list_plans(runtime.ctx, limit=0)


def test_audit_events_page_by_sequence(runtime: Runtime) -> None:
    _plans(runtime, 4)
    first = list_audit_events(runtime.ctx, limit=3)
    rest = list_audit_events(runtime.ctx, cursor=first.next_cursor, limit=10)
    seqs = [e.seq for e in first.items + rest.items]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs) == seqs[0]
    assert rest.next_cursor is None


@pytest.mark.parametrize("light", WHOLE_TABLES, ids=lambda table: table.name)
def test_each_listed_table_restates_every_column_of_the_orm_schema(light: TableClause) -> None:
    """The lists read Core clauses (no ORM when a list's screen is first shown), and each row
    becomes a model: every column must be there, of the same kind."""
    orm = Base.metadata.tables[light.name]
    assert [c.name for c in light.columns] == [c.name for c in orm.columns]
    for column in light.columns:
        mapped = orm.columns[column.name].type
        assert column.type._type_affinity is mapped._type_affinity, column.name
        if isinstance(mapped, DateTime):
            assert column.type.timezone == mapped.timezone, column.name


def test_a_lists_screen_reads_without_the_orm(tmp_path: Path) -> None:
    """Showing the retry runs screen the first time imports its module and runs its lists on
    the event loop's side: mapping every ORM class there would hold up the screen."""
    url = f"sqlite:///{tmp_path / 'cavra.db'}"
    env = {**os.environ, "CAVRA_DATA_DIR": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}

    def run(code: str) -> None:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              cwd=ROOT, env=env, timeout=120, check=False)
        assert done.returncode == 0, done.stderr

    run(f"from cavra_tui.cli import main; "
        f"assert main(['--db', {url!r}, 'escalation', 'plan']) == 0")  # makes the database
    run("import sys\n"
        "from cavra_tui.bootstrap import build_runtime\n"
        "import cavra_tui.screens.retry_runs\n"
        "from store.services import listing\n"
        f"ctx = build_runtime(db_url={url!r}).ctx\n"
        "for read in (listing.list_worker_runs, listing.list_executions, "
        "listing.list_retry_plans, listing.list_plans, listing.list_deliveries, "
        "listing.list_acknowledgements, listing.list_schedule_runs):\n"
        "    read(ctx, search='x'); read(ctx)\n"
        "listing.list_pending_pairs(ctx); listing.latest_ack_states(ctx, [('p', 'q')])\n"
        "loaded = {'sqlalchemy.orm', 'store.tables'} & set(sys.modules)\n"
        "assert not loaded, loaded\n")
