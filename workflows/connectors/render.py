"""Readable text for people-facing channels (Slack, email, PagerDuty summaries).

Built only from the public-safe message body (``store.rules.messages``): IDs, counts,
statuses and provider names. Nothing else is ever looked up here. A message renders as
*parts* (paragraphs, lists, a command, tables, a trend); each channel draws the parts its own
way (plain text here, HTML in ``email``, Block Kit in ``slack``) from the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from store.rules.messages import (
    ack_command,
    duration_words,
    moment_words,
    plural,
    sparkline,
)

MAX_ROUTES_SHOWN = 10
DRILL_MARK = "[DRILL]"


@dataclass(frozen=True)
class Para:
    text: str
    tone: str = ""  # critical | warning | good: a headline drawn in that colour


@dataclass(frozen=True)
class Bullets:
    heading: str
    items: tuple[str, ...]


@dataclass(frozen=True)
class Command:
    intro: str
    command: str


@dataclass(frozen=True)
class Table:
    heading: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    empty: str = "none"


@dataclass(frozen=True)
class TrendDay:
    label: str  # ``Fri 20``
    opened: int
    closed: int


@dataclass(frozen=True)
class Trend:
    heading: str
    days: tuple[TrendDay, ...]


Part = Para | Bullets | Command | Table | Trend


def plain(part: Part) -> list[str]:
    """A part as plain-text lines (email's text part, PagerDuty details, Slack sections)."""
    if isinstance(part, Para):
        return [part.text]
    if isinstance(part, Bullets):
        return [f"{part.heading}:", *(f"- {item}" for item in part.items)]
    if isinstance(part, Command):
        return [part.intro, f"  {part.command}"]
    if isinstance(part, Table):
        if not part.rows:
            return [f"{part.heading}: {part.empty}"]
        widths = [max(len(cell) for cell in column)
                  for column in zip(part.columns, *part.rows, strict=True)]
        return [f"{part.heading}:", *("  " + "  ".join(cell.ljust(width) for cell, width in
                                                        zip(row, widths, strict=True)).rstrip()
                                      for row in (part.columns, *part.rows))]
    return [f"{part.heading}:", *trend_lines(part)]


def trend_lines(trend: Trend) -> list[str]:
    opened = [day.opened for day in trend.days]
    closed = [day.closed for day in trend.days]
    top = max(opened + closed, default=0)
    span = f"  {trend.days[0].label} to {trend.days[-1].label}" if trend.days else "  no days"
    # Both rows on one scale, so a closed bar is never taller than its opened bar.
    return [span,
            f"  opened {sparkline([*opened, top])[:-1]}  {' '.join(map(str, opened))}",
            f"  closed {sparkline([*closed, top])[:-1]}  {' '.join(map(str, closed))}"]


@dataclass(frozen=True)
class Rendered:
    title: str
    parts: tuple[Part, ...] = field(default_factory=tuple)
    severity: str = "info"  # critical | warning | info (PagerDuty's vocabulary)

    @property
    def lines(self) -> list[str]:
        return [line for part in self.parts for line in plain(part)]

    def text(self) -> str:
        return "\n".join([self.title, "", *self.lines])


def _route_line(route: dict[str, Any], slo: str) -> str:
    where = f"{route.get('connector')}/{route.get('category')}"
    age = duration_words(int(route.get("age_minutes") or 0))
    failures = int(route.get("failure_count") or 0)
    tried = f", {plural(failures, 'failed recovery attempt')}" if failures else ""
    action = f"; next step: {route.get('recommended_action')}"
    status = route.get("slo_status")
    if status == "review_required":
        return (f"{route.get('severity')}: {route.get('connector')} retry executions failed or "
                f"were skipped {plural(failures, 'time')} in the lookback window{action}")
    if status == "breached":
        return f"{route.get('severity')}: {where} breached the {slo} SLO: open {age}{tried}{action}"
    return f"{route.get('severity')}: {where} open {age}, within the {slo} SLO{tried}{action}"


def _escalation(message: dict[str, Any]) -> Rendered:
    level = str(message.get("alert_level", "warning"))
    slo = duration_words(int(message.get("slo_minutes") or 240))
    routes = message.get("routes", []) or []
    total = int(message.get("routes_total") or len(routes))
    items = [_route_line(route, slo) for route in routes[:MAX_ROUTES_SHOWN]]
    if total > len(items):
        items.append(f"… and {total - len(items)} more")
    plan_id, provider = str(message.get("plan_id")), str(message.get("provider"))
    counts = message.get("counts", {}) or {}
    critical = int(counts.get("critical", 0))
    warning = int(counts.get("escalation", total)) - critical
    parts: list[Part] = [
        Para(f"Plan: {plan_id}  (attempt {message.get('attempt')})"),
        Para(f"Alert level: {level} — {plural(critical + warning, 'route')}: {critical} "
             f"critical, {warning} warning",
             tone=level if level in ("critical", "warning") else "good"),
    ]
    if items:
        parts.append(Bullets("At risk", tuple(items)))
    parts.append(Para("What to do: " + (
        "page the owners of the recoveries past SLO and give executives visibility"
        if level == "critical" else "make sure the release owners are on it"
        if level == "warning" else "nothing; this escalation is for the record")
        + ", then acknowledge it so the console knows who has it."))
    parts.append(Command("To acknowledge, run on the CAVRA host:",
                         str(message.get("ack_command") or ack_command(plan_id, provider))))
    created = _moment(message.get("created_at"))
    if created:
        parts.append(Para(f"Plan built {created}."))
    severity = level if level in ("critical", "warning") else "info"
    return Rendered(title=str(message.get("summary") or f"CAVRA escalation {plan_id}"),
                    parts=tuple(parts), severity=severity)


def _moment(value: Any) -> str:
    try:
        return moment_words(datetime.fromisoformat(str(value)))
    except ValueError:
        return ""


def _risk_rows(risks: list[Any]) -> tuple[tuple[str, ...], ...]:
    """Reports stored before ``past_slo`` existed show ``-`` there, never a guess."""
    return tuple(
        (str(r.get("area") or r.get("risk", "")), str(r.get("severity", "")),
         str(r.get("open", r.get("count", "-"))), str(r.get("past_slo", "-")),
         duration_words(int(r["oldest_minutes"])) if "oldest_minutes" in r else "-",
         str(r.get("owner", "")))
        for r in risks[:MAX_ROUTES_SHOWN] if isinstance(r, dict))


def _provider_rows(summary: list[Any]) -> tuple[tuple[str, ...], ...]:
    return tuple((str(p.get("provider", "")), str(p.get("delivered", 0)), str(p.get("failed", 0)),
                  str(p.get("unknown", 0)), str(p.get("in_flight", 0)))
                 for p in summary[:MAX_ROUTES_SHOWN] if isinstance(p, dict))


def _trend(days: list[Any]) -> Trend:
    shown = []
    for entry in days:
        if not isinstance(entry, dict):
            continue
        try:
            day = date.fromisoformat(str(entry.get("day")))
            label = f"{day:%a} {day.day}"
        except ValueError:
            label = str(entry.get("day"))
        shown.append(TrendDay(label, int(entry.get("opened", 0)), int(entry.get("closed", 0))))
    return Trend("Closure trend, last 7 days (UTC)", tuple(shown))


def _report(message: dict[str, Any]) -> Rendered:
    window = message.get("window", {}) or {}
    status = str(message.get("status", ""))
    tone = {"critical": "critical", "at_risk": "warning"}.get(status, "good")
    window_text = window.get("text") or f"{window.get('start')} → {window.get('end')} UTC"
    parts: list[Part] = [
        Para(f"Report: {message.get('report_id')}  run {message.get('run_id')}"),
        Para(f"Status: {message.get('headline') or status}", tone=tone),
        Para(f"Window: {window_text}"),
        Para(f"Business impact: {message.get('business_impact')}"),
        Table("Key risks", ("Area", "Severity", "Open", "Past SLO", "Oldest", "Owner"),
              _risk_rows(message.get("key_risks", []) or []), empty="no open recoveries"),
        Table("Escalation notifications in the window",
              ("Provider", "Delivered", "Failed", "Unconfirmed", "Sending"),
              _provider_rows(message.get("provider_summary", []) or []),
              empty="none were sent"),
    ]
    trend = message.get("closure_trend", []) or []
    if trend:
        parts.append(_trend(trend))
    actions = message.get("recommended_actions", []) or []
    if actions:
        parts.append(Bullets("Recommended actions",
                             tuple(str(a) for a in actions[:MAX_ROUTES_SHOWN])))
    return Rendered(title=str(message.get("summary") or "CAVRA executive recovery report"),
                    parts=tuple(parts))


def _drill(message: dict[str, Any]) -> Rendered:
    parts: list[Part] = [
        Para(f"Provider: {message.get('provider')}"),
        Para("This is a connectivity drill sent by `cavra provider test`. No action is needed."),
    ]
    sent = _moment(message.get("sent_at"))
    if sent:
        parts.append(Para(f"Sent {sent}."))
    return Rendered(title=str(message.get("summary")), parts=tuple(parts))


def _resolve(message: dict[str, Any]) -> Rendered:
    return Rendered(title=str(message.get("summary")), parts=(
        Para(f"Plan: {message.get('plan_id')}"), Para(f"Provider: {message.get('provider')}")))


def _self_alert(message: dict[str, Any]) -> Rendered:
    parts: list[Part] = [Para(str(message.get("detail")))]
    if message.get("state") == "cleared":
        parts.append(Para(f"Raised {message.get('raised_at')}; cleared "
                          f"{_moment(message.get('at'))}."))
    else:
        parts.append(Para("The recovery loop itself is failing: run `cavra health` for the "
                          "figures. You are told once more when it clears."))
    return Rendered(title=str(message.get("summary")), parts=tuple(parts),
                    severity="info" if message.get("state") == "cleared" else "critical")


def render(kind: str, message: dict[str, Any]) -> Rendered:
    if kind == "self_alert":
        return _self_alert(message)
    if kind == "executive":
        return _report(message)
    if kind == "drill":
        return _drill(message)
    if kind == "resolve":
        return _resolve(message)
    return _escalation(message)
