"""Benchmark of the CAVRA console on a big database, beside a bare Textual app (issues 3, 11).

With 1,000,000 execution records and 100,000 deliveries (bulk_seed.py) it measures, each in
fresh processes and side by side with a bare Textual app holding an empty DataTable: the
console's first frame and the dashboard complete, from launch (the console starts as `cavra`
does: a placeholder frame, the runtime built in a worker), time to paint the retry runs
screen, page-down in its execution list, and resident memory. Targets: first frame and
dashboard complete ≤ 1.5× bare, page-down < 50 ms, RSS ≤ 1.5× bare. Not a test: it prints
figures, it asserts nothing.

    .venv/bin/python tests/benchmarks/bench_console.py [--repeats 5] [--presses 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulk_seed import config_path, ensure_database
from bulk_story import END, Sizes

HERE = Path(__file__).resolve().parent
PROBE = HERE / "bench_probes.py"
PROBE_TIMEOUT_S = 300
PAINT_RATIO = 1.5
RSS_RATIO = 1.5
PAGE_DOWN_S = 0.050


@dataclass(frozen=True)
class Figure:
    label: str
    console: float | None
    bare: float | None
    unit: str  # "s" | "ms" | "MiB"
    target: str  # "ratio" (≤ PAINT/RSS ratio × bare), "absolute" (< PAGE_DOWN_S) or "info"
    limit: float | None = None


def run_probe(kind: str, workdir: Path, run: int, args: argparse.Namespace,
              db: Path | None = None, profile: Path | None = None) -> dict[str, Any]:
    out = workdir / f"{kind}-{run}.json"
    command = [sys.executable, str(PROBE), kind, "--out", str(out),
               "--presses", str(args.presses)]
    if db is not None:
        command += ["--db", str(db), "--config", str(config_path()), "--now", END.isoformat()]
    if profile is not None:
        command += ["--profile", str(profile)]
    env = {**os.environ, "CAVRA_DATA_DIR": str(workdir / "data")}
    spawned = time.perf_counter()  # perf_counter is CLOCK_MONOTONIC: comparable across processes
    done = subprocess.run(command, cwd=HERE, env=env, capture_output=True, text=True,
                          timeout=PROBE_TIMEOUT_S, check=False)
    if done.returncode != 0 or not out.exists():
        raise SystemExit(f"bench: the {kind} probe failed (exit {done.returncode}):\n"
                         f"{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    result["t_spawn"] = spawned
    return result


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """Per-figure medians over the runs; page-down pooled over every press of every run."""

    def each(pick: Callable[[dict[str, Any]], float | None]) -> float | None:
        return median([pick(r) for r in runs])

    presses = [p for r in runs for p in r["pagedown_s"]]
    measured = sorted(p for p in presses if p is not None)
    return {
        "launch_frame": each(lambda r: r["first_frame"] - r["t_spawn"]),
        "launch_dashboard": each(lambda r: r["dashboard_frame"] - r["t_spawn"]
                                 if r["dashboard_frame"] else None),
        "launch_ready": each(lambda r: r["ready"] - r["t_spawn"] if r["ready"] else None),
        "imports": each(lambda r: r["t_imported"] - r["t_start"]),
        "app_frame": each(lambda r: r["first_frame"] - r["t_run"]),
        "app_ready": each(lambda r: r["ready"] - r["t_run"] if r["ready"] else None),
        "switch": each(lambda r: r["switch_s"]),
        "revisit": each(lambda r: r["revisit_s"]),
        "pagedown": statistics.median(measured) if measured else None,
        "pagedown_p90": measured[int(0.9 * (len(measured) - 1))] if measured else None,
        "pagedown_silent": float(len(presses) - len(measured)),
        "pagedown_fetching": median([p for r in runs for p, f in zip(
            r["pagedown_settled_s"], r["fetched"], strict=True) if f]),
        "fetches": float(sum(f for r in runs for f in r["fetched"])),
        "stalls": float(sum(f for r in runs for f in r["stalled"])),
        "rss": each(lambda r: r["rss_kib"] / 1024),
        "rss_end": each(lambda r: r["rss_end_kib"] / 1024),
        "rss_imports": each(lambda r: r["imported_kib"] / 1024),
        "runtime": each(lambda r: r["runtime_s"]),
        "rows_loaded": each(lambda r: r["rows_loaded"]),
        "table_height": each(lambda r: r["visible_rows"]),
    }


def figures(console: dict[str, float | None], bare: dict[str, float | None]) -> list[Figure]:
    return [
        Figure("console first frame, from launch", console["launch_frame"],
               bare["launch_frame"], "s", "ratio", PAINT_RATIO),
        Figure("dashboard complete, from launch", console["launch_ready"],
               bare["launch_ready"], "s", "ratio", PAINT_RATIO),
        Figure("dashboard first frame, from launch", console["launch_dashboard"],
               bare["launch_frame"], "s", "info"),
        Figure("console first frame, from app start", console["app_frame"],
               bare["app_frame"], "ms", "ratio", PAINT_RATIO),
        Figure("dashboard complete, from app start", console["app_ready"], bare["app_ready"],
               "ms", "ratio", PAINT_RATIO),
        Figure("retry runs screen complete, 1st visit", console["switch"], bare["switch"], "ms",
               "ratio", PAINT_RATIO),
        Figure("retry runs screen complete, revisit", console["revisit"], bare["revisit"], "ms",
               "ratio", PAINT_RATIO),
        Figure("page-down in execution list, median", console["pagedown"], bare["pagedown"],
               "ms", "absolute", PAGE_DOWN_S),
        Figure("page-down, 90th percentile", console["pagedown_p90"], bare["pagedown_p90"],
               "ms", "absolute", PAGE_DOWN_S),
        Figure("RSS after dashboard complete", console["rss"], bare["rss"], "MiB", "ratio",
               RSS_RATIO),
        Figure("RSS after all steps", console["rss_end"], bare["rss_end"], "MiB", "ratio",
               RSS_RATIO),
        Figure("imports (info)", console["imports"], bare["imports"], "ms", "info"),
        Figure("RSS after imports (info)", console["rss_imports"], bare["rss_imports"], "MiB",
               "info"),
    ]


def show(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ms":
        return f"{value * 1000:.0f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:.0f} {unit}"


def verdict(figure: Figure) -> tuple[str, str, str]:
    """(ratio, target, PASS/MISS)."""
    ratio = (f"{figure.console / figure.bare:.2f}×" if figure.console is not None
             and figure.bare else "n/a")
    if figure.target == "info" or figure.console is None:
        return ratio, "", ""
    if figure.target == "absolute":
        assert figure.limit is not None
        return ratio, f"< {figure.limit * 1000:.0f} ms", (
            "PASS" if figure.console < figure.limit else "MISS")
    assert figure.limit is not None and figure.bare
    return ratio, f"≤ {figure.limit:g}× bare", (
        "PASS" if figure.console <= figure.limit * figure.bare else "MISS")


def print_table(rows: list[Figure]) -> None:
    header = f"{'figure':<40} {'console':>10} {'bare app':>10} {'ratio':>7}  {'target':<12} result"
    print(header)
    print("-" * len(header))
    for figure in rows:
        ratio, target, result = verdict(figure)
        print(f"{figure.label:<40} {show(figure.console, figure.unit):>10} "
              f"{show(figure.bare, figure.unit):>10} {ratio:>7}  {target:<12} {result}")


def change_version(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT version FROM change_marker").fetchone()[0])


def service_timings(db: Path) -> list[tuple[str, float | None, str]]:
    """The reads behind the measured screens, timed warm in this process (median of 5)."""
    from cavra_tui.bootstrap import build_runtime
    from scheduler.status import read_scheduler_status
    from store.clock import fixed_clock
    from store.services import listing
    from store.services.audit_listing import list_audit_events
    from store.services.health import read_health
    from store.services.metrics import read_metrics

    runtime = build_runtime(db_url=f"sqlite:///{db}", config_path=str(config_path()),
                            clock=fixed_clock(END))
    ctx = runtime.ctx

    def cursor_after(fetch: Callable[..., Any], pages: int) -> str | None:
        cursor = None
        for _ in range(pages):
            cursor = fetch(ctx, cursor=cursor).next_cursor
        return cursor

    calls: list[tuple[str, Callable[[], Any]]] = [
        ("read_metrics", lambda: read_metrics(ctx, END)),
        ("read_health", lambda: read_health(ctx)),
        ("read_scheduler_status", lambda: read_scheduler_status(ctx, END)),
        ("list_audit_events(limit=8)", lambda: list_audit_events(ctx, limit=8)),
        ("list_worker_runs", lambda: listing.list_worker_runs(ctx)),
        ("list_executions", lambda: listing.list_executions(ctx)),
        ("list_executions, 20th page", lambda: listing.list_executions(
            ctx, cursor=deep_cursor)),
        ("list_retry_plans", lambda: listing.list_retry_plans(ctx)),
    ]
    timings = []
    try:
        deep_cursor = cursor_after(listing.list_executions, 19)
        for label, call in calls:
            try:
                samples = []
                for _ in range(5):
                    started = time.perf_counter()
                    call()
                    samples.append(time.perf_counter() - started)
                timings.append((label, statistics.median(samples), ""))
            except Exception as exc:  # the console's services are still moving: say so
                timings.append((label, None, f"{exc.__class__.__name__}: {exc}"[:80]))
    finally:
        runtime.close()
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per app")
    parser.add_argument("--presses", type=int, default=20, help="page-downs per run")
    parser.add_argument("--executions", type=int, default=Sizes.executions)
    parser.add_argument("--deliveries", type=int, default=Sizes.deliveries)
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached database")
    parser.add_argument("--profile", metavar="PATH",
                        help="also run the console once under cProfile, stats to PATH")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.presses < 1:
        parser.error("--repeats and --presses must be at least 1")
    sizes = Sizes(args.executions, args.deliveries)
    db = ensure_database(sizes, fresh=args.fresh)
    version_before = change_version(db)
    load_before = os.getloadavg()[0]  # other work on the machine skews every figure
    console_runs: list[dict[str, Any]] = []
    bare_runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cavra-bench-") as folder:
        workdir = Path(folder)
        for run in range(args.repeats):  # interleaved, so drift on the machine hits both
            bare_runs.append(run_probe("bare", workdir, run, args))
            console_runs.append(run_probe("console", workdir, run, args, db=db))
            print(f"bench: run {run + 1}/{args.repeats} done", file=sys.stderr)
        if args.profile:
            run_probe("console", workdir, args.repeats, args, db=db,
                      profile=Path(args.profile).resolve())
    console, bare = summarise(console_runs), summarise(bare_runs)
    import textual

    size_mib = db.stat().st_size / 2**20
    print(f"\nCAVRA console benchmark: {sizes.executions:,} execution records, "
          f"{sizes.deliveries:,} deliveries ({db.name}, {size_mib:.0f} MiB)")
    print(f"terminal 120×40 headless; median of {args.repeats} fresh processes per app; "
          f"page-down: {args.presses} presses per run; Python {platform.python_version()}, "
          f"Textual {textual.__version__}, {os.cpu_count()} CPUs, load average before "
          f"{load_before:.1f} after {os.getloadavg()[0]:.1f}\n")
    print_table(figures(console, bare))
    print(f"\nconsole: runtime build (in the start-up worker) {show(console['runtime'], 'ms')}; "
          "execution list "
          f"{console['table_height']:.0f} lines tall, {console['rows_loaded']:.0f} rows loaded "
          f"after the page-downs;\n         {console['fetches']:.0f} presses fetched the next "
          f"page (until it was shown too: median {show(console['pagedown_fetching'], 'ms')}); "
          f"{console['stalls']:.0f} presses moved less than a page (ran out of loaded rows)")
    print(f"bare:    one full-screen DataTable, {bare['table_height']:.0f} lines tall; for "
          f"page-down it holds {bare['rows_loaded']:.0f} in-memory rows (an empty table "
          "cannot page)")
    print("first frame = first screen update (the console's: its start-up placeholder); "
          "dashboard first frame = first update showing the dashboard;\ncomplete = last update "
          "before the app went quiet (no worker, no frame for 0.3 s); page-down = key to the "
          "first frame with the\ncursor on its new row (rows it moved onto are on screen)")
    print("\nservice reads behind these screens (warm, in-process, median of 5):")
    for label, seconds, error in service_timings(db):
        print(f"  {label:<32} {show(seconds, 'ms') if seconds is not None else error}")
    if change_version(db) != version_before:
        print("\nbench: WARNING the console wrote to the benchmark database "
              "(change marker moved); rebuild with --fresh for the next run", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
