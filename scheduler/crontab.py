"""Crontab expressions with the meaning cron users know, and their fire times in a zone.

Pure standard library: parsing, matching local wall-clock times, and mapping those times
onto real instants across DST changes. ``scheduler.triggers`` wraps it for APScheduler.

Field meaning (Vixie cron / crontab(5)): minute 0-59, hour 0-23, day of month 1-31,
month 1-12 or JAN-DEC, day of week 0-7 or SUN-SAT (0 and 7 are Sunday). When both day
fields are restricted a day matches if *either* does. ``@hourly @daily @midnight @weekly
@monthly @yearly @annually`` stand for their five-field forms.

DST (the README's "Cron and DST" section has examples):
- a wall time that does not exist (spring gap) runs once, right after the jump, when the
  hour field is fixed; when the hour field is ``*`` or a step the job follows the clock and
  the hours that do not exist are simply not there;
- a wall time that happens twice (autumn overlap) runs once, at its first occurrence, when
  neither the minute nor the hour field has ``*`` or a step; otherwise the job follows the
  clock and runs in both occurrences (cron's rule for wildcard jobs).
"""

from __future__ import annotations

import bisect
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTH_NAMES = {name: number for number, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1)}
DAY_NAMES = {name: number for number, name in enumerate(
    ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (  # name, low, high, names
    ("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
    ("month", 1, 12, MONTH_NAMES), ("day of week", 0, 7, DAY_NAMES),
)
SEARCH_YEARS = 8  # 29 February every four years, and 2100 is not a leap year
_MINUTE = timedelta(minutes=1)
_OVERLAP_REACH = timedelta(hours=3)  # longer than any DST change in the tz database


class CrontabError(ValueError):
    """An expression cron would not run; the message is one line for a person."""


@dataclass(frozen=True)
class Crontab:
    text: str  # normalised: single spaces, macros lower-case
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool
    fixed_hour: bool  # hour field has no '*' and no step
    fixed_time: bool  # neither minute nor hour has '*' or a step: a "particular time"

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = (day.weekday() + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def next_wall_time(self, wall: datetime) -> datetime | None:
        """The first matching local wall time at or after ``wall`` (naive, whole minutes)."""
        day = wall.date()
        hour, minute = wall.hour, wall.minute
        last = date(min(day.year + SEARCH_YEARS, 9999), 12, 31)
        while day <= last:
            if day.month not in self.months:
                day = _first_of_next_month(day)
                hour = minute = 0
                continue
            if self.matches_day(day):
                found = self._first_time_from(hour, minute)
                if found is not None:
                    return datetime(day.year, day.month, day.day, *found)
            day += timedelta(days=1)
            hour = minute = 0
        return None

    def _first_time_from(self, hour: int, minute: int) -> tuple[int, int] | None:
        at = bisect.bisect_left(self.hours, hour)
        if at == len(self.hours):
            return None
        if self.hours[at] == hour:
            later = bisect.bisect_left(self.minutes, minute)
            if later < len(self.minutes):
                return hour, self.minutes[later]
            at += 1
            if at == len(self.hours):
                return None
        return self.hours[at], self.minutes[0]


def parse_crontab(expression: str) -> Crontab:
    """Parse five crontab fields or a macro; ``CrontabError`` names what is wrong."""
    text = " ".join((expression or "").split())
    if not text:
        raise CrontabError("empty expression: give five fields, e.g. '0 8 * * 1-5'")
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise CrontabError(f"unknown macro {text!r}: use one of {', '.join(MACROS)}")
        return _parse_fields(MACROS[text.lower()], text.lower())
    return _parse_fields(text, text)


def _parse_fields(fields_text: str, text: str) -> Crontab:
    fields = fields_text.split(" ")
    if len(fields) != 5:
        raise CrontabError(f"{len(fields)} fields: give five (minute hour day-of-month "
                           "month day-of-week)")
    parsed = [_parse_field(field, *spec) for field, spec in zip(fields, _FIELDS, strict=True)]
    minutes, hours, days, months, weekdays = (values for values, _ in parsed)
    weekdays = {0 if value == 7 else value for value in weekdays}
    crontab = Crontab(
        text=text, minutes=tuple(sorted(minutes)), hours=tuple(sorted(hours)),
        days=frozenset(days), months=frozenset(months), weekdays=frozenset(weekdays),
        days_restricted=fields[2] != "*", weekdays_restricted=fields[4] != "*",
        fixed_hour=not parsed[1][1], fixed_time=not (parsed[0][1] or parsed[1][1]))
    _check_some_day_exists(crontab)
    return crontab


def _parse_field(field: str, name: str, low: int, high: int,
                 names: dict[str, int]) -> tuple[set[int], bool]:
    """The values a field allows, and whether it is a wildcard ('*' or a step)."""
    values: set[int] = set()
    wildcard = False
    for part in field.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            step = _number(step_text, name, 1, high - low + 1, {}, what="step")
            wildcard = True
        if base == "*":
            start, end = low, high
            wildcard = True
        elif "-" in base:
            first, _, second = base.partition("-")
            start = _number(first, name, low, high, names)
            end = _number(second, name, low, high, names)
            if start > end:
                raise CrontabError(f"{name} range {base!r} runs backwards")
        elif slash:
            raise CrontabError(f"{name} step {part!r} needs a range: write "
                               f"'{base}-{high}/{step_text}' or '*/{step_text}'")
        else:
            start = end = _number(base, name, low, high, names)
        values.update(range(start, end + 1, step))
    return values, wildcard


def _number(text: str, name: str, low: int, high: int, names: dict[str, int],
            what: str = "value") -> int:
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit() or not text.isascii():
        hint = f" or a name ({', '.join(names)})" if names else ""
        raise CrontabError(f"{name} {what} {text!r} is not a number{hint}")
    value = int(text)
    if not low <= value <= high:
        raise CrontabError(f"{name} {what} {value} is outside {low}-{high}")
    return value


def _check_some_day_exists(crontab: Crontab) -> None:
    if crontab.days_restricted and crontab.weekdays_restricted:
        return  # any allowed weekday occurs in every allowed month
    longest = max(monthrange(2024, month)[1] for month in crontab.months)
    if min(crontab.days) > longest:
        raise CrontabError(f"day of month {min(crontab.days)} never occurs in the months given")


def _first_of_next_month(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def next_fire(crontab: Crontab, zone: ZoneInfo, start: datetime) -> datetime | None:
    """The first fire time at or after ``start`` (aware), in UTC, by the DST rules above."""
    start = start.astimezone(UTC)
    local = start.astimezone(zone)
    wall = _ceil_minute(local.replace(tzinfo=None, fold=0))
    if local.fold == 0 and local.replace(fold=1).utcoffset() != local.utcoffset():
        # Inside the first pass of a repeated hour: wall times just before this one still
        # have their second occurrence ahead.
        wall -= _OVERLAP_REACH
    best: datetime | None = None
    while True:
        found = crontab.next_wall_time(wall)
        if found is None:
            return best
        first, second = _instants(found, zone)
        if best is not None and min(first, second) > best:
            return best
        for moment in _fires_at(crontab, found, zone, first, second):
            if moment >= start and (best is None or moment < best):
                best = moment
        wall = found + _MINUTE


def _instants(wall: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The wall time read with the offset before (fold=0) and after (fold=1) a change."""
    return (wall.replace(tzinfo=zone, fold=0).astimezone(UTC),
            wall.replace(tzinfo=zone, fold=1).astimezone(UTC))


def _fires_at(crontab: Crontab, wall: datetime, zone: ZoneInfo,
              first: datetime, second: datetime) -> list[datetime]:
    if first == second:
        return [first]
    if first < second:  # the wall time happens twice (clocks went back)
        return [first] if crontab.fixed_time else [first, second]
    # The wall time does not exist (clocks jumped forward over it).
    return [_jump(second, first, zone)] if crontab.fixed_hour else []


def _jump(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The first whole second with the new offset, between two instants either side of a
    jump (the tz database changes offsets on whole seconds)."""
    offset = before.astimezone(zone).utcoffset()
    low, high = int(before.timestamp()), int(after.timestamp()) + 1
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def _ceil_minute(wall: datetime) -> datetime:
    whole = wall.replace(second=0, microsecond=0)
    return whole if whole == wall else whole + _MINUTE
