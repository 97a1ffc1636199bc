"""Our crontab trigger against croniter (an independent implementation), across five zones
and two years, from start points that include the hours before every DST change.

Where cron implementations differ at DST changes, our rule is the README's ("Cron and
DST"); croniter differs from it in three ways, each listed below with the exact
(expression, zone) pairs where it shows. A pair not listed must match croniter exactly, and
a listed pair must actually show its difference:

- clocks go back: a job at a particular time (no '*' and no step in its minute and hour
  fields) runs once, at the first occurrence; croniter runs it at both;
- clocks jump forward over a stepped hour's time (``23 0-20/2`` at 02:23): like Vixie cron
  we treat a step as a wildcard, so the job follows the clock and that time is not there;
  croniter runs it at the jump;
- a half-hour repeat (Lord Howe, 01:30-02:00 twice): a wildcard job follows the clock and
  runs at both 01:40s; croniter 7 skips the second.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from scheduler.crontab import parse_crontab
from scheduler.triggers import CrontabTrigger

ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")
EXPRESSIONS = (
    "0 8 * * 1-5", "0 8 * * MON-FRI", "0 0 * * 0", "0 0 * * 7", "5 4 * * sun",
    "0 12 * * 6,7", "45 23 * * 6", "0 22 * * 1-5", "0 9 1-7 * 1", "0 0 1,15 * 1",
    "0 0 13 * 5", "0 0 */2 * 1", "0 0 1-7 * 0", "0 0 1 * *", "0 0 29 2 *",
    "0 0 31 * *", "59 23 31 12 *", "0 0 1 JAN,JUL *", "0 6 * jun-aug *", "0 0,12 1 */2 *",
    "*/5 * * * *", "15,45 * * * *", "0 * * * *", "30 * * * *", "0 */6 * * *",
    "23 0-20/2 * * *", "*/20 * * * *", "*/15 2 * * *", "*/10 1 * * *", "0 1-3 * * *",
    "30 2 * * *", "0 2 * * *", "30 1 * * *", "45 1 * * *", "0 3 * * *",
    "@hourly", "@daily", "@weekly", "@monthly", "@yearly",
)
REPEATS_PARTICULAR_TIME = "croniter repeats a particular time"
RUNS_STEPPED_HOUR_AT_JUMP = "croniter runs a stepped hour's missing time at the jump"
SKIPS_HALF_HOUR_REPEAT = "croniter skips the second pass of a half-hour repeat"
DIFFERENCES = {
    ("30 2 * * *", "Europe/Berlin"): REPEATS_PARTICULAR_TIME,
    ("0 2 * * *", "Europe/Berlin"): REPEATS_PARTICULAR_TIME,
    ("0 1-3 * * *", "Europe/Berlin"): REPEATS_PARTICULAR_TIME,
    ("30 1 * * *", "America/New_York"): REPEATS_PARTICULAR_TIME,
    ("45 1 * * *", "America/New_York"): REPEATS_PARTICULAR_TIME,
    ("0 1-3 * * *", "America/New_York"): REPEATS_PARTICULAR_TIME,
    ("30 1 * * *", "Australia/Lord_Howe"): REPEATS_PARTICULAR_TIME,
    ("45 1 * * *", "Australia/Lord_Howe"): REPEATS_PARTICULAR_TIME,
    ("23 0-20/2 * * *", "Europe/Berlin"): RUNS_STEPPED_HOUR_AT_JUMP,
    ("23 0-20/2 * * *", "America/New_York"): RUNS_STEPPED_HOUR_AT_JUMP,
    ("23 0-20/2 * * *", "Australia/Lord_Howe"): RUNS_STEPPED_HOUR_AT_JUMP,
    ("*/20 * * * *", "Australia/Lord_Howe"): SKIPS_HALF_HOUR_REPEAT,
}
FIRES = 30
YEARS = (2026, 2027)


def _offset_changes(zone: ZoneInfo) -> list[datetime]:
    """Every UTC hour in the two years at which the zone's offset changed (found by probing,
    independently of the code under test)."""
    changes = []
    moment = datetime(YEARS[0], 1, 1, tzinfo=UTC)
    end = datetime(YEARS[-1] + 1, 1, 1, tzinfo=UTC)
    previous = moment.astimezone(zone).utcoffset()
    while moment < end:
        moment += timedelta(minutes=30)
        offset = moment.astimezone(zone).utcoffset()
        if offset != previous:
            changes.append(moment)
            previous = offset
    return changes


def _start_points(zone: ZoneInfo) -> list[datetime]:
    points = [datetime(year, month, 1, 0, 0, 30, tzinfo=UTC) for year in YEARS
              for month in (1, 7)]
    for change in _offset_changes(zone):
        points += [change - timedelta(hours=hours, seconds=30) for hours in (1, 3, 26)]
    return points


def _croniter_fires(expression: str, zone: ZoneInfo, start: datetime) -> list[datetime]:
    it = croniter(expression, start.astimezone(zone))
    return [it.get_next(datetime).astimezone(UTC) for _ in range(FIRES)]


def _our_fires(trigger: CrontabTrigger, start: datetime) -> list[datetime]:
    fires: list[datetime] = []
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and len(fires) < FIRES:
        fires.append(fire)
        fire = trigger.get_next_fire_time(fire, fire)
    return fires


def _is_second_occurrence(moment: datetime, zone: ZoneInfo) -> bool:
    local = moment.astimezone(zone)
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


def _matches_wall_clock(expression: str, moment: datetime, zone: ZoneInfo) -> bool:
    return bool(croniter.match(expression, moment.astimezone(zone).replace(tzinfo=None)))


def _without_difference(kind: str | None, expression: str, zone: ZoneInfo,
                        ours: list[datetime],
                        theirs: list[datetime]) -> tuple[list[datetime], list[datetime]]:
    """Both lists with the fires a listed difference accounts for taken out."""
    if kind == REPEATS_PARTICULAR_TIME:
        theirs = [f for f in theirs if not _is_second_occurrence(f, zone)]
    elif kind == RUNS_STEPPED_HOUR_AT_JUMP:
        theirs = [f for f in theirs if _matches_wall_clock(expression, f, zone)]
    elif kind == SKIPS_HALF_HOUR_REPEAT:
        ours = [f for f in ours if not _is_second_occurrence(f, zone)]
    return ours, theirs


@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_fire_times_match_croniter(expression: str, zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    trigger = CrontabTrigger(parse_crontab(expression), zone)
    kind = DIFFERENCES.get((expression, zone_name))
    difference_seen = False
    for start in _start_points(zone):
        ours = _our_fires(trigger, start)
        assert all(a < b for a, b in zip(ours, ours[1:], strict=False)), "not monotonic"
        assert ours[0] > start
        theirs = _croniter_fires(expression, zone, start)
        horizon = min(ours[-1], theirs[-1])  # fires taken out shorten one of the lists
        ours = [f for f in ours if f <= horizon]
        theirs = [f for f in theirs if f <= horizon]
        adjusted = _without_difference(kind, expression, zone, ours, theirs)
        difference_seen = difference_seen or adjusted != (ours, theirs)
        assert adjusted[0] == adjusted[1], (
            f"{expression!r} in {zone_name} from {start.isoformat()}")
    assert difference_seen == (kind is not None), f"listed as {kind!r}"


def test_weekday_numbers_and_names_are_crontabs() -> None:
    """The README's own example: 08:00 Monday to Friday, never Saturday."""
    zone = ZoneInfo("Europe/Berlin")
    trigger = CrontabTrigger(parse_crontab("0 8 * * 1-5"), zone)
    fires = _our_fires(trigger, datetime(2026, 12, 5, tzinfo=UTC))  # a Saturday
    assert [f.astimezone(zone).strftime("%a %H:%M") for f in fires[:6]] == [
        "Mon 08:00", "Tue 08:00", "Wed 08:00", "Thu 08:00", "Fri 08:00", "Mon 08:00"]


def test_either_day_field_matches_when_both_are_restricted() -> None:
    trigger = CrontabTrigger(parse_crontab("0 0 1,15 * 1"), ZoneInfo("UTC"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    fires = []
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire < datetime(2028, 1, 1, tzinfo=UTC):
        fires.append(fire)
        fire = trigger.get_next_fire_time(fire, fire)
    mondays = sum(1 for f in fires if f.weekday() == 0)
    assert mondays == 104 and len(fires) > 140  # the count was 6


def test_midnight_is_never_skipped_after_the_clocks_spring_forward() -> None:
    zone = ZoneInfo("Europe/Berlin")
    daily = _our_fires(CrontabTrigger(parse_crontab("0 0 * * *"), zone),
                       datetime(2026, 3, 27, 12, tzinfo=UTC))
    days = [f.astimezone(zone).date().isoformat() for f in daily[:5]]
    assert days == ["2026-03-28", "2026-03-29", "2026-03-30", "2026-03-31", "2026-04-01"]
    monthly = _our_fires(CrontabTrigger(parse_crontab("0 0 1 * *"), zone),
                         datetime(2026, 3, 15, tzinfo=UTC))
    assert [f.astimezone(zone).strftime("%m-%d %H:%M") for f in monthly[:2]] == [
        "04-01 00:00", "05-01 00:00"]


def test_a_wildcard_minute_runs_in_both_occurrences_of_a_repeated_hour() -> None:
    zone = ZoneInfo("Europe/Berlin")
    fires = _our_fires(CrontabTrigger(parse_crontab("*/15 2 * * *"), zone),
                       datetime(2026, 10, 24, 12, tzinfo=UTC))
    assert sum(1 for f in fires if f.astimezone(zone).date().isoformat() == "2026-10-25") == 8
