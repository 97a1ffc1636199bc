"""Import benchmark (issue 9): `cavra recovery import` of 50,000 items (~11 MB) in a fresh
process, against a bare script that loads the same file with `json.load` and inserts it with
`sqlite3.executemany` — measured in the same run. Prints wall time, items/s and peak RSS.

    .venv/bin/python tests/benchmarks/bench_import.py [--items 50000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BARE = r"""
import json, sqlite3, sys
items = json.load(open(sys.argv[1], encoding="utf-8"))
conn = sqlite3.connect(sys.argv[2])
conn.execute("CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, connector TEXT, "
             "category TEXT, drill_id TEXT, playbook_id TEXT, opened_at TEXT, state TEXT, n INT)")
conn.executemany("INSERT INTO items VALUES (?,?,?,?,?,?,?,?)", [
    (i["recovery_id"], i["connector"], i["category"], i.get("drill_id"), i.get("playbook_id"),
     i["opened_at"], i.get("closure_state", "open"), i.get("failure_count", 0)) for i in items])
conn.commit()
"""


def write_items(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        for n in range(count):
            item = {"recovery_id": f"rec-{n:07d}-" + "r" * 40,
                    "connector": f"connector-{n % 97}-" + "c" * 30,
                    "category": ("rollback", "restore", "failover")[n % 3] + "-drill-category",
                    "drill_id": f"drill-{n % 1000:04d}-" + "d" * 20,
                    "playbook_id": f"playbook-{n % 50:03d}-" + "p" * 20,
                    "opened_at": f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:00:00+00:00",
                    "closure_state": ("open", "resolved", "mitigated")[n % 3],
                    "failure_count": n % 5}
            out.write(("," if n else "") + json.dumps(item))
        out.write("]")


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``command`` under a throwaway parent so its peak RSS is its own."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
             "print(time.perf_counter() - t, "
             "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", probe, *command], check=True, env=env,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        items = base / "items.json"
        write_items(items, args.items)
        size_mb = items.stat().st_size / 1e6
        env = {**os.environ, "CAVRA_DATA_DIR": str(base / "data")}
        cavra, bare = [], []
        for repeat in range(args.repeats):
            cavra.append(measure([sys.executable, "-m", "cavra_tui.cli", "--db",
                                  f"sqlite:///{base / f'cavra{repeat}.db'}", "recovery",
                                  "import", str(items)], env))
            bare.append(measure([sys.executable, "-c", BARE, str(items),
                                 str(base / f"bare{repeat}.db")], env))
    wall = statistics.median(w for w, _ in cavra)
    rss = statistics.median(r for _, r in cavra)
    bare_wall = statistics.median(w for w, _ in bare)
    bare_rss = statistics.median(r for _, r in bare)
    print(f"{args.items} items, {size_mb:.1f} MB, median of {args.repeats} fresh processes")
    print(f"cavra recovery import  {wall:6.2f} s  {args.items / wall:8.0f} items/s  "
          f"peak RSS {rss:6.1f} MiB")
    print(f"bare json+sqlite3      {bare_wall:6.2f} s  {args.items / bare_wall:8.0f} items/s  "
          f"peak RSS {bare_rss:6.1f} MiB")
    print(f"ratio (cavra / bare)   wall {wall / bare_wall:.2f}x  RSS {rss / bare_rss:.2f}x")
    print("targets: peak RSS <= 100 MB, >= 2,000 items/s")


if __name__ == "__main__":
    main()
