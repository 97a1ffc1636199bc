"""Build (or reuse) a big CAVRA SQLite database for benchmarks.

Default size: 1,000,000 execution records and 100,000 deliveries, with the plans, acks,
worker runs, retry plans, reports and audit chain around them (see bulk_story.py). The schema
comes from store.db.open_database (the real migrations); rows then go in with executemany in
one transaction with the journal off. The file is cached under $CAVRA_BENCH_CACHE (default: the
temp dir)/cavra-bench, keyed by SEED_VERSION, the schema head and the sizes, so re-runs reuse it.

    .venv/bin/python tests/benchmarks/bulk_seed.py            # build or reuse, print the path
    .venv/bin/python tests/benchmarks/bulk_seed.py --check    # ... and verify counters + chain
    .venv/bin/python tests/benchmarks/bulk_seed.py --fresh --executions 20000 --deliveries 2000
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from bulk_sink import Sink, check_schema
from bulk_story import END, Sizes, Story
from sqlalchemy import func, select, text

from cavra_tui.bootstrap import build_runtime
from store.audit import verify_chain
from store.clock import fixed_clock
from store.db import MIGRATIONS, open_database
from store.services.metrics import read_metrics
from store.tables import DeliveryRow, ExecutionRecordRow, MetricCounterRow

SEED_VERSION = "5"  # bump when bulk_story/bulk_sink change what they write
BIG_TABLES = ("execution_records", "deliveries", "audit_events")
CONFIG_TOML = """\
# Providers the bulk-seeded history names. Secrets come from env vars (unset here: nothing
# is ever sent by the benchmark).
[providers.ops-webhook]
kind = "webhook"
url_env = "CAVRA_BENCH_OPS_WEBHOOK_URL"

[providers.pagerduty]
kind = "pagerduty"
routing_key_env = "CAVRA_BENCH_PAGERDUTY_KEY"

[providers.exec-slack]
kind = "slack"
url_env = "CAVRA_BENCH_EXEC_SLACK_URL"
audience = ["executive"]

[routing]
critical = ["pagerduty", "ops-webhook"]
warning = ["ops-webhook"]
"""


def cache_dir() -> Path:
    return Path(os.environ.get("CAVRA_BENCH_CACHE") or tempfile.gettempdir()) / "cavra-bench"


def schema_head() -> str:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return str(ScriptDirectory.from_config(config).get_current_head())


def database_path(sizes: Sizes) -> Path:
    return cache_dir() / (f"bulk-v{SEED_VERSION}-s{schema_head()}-"
                          f"{sizes.executions}x{sizes.deliveries}.db")


def config_path() -> Path:
    """The config the benchmark runs the console with (providers named in the history)."""
    path = cache_dir() / "bench-config.toml"
    if not path.exists() or path.read_text(encoding="utf-8") != CONFIG_TOML:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CONFIG_TOML, encoding="utf-8")
    return path


def ensure_database(sizes: Sizes | None = None, *, fresh: bool = False,
                    quiet: bool = False) -> Path:
    """The cached database for ``sizes``, built first if missing (or if ``fresh``)."""
    sizes = sizes or Sizes()
    path = database_path(sizes)
    config_path()
    if path.exists() and not fresh:
        return path
    started = time.perf_counter()
    build(path, sizes)
    if not quiet:
        print(f"bulk_seed: built {path.name} in {time.perf_counter() - started:.1f}s",
              file=sys.stderr)
    return path


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def build(path: Path, sizes: Sizes) -> None:
    check_schema()
    building = path.with_name(path.name + ".building")
    _remove(building)
    open_database(f"sqlite:///{building}").dispose()  # the real migrations, then bulk rows
    conn = sqlite3.connect(building, isolation_level=None)
    try:
        # Nothing to protect while building: no journal, no fsync, a big page cache.
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-400000",
                       "temp_store=MEMORY", "foreign_keys=OFF"):
            conn.execute(f"PRAGMA {pragma}")
        # Secondary indexes build faster in one sort afterwards than row by row.
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({', '.join('?' * len(BIG_TABLES))})", BIG_TABLES).fetchall()
        for name, _sql in indexes:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("BEGIN")
        sink = Sink(conn)
        Story(sink, sizes).write()
        sink.finish()
        conn.execute("COMMIT")
        for _name, sql in indexes:
            conn.execute(sql)
        conn.execute("PRAGMA journal_mode=WAL")  # what the app uses; it sets it on connect too
    except BaseException:
        conn.close()
        _remove(building)
        raise
    conn.close()
    os.replace(building, path)
    _remove(building)


def check(path: Path) -> list[str]:
    """Counters match the rows they count and the audit chain verifies. Returns problems."""
    database = open_database(f"sqlite:///{path}")
    problems = []
    try:
        with database.read() as session:
            counters = dict(session.execute(select(MetricCounterRow.name, MetricCounterRow.value)
                                            .where(MetricCounterRow.bucket == 0)).all())
            for status, count in session.execute(select(
                    ExecutionRecordRow.status, func.count()).group_by(ExecutionRecordRow.status)):
                if counters.get(f"retry_executions.{status}") != count:
                    problems.append(f"retry_executions.{status}: counter "
                                    f"{counters.get(f'retry_executions.{status}')} rows {count}")
            for kind, status, count in session.execute(select(
                    DeliveryRow.kind, DeliveryRow.status, func.count())
                    .group_by(DeliveryRow.kind, DeliveryRow.status)):
                name = f"{kind}_deliveries.{status}"
                if counters.get(name) != count:
                    problems.append(f"{name}: counter {counters.get(name)} rows {count}")
            for gauge, table, where in (("ack_pending", "pair_state", "ack_pending"),
                                        ("open_escalations", "plan_state", "open")):
                rows = session.execute(text(f"SELECT count(*) FROM {table} WHERE {where}")
                                       ).scalar_one()
                if counters.get(gauge) != rows:
                    problems.append(f"{gauge}: gauge {counters.get(gauge)} rows {rows}")
            chain = verify_chain(session)
            if not chain.ok:
                problems.append(chain.describe())
        runtime = build_runtime(db_url=f"sqlite:///{path}", clock=fixed_clock(END))
        try:
            metrics = read_metrics(runtime.ctx, END)
        finally:
            runtime.close()
        print(f"bulk_seed: {chain.describe()}; dashboard alert level {metrics.alert_level}, "
              f"executions {sum(metrics.retry_executions.values())}", file=sys.stderr)
    finally:
        database.dispose()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=Sizes.executions)
    parser.add_argument("--deliveries", type=int, default=Sizes.deliveries)
    parser.add_argument("--fresh", action="store_true", help="rebuild even if cached")
    parser.add_argument("--check", action="store_true", help="verify counters and audit chain")
    args = parser.parse_args(argv)
    if args.executions < 1 or args.deliveries < 1:
        parser.error("--executions and --deliveries must be at least 1")
    path = ensure_database(Sizes(args.executions, args.deliveries), fresh=args.fresh)
    print(path)
    if args.check:
        problems = check(path)
        for problem in problems:
            print(f"bulk_seed: MISMATCH {problem}", file=sys.stderr)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
