"""Start-up benchmark of two read-only commands (issue 9): `cavra metrics` and
`cavra schedule list`, each a fresh process, against a bare script that opens the same SQLite
file with SQLAlchemy Core and reads the same rows — measured in the same run, interleaved.

Target: each command's median wall time ≤ 1.5× the bare script's. Not a test: it prints
figures, it asserts nothing.

    .venv/bin/python tests/benchmarks/bench_cli.py [--repeats 15] [--db PATH] [--config PATH]

Without ``--db`` it measures two databases it makes: an empty one at the current schema (what
the issue measured) and the demo story (`cavra seed-demo`: schedules, providers, counters).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# The installed `cavra` script (what a person runs), else the module.
_SCRIPT = Path(sys.executable).with_name("cavra")
CAVRA = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "cavra_tui.cli"]
RATIO = 1.5

# The rows `cavra metrics` and `cavra schedule list` read, as plain SQL on SQLAlchemy Core:
# counters (all-time and the last 24 hourly buckets), the change marker, circuit state, the
# scheduler lease, the schedules, their latest runs and their missed/error counts.
BARE = r"""
import sys, time
from sqlalchemy import create_engine, text
url, what = sys.argv[1], sys.argv[2]
engine = create_engine(url)
now_bucket = int(time.time()) // 3600
with engine.connect() as conn:
    if what == "metrics":
        conn.execute(text("SELECT name, value FROM metric_counters WHERE bucket = 0")).all()
        conn.execute(text("SELECT name, bucket, value FROM metric_counters "
                          "WHERE bucket BETWEEN :a AND :b"),
                     {"a": now_bucket - 23, "b": now_bucket}).all()
        conn.execute(text("SELECT version FROM change_marker")).all()
        conn.execute(text("SELECT * FROM provider_health ORDER BY name LIMIT 200")).all()
    conn.execute(text("SELECT holder, expires_at FROM locks WHERE name = 'scheduler_leader'")
                 ).all()
    schedules = conn.execute(text("SELECT * FROM report_schedules WHERE removed = 0 "
                                  "ORDER BY name")).all()
    if schedules:
        conn.execute(text("SELECT schedule_id, max(scheduled_for) FROM schedule_runs "
                          "GROUP BY schedule_id")).all()
        conn.execute(text("SELECT schedule_id, max(started_at) FROM worker_runs "
                          "WHERE schedule_id IS NOT NULL GROUP BY schedule_id")).all()
        conn.execute(text("SELECT schedule_id, kind, count(*) FROM schedule_events "
                          "GROUP BY schedule_id, kind")).all()
    if what == "schedules":
        conn.execute(text("SELECT * FROM report_schedules WHERE removed = 0 ORDER BY name")
                     ).all()
print(len(schedules))
"""

COMMANDS = {"metrics": ["metrics"], "schedules": ["schedule", "list"]}
LABELS = {"metrics": "cavra metrics", "schedules": "cavra schedule list"}


@dataclass(frozen=True)
class Case:
    name: str
    db: Path


def wall(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,
                          check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command)} failed ({done.returncode}):\n"
                         f"{done.stderr[-2000:]}")
    return elapsed


def prepare(folder: Path, env: dict[str, str]) -> list[Case]:
    """Both at the current schema, so no run migrates (the demo seeds with its own config)."""
    empty, demo = folder / "empty.db", folder / "demo.db"
    # Read-only commands refuse a missing file: make the empty database with the migrations.
    wall([sys.executable, "-c", "import sys; from store.db import open_database; "
          "open_database(sys.argv[1]).dispose()", f"sqlite:///{empty}"], env)
    wall([*CAVRA, "--db", f"sqlite:///{demo}", "seed-demo"], env)
    return [Case("empty database", empty), Case("demo database", demo)]


def measure(case: Case, repeats: int, env: dict[str, str],
            config: list[str]) -> dict[str, tuple[float, float]]:
    """what → (cavra median, bare median), interleaved run by run."""
    url = f"sqlite:///{case.db}"
    samples: dict[str, tuple[list[float], list[float]]] = {w: ([], []) for w in COMMANDS}
    for run in range(repeats):
        for what, args in COMMANDS.items():
            cavra = [*CAVRA, "--db", url, *config, *args]
            bare = [sys.executable, "-c", BARE, url, what]
            # Alternate which goes first, so neither always runs on a warmer machine.
            pair = (cavra, bare) if run % 2 == 0 else (bare, cavra)
            first, second = wall(pair[0], env), wall(pair[1], env)
            ours, theirs = (first, second) if run % 2 == 0 else (second, first)
            samples[what][0].append(ours)
            samples[what][1].append(theirs)
    return {what: (statistics.median(c), statistics.median(b))
            for what, (c, b) in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="fresh processes per command")
    parser.add_argument("--db", help="measure this SQLite file only (it must be current)")
    parser.add_argument("--config", help="config file for cavra (default: none, built-ins)")
    args = parser.parse_args(argv)
    config = ["--config", str(Path(args.config).resolve())] if args.config else []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cavra-bench-cli-") as name:
        folder = Path(name)
        # No user config, log or data dir leaks in: XDG folders and the data dir are ours.
        env = {**os.environ, "CAVRA_DATA_DIR": str(folder / "data"),
               "XDG_CONFIG_HOME": str(folder / "config")}
        env.pop("CAVRA_DB_URL", None)
        env.pop("CAVRA_CONFIG", None)
        cases = ([Case(Path(args.db).name, Path(args.db).resolve())] if args.db
                 else prepare(folder, env))
        results = [(case, measure(case, args.repeats, env, config)) for case in cases]
    print(f"\nCAVRA CLI start-up: median wall time of {args.repeats} fresh processes each, "
          f"interleaved with the bare script; Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load average before {load_before:.1f} after "
          f"{os.getloadavg()[0]:.1f}; config: {args.config or 'none (built-in defaults)'}\n")
    header = (f"{'database':<16} {'command':<20} {'cavra':>8} {'bare':>8} {'ratio':>7}  "
              f"{'target':<8} result")
    print(header)
    print("-" * len(header))
    for case, figures in results:
        for what, (ours, bare) in figures.items():
            ratio = ours / bare
            verdict = "PASS" if ratio <= RATIO else "MISS"
            print(f"{case.name:<16} {LABELS[what]:<20} {ours:>6.3f} s {bare:>6.3f} s "
                  f"{ratio:>6.2f}×  ≤ {RATIO:g}×    {verdict}")
    print("\nbare = python -c: SQLAlchemy create_engine + the same SELECTs as text(), "
          "nothing else (no config, no migrations check, no output formatting)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
