"""The live retry worker against loopback HTTP servers, beside baselines measured in the same run.

Not a test: it asserts nothing and prints figures for a human to read.

    .venv/bin/python tests/benchmarks/bench_live_worker.py [--repeats 5] [--only a|b]
        [--concurrency 8] [--postgres ADMIN_URL] [--profile FILE]

(a) 100 pairs, one provider, a server that answers at once: the live worker's sends/s beside
    a pooled ``httpx.Client`` posting 100 requests one after another to the same server
    (target ≥ 0.5×).
(b) 100 pairs over 10 providers, one of whose servers answers after 2 s: the run's wall time
    beside the time of that provider's pairs posted in parallel (as many at once as the run
    may send, ``[retry] concurrency``) — target ≤ 1.5×. Also shown against all of them at
    once (no limit), which no run capped at 8 can reach when the provider has 10 pairs.

Each database is built in a temp folder with the real services (import items, plan, deliver
to a failing server, accept each pair), so the run starts from what an operator would have.
The default is a SQLite file; ``--postgres`` names a PostgreSQL server on which each
scenario creates (and drops) a database of its own.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cavra_tui.bootstrap import Runtime, build_runtime  # noqa: E402
from store.models import RecoveryItem  # noqa: E402
from store.services.acknowledgements import acknowledge  # noqa: E402
from store.services.escalation import build_plan  # noqa: E402
from store.services.recovery import import_recovery_items  # noqa: E402
from tests.loopback import LoopbackHTTP, running_loopback  # noqa: E402
from workflows.delivery import deliver_escalation  # noqa: E402
from workflows.worker import run_retry_worker  # noqa: E402

START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CONCURRENCY = 8
SLOW_S = 2.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Scenario:
    runtime: Runtime
    clock: Clock
    servers: dict[str, LoopbackHTTP]


def _config(folder: Path, providers: list[str]) -> Path:
    blocks = [f'[providers.{name}]\nkind = "webhook"\nurl_env = "CAVRA_BENCH_{name.upper()}"\n'
              f"timeout_s = 5\n" for name in providers]
    listed = ", ".join(f'"{name}"' for name in providers)
    text = "\n".join(blocks) + (
        f'\n[routing]\ncritical = [{listed}]\nwarning = [{listed}]\nfallback = "outbox"\n'
        f"\n[retry]\nmax_deliveries = 100\nconcurrency = {CONCURRENCY}\n"
        "\n[circuit]\nfailure_threshold = 1000\n")
    path = folder / "cavra.toml"
    path.write_text(text, encoding="utf-8")
    return path


@contextmanager
def fresh_database(folder: Path, postgres: str | None) -> Iterator[str]:
    if postgres is None:
        yield f"sqlite:///{folder / 'cavra.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"cavra_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def scenario(folder: Path, postgres: str | None, providers: int,
             plans: int) -> Iterator[Scenario]:
    """Servers up, a database where every (plan, provider) failed once and was accepted."""
    names = [f"p{i:02d}" for i in range(providers)]
    with ExitStack() as stack:
        db_url = stack.enter_context(fresh_database(folder, postgres))
        servers = {name: stack.enter_context(running_loopback()) for name in names}
        for name, server in servers.items():
            os.environ[f"CAVRA_BENCH_{name.upper()}"] = server.url(f"/{name}")
            server.default_status = 500
        clock = Clock()
        runtime = build_runtime(db_url=db_url,
                                config_path=str(_config(folder, names)), clock=clock)
        stack.callback(runtime.close)
        ctx = runtime.ctx
        import_recovery_items(ctx, [RecoveryItem(
            recovery_id="rec-1", connector="payments-api", category="rollback",
            opened_at=START - timedelta(minutes=300))])
        for _ in range(plans):
            plan = build_plan(ctx)
            deliver_escalation(ctx, runtime.registry, plan.plan_id)
            for name in names:
                acknowledge(ctx, plan.plan_id, name, "accepted")
        clock.now += timedelta(minutes=20)
        for server in servers.values():
            server.default_status = 200
            server.requests.clear()
        yield Scenario(runtime, clock, servers)


def live_run(case: Scenario, profile: cProfile.Profile | None = None) -> float:
    started = time.perf_counter()
    if profile:
        profile.enable()
    result = run_retry_worker(case.runtime.ctx, case.runtime.registry, live=True,
                              max_deliveries=100)
    if profile:
        profile.disable()
    elapsed = time.perf_counter() - started
    sent = sum(len(s.requests) for s in case.servers.values())
    statuses = {e.status for e in result.executions}
    if statuses != {"delivered"} or sent != len(result.executions):
        raise SystemExit(f"unexpected run: {statuses}, {sent} requests")
    return elapsed


def pooled_loop(url: str, count: int) -> float:
    """The baseline: one pooled client, one request after another."""
    body = b'{"kind": "escalation", "message": {}}' * 8
    with httpx.Client(timeout=5) as client:
        started = time.perf_counter()
        for i in range(count):
            client.post(url, content=body, headers={"Idempotency-Key": f"k{i}",
                                                    "Content-Type": "application/json"})
        return time.perf_counter() - started


def parallel_posts(url: str, count: int, workers: int) -> float:
    body = b'{"kind": "escalation", "message": {}}' * 8
    with httpx.Client(timeout=10, limits=httpx.Limits(max_connections=workers)) as client, \
            ThreadPoolExecutor(workers) as pool:
        started = time.perf_counter()
        list(pool.map(lambda i: client.post(url, content=body), range(count)))
        return time.perf_counter() - started


def bench_throughput(pairs: int, postgres: str | None,
                     profile: cProfile.Profile | None) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp, \
            scenario(Path(tmp), postgres, providers=1, plans=pairs) as case:
        server = case.servers["p00"]
        baseline = pooled_loop(server.url("/baseline"), pairs)
        server.requests.clear()
        worker = live_run(case, profile)
    return pairs / worker, pairs / baseline


def bench_slow_provider(pairs: int, postgres: str | None) -> tuple[float, float, float]:
    providers = 10
    with tempfile.TemporaryDirectory() as tmp, \
            scenario(Path(tmp), postgres, providers=providers,
                     plans=pairs // providers) as case:
        slow = case.servers["p04"]
        capped = parallel_posts_slow(slow, pairs // providers, CONCURRENCY)
        unlimited = parallel_posts_slow(slow, pairs // providers, pairs // providers)
        for _ in range(pairs // providers):
            slow.answer(200, delay_s=SLOW_S)
        worker = live_run(case)
    return worker, capped, unlimited


def parallel_posts_slow(server: LoopbackHTTP, count: int, workers: int) -> float:
    for _ in range(count):
        server.answer(200, delay_s=SLOW_S)
    elapsed = parallel_posts(server.url("/baseline"), count, workers)
    server.requests.clear()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--postgres", metavar="ADMIN_URL",
                        help="a PostgreSQL server URL (default: a temp SQLite file)")
    parser.add_argument("--profile", help="write a cProfile of the (a) runs here")
    parser.add_argument("--only", choices=("a", "b"))
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY,
                        help="[retry] concurrency of the runs (and of baseline (b))")
    args = parser.parse_args()
    globals()["CONCURRENCY"] = args.concurrency
    profile = cProfile.Profile() if args.profile else None
    database = "PostgreSQL" if args.postgres else "SQLite file"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; database: {database}; concurrency {CONCURRENCY}; "
          f"median of {args.repeats}")
    # Each ratio is taken within one repeat (baseline and run back to back), then the median:
    # a shared machine's load moves both figures together.
    if args.only != "b":
        runs = [bench_throughput(args.pairs, args.postgres, profile) for _ in range(args.repeats)]
        worker = statistics.median(r[0] for r in runs)
        base = statistics.median(r[1] for r in runs)
        ratio = statistics.median(r[0] / r[1] for r in runs)
        print(f"(a) live worker {worker:7.1f} sends/s | pooled httpx loop {base:7.1f} req/s | "
              f"ratio {ratio:.2f}× (target ≥ 0.5×; each repeat "
              f"{', '.join(f'{r[0] / r[1]:.2f}' for r in runs)})")
    if args.only != "a":
        runs_b = [bench_slow_provider(args.pairs, args.postgres) for _ in range(args.repeats)]
        wall = statistics.median(r[0] for r in runs_b)
        capped = statistics.median(r[1] for r in runs_b)
        unlimited = statistics.median(r[2] for r in runs_b)
        ratio = statistics.median(r[0] / r[1] for r in runs_b)
        print(f"(b) live run {wall:5.2f} s | slow provider's {args.pairs // 10} pairs in "
              f"parallel, {CONCURRENCY} at once {capped:5.2f} s → ratio {ratio:.2f}× "
              f"(target ≤ 1.5×); all at once {unlimited:5.2f} s → {wall / unlimited:.2f}×")
    if profile and args.profile:
        profile.dump_stats(args.profile)


if __name__ == "__main__":
    main()
