"""The streaming import: the JSON array reader agrees with `json.loads` (the oracle) on every
chunk size, a bad item anywhere writes nothing, and standard input works."""

from __future__ import annotations

import io
import json
import random
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import store.services.recovery as recovery
from store.errors import UserError
from tests.core.helpers import run_cli


def _value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 2 or roll < 0.3:
        return rng.choice([1, -2.5, 1e10, 'x\\"y]', "a,b", True, None, 12345678901234567890,
                           "ünïcode ☃", 0, -0.0])
    if roll < 0.6:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {f"k{i}": _value(rng, depth + 1) for i in range(rng.randint(0, 3))}


def _read_array(text: str, chunk: int) -> list[Any]:
    stream = io.StringIO(text)
    first = stream.read(chunk)
    while first and not first.strip() and (more := stream.read(chunk)):
        first += more
    return [value for _, value in recovery._array_entries(stream, first)]


@pytest.mark.parametrize("seed", range(4))
def test_the_array_reader_agrees_with_json_loads(seed: int,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    for _ in range(400):
        text = json.dumps([_value(rng) for _ in range(rng.randint(0, 6))],
                          indent=rng.choice([None, 1]), ensure_ascii=rng.random() < 0.5)
        text += rng.choice(["", "\n", "  "])
        if rng.random() < 0.3:  # break it somewhere
            at = rng.randrange(len(text))
            text = text[:at] + rng.choice(["", "}", ",", "]", "x", "[", '"']) + text[at + 1:]
        try:
            expected: Any = json.loads(text)
            valid = isinstance(expected, list)
        except json.JSONDecodeError:
            valid = False
        if not text.lstrip().startswith("["):
            continue
        chunk = rng.choice([1, 2, 3, 7, 64, 1 << 16])
        monkeypatch.setattr(recovery, "_CHUNK", chunk)
        if valid:
            assert _read_array(text, chunk) == expected, (text, chunk)
        else:
            with pytest.raises(UserError):
                _read_array(text, chunk)


def _items(count: int) -> list[dict[str, Any]]:
    return [{"recovery_id": f"rec-{n}", "connector": f"conn-{n % 7}", "category": "rollback",
             "opened_at": "2026-11-01T00:00:00Z", "failure_count": n % 3}
            for n in range(count)]


def _count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM recovery_items").fetchone()[0])


@pytest.mark.parametrize("shape", ["array", "lines"])
def test_a_bad_last_item_writes_nothing(tmp_path: Path, shape: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    items = _items(5_000)
    items[-1] = {**items[-1], "closure_state": "exploded"}
    path = tmp_path / "items.json"
    path.write_text(json.dumps(items) if shape == "array"
                    else "\n".join(json.dumps(i) for i in items))
    db = tmp_path / "cavra.db"
    code, _, err = run_cli(capsys, "--db", f"sqlite:///{db}", "recovery", "import", str(path))
    assert code == 2
    where = "item 5000" if shape == "array" else "line 5000"
    assert err.strip().startswith(f"cavra: error: import: {where}: field 'closure_state'")
    assert _count(db) == 0


def test_a_large_import_lands_whole_and_updates_known_items(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "items.json"
    path.write_text(json.dumps(_items(12_345)))
    db = tmp_path / "cavra.db"
    code, out, err = run_cli(capsys, "--db", f"sqlite:///{db}", "--json", "recovery", "import",
                             str(path))
    assert code == 0, err
    assert json.loads(out) == {"imported": 12_345, "inserted": 12_345, "updated": 0}
    again = _items(12_346)
    again[0]["closure_state"] = "resolved"
    path.write_text("\n".join(json.dumps(i) for i in again))
    code, out, err = run_cli(capsys, "--db", f"sqlite:///{db}", "--json", "recovery", "import",
                             str(path))
    assert json.loads(out) == {"imported": 12_346, "inserted": 1, "updated": 12_345}
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT closure_state FROM recovery_items "
                            "WHERE recovery_id = 'rec-0'").fetchone() == ("resolved",)
        assert conn.execute("SELECT sum(failure_count) FROM recovery_items").fetchone() == (
            sum(i["failure_count"] for i in again),)
    assert _count(db) == 12_346


def test_import_from_standard_input(tmp_path: Path) -> None:
    db = tmp_path / "cavra.db"
    result = subprocess.run(
        [sys.executable, "-m", "cavra_tui.cli", "--db", f"sqlite:///{db}", "recovery", "import",
         "-"], input=json.dumps(_items(3)), capture_output=True, text=True, timeout=60,
        env={"CAVRA_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "imported 3 recovery items (3 new, 0 updated)" in result.stdout
    assert _count(db) == 3
