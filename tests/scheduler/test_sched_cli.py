"""`cavra schedule …` and `cavra scheduler run` as a user types them (SPEC §10)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from cavra_tui.cli import main


@pytest.fixture
def cavra(db_path: Path, exec_config: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main([*argv, "--db", f"sqlite:///{db_path}", "--config", str(exec_config)])
        except SystemExit as exit_:  # argparse rejects before a handler runs
            code = int(exit_.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_add_list_disable_enable_remove(cavra: Any) -> None:
    code, out, _ = cavra("schedule", "add", "exec-morning", "--cron", "0 8 * * 1-5",
                         "--timezone", "Europe/Berlin", "--provider", "exec-outbox", "--json")
    assert code == 0
    added = json.loads(out)
    assert (added["name"], added["cron"], added["timezone"], added["providers"]) == (
        "exec-morning", "0 8 * * 1-5", "Europe/Berlin", ["exec-outbox"])
    code, out, _ = cavra("schedule", "add", "retries", "--every", "15m",
                         "--kind", "retry-worker", "--misfire-grace", "60")
    assert code == 0 and "every 15m" in out

    code, out, _ = cavra("schedule", "list", "--json")
    listed = {s["name"]: s for s in json.loads(out)["schedules"]}
    assert listed["exec-morning"]["next_run_at"] is not None
    assert listed["retries"]["misfire_grace_s"] == 60
    assert listed["retries"]["trigger"] == "every 15m"

    assert cavra("schedule", "disable", added["schedule_id"])[0] == 0
    code, out, _ = cavra("schedule", "list")
    assert "disabled" in out and "next -" in out
    assert cavra("schedule", "enable", "exec-morning")[0] == 0
    assert cavra("schedule", "remove", "retries")[0] == 0
    code, out, _ = cavra("schedule", "list", "--json")
    assert [s["name"] for s in json.loads(out)["schedules"]] == ["exec-morning"]


def test_add_echoes_the_next_three_fires_in_the_schedules_zone(cavra: Any) -> None:
    code, out, _ = cavra("schedule", "add", "weekdays", "--cron", "0 8 * * MON-FRI",
                         "--timezone", "America/New_York")
    assert code == 0
    echoed = out.splitlines()[1]
    zone = ZoneInfo("America/New_York")
    it = croniter("0 8 * * 1-5", datetime.now(zone))  # the reference, read the same way
    expected = [it.get_next(datetime) for _ in range(3)]
    labels = [f"{d:%a} {d:%m-%d}" if d.year == datetime.now(zone).year else f"{d:%a %Y-%m-%d}"
              for d in expected]
    assert echoed == ("  next fires: " + ", ".join(f"{label} 08:00" for label in labels)
                      + " (America/New_York)")
    code, out, _ = cavra("schedule", "list")
    assert f"next {labels[0]} 08:00 America/New_York" in out


@pytest.mark.parametrize("argv", [
    ("schedule", "add", "x", "--cron", "0 25 * * *"),
    ("schedule", "add", "x", "--cron", "0 8 * * 1-9"),
    ("schedule", "add", "x", "--cron", "0 0 30 2 *"),
    ("schedule", "add", "x", "--cron", "@reboot"),
    ("schedule", "add", "x", "--cron", "0 8 * * 5-1"),
    ("schedule", "add", "x", "--every", "ten minutes"),
    ("schedule", "add", "x", "--every", "5m", "--timezone", "Berlin"),
    ("schedule", "add", "x", "--every", "5m", "--provider", "ops-outbox"),
    ("schedule", "add", "x", "--every", "5m", "--cron", "0 8 * * *"),
    ("schedule", "add", "x"),
    ("schedule", "add", "x", "--every", "5m", "--misfire-grace", "0"),
    ("schedule", "enable", "sch-nothere"),
    ("scheduler", "run", "--lease-ttl", "-1"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(cavra: Any,
                                                           argv: tuple[str, ...]) -> None:
    code, _, err = cavra(*argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("cavra: error:")
    code, out, listed = cavra("schedule", "list", "--json")
    # Nothing written: no schedule, or (a usage error) not even a database.
    assert (code == 2 and "does not exist" in listed) or json.loads(out)["schedules"] == []


def test_read_only_scheduler_is_refused(cavra: Any) -> None:
    code, _, err = cavra("scheduler", "run", "--read-only")
    assert code == 2 and "read-only" in err
