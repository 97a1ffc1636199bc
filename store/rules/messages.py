"""Public-safe message bodies: IDs, counts, statuses and provider names only.

Never acknowledgement notes, external refs, targets or secrets (SPEC §7). The words a person
reads (plurals, durations, times with their zone) are made here once, for every channel.
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from store.models import EscalationPlan, ExecutiveReport, ScheduleRun

MAX_ROUTES = 20
SPARKS = "▁▂▃▄▅▆▇█"


def plural(count: int, one: str, many: str | None = None) -> str:
    """``1 recovery``, ``2 recoveries``: a count with the noun that agrees with it."""
    return f"{count} {one if count == 1 else (many or one + 's')}"


def duration_words(minutes: int) -> str:
    """``10 min``, ``9 h``, ``4 h 30 min``, ``2 days 3 h``: how long, as a person says it."""
    minutes = max(0, int(minutes))
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h" + (f" {rest} min" if rest else "")
    days, hours = divmod(hours, 24)
    return plural(days, "day") + (f" {hours} h" if hours else "")


def sparkline(values: list[int]) -> str:
    """``▁▃▅█``: one bar per value, scaled to the largest; zero is the lowest bar and any
    non-zero value shows above it."""
    top = max(values, default=0)
    return "".join(SPARKS[0] if value <= 0 or top <= 0 else
                   SPARKS[min(len(SPARKS) - 1, 1 + (value * (len(SPARKS) - 2)) // top)]
                   for value in values)


def zone_of(name: str | None) -> tuple[tzinfo, str]:
    """The zone to show times in, and its name; an unknown or missing zone is UTC."""
    if name and name != "UTC":
        try:
            return ZoneInfo(name), name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return UTC, "UTC"


def moment_words(moment: datetime, zone: str | None = "UTC") -> str:
    """``Fri 27 Nov 2026, 12:00 UTC`` (the zone's name always said)."""
    tz, name = zone_of(zone)
    local = moment.astimezone(tz)
    return f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M} {name}"


def window_words(start: datetime, end: datetime, zone: str | None = "UTC") -> str:
    """``Thu 26 Nov, 12:00 – Fri 27 Nov 2026, 12:00 UTC`` in the zone named."""
    tz, name = zone_of(zone)
    first, last = start.astimezone(tz), end.astimezone(tz)
    if first.date() == last.date():
        return f"{last:%a} {last.day} {last:%b %Y}, {first:%H:%M}–{last:%H:%M} {name}"
    year = f" {first:%Y}" if first.year != last.year else ""
    return (f"{first:%a} {first.day} {first:%b}{year}, {first:%H:%M} – "
            f"{last:%a} {last.day} {last:%b %Y}, {last:%H:%M} {name}")


def ack_command(plan_id: str, provider: str, state: str = "accepted") -> str:
    """The exact line that acknowledges a (plan, provider) pair, quoted for a POSIX shell."""
    return (f"cavra escalation ack {shlex.quote(plan_id)} --provider {shlex.quote(provider)} "
            f"--state {state}")


def escalation_headline(plan: EscalationPlan) -> str:
    """What is at risk, in words: ``2 recoveries past the 4 h SLO (longest open 9 h), …``."""
    counts = plan.counts
    breached = counts.get("slo_breached", 0)
    within = max(0, counts.get("open_recovery", 0) - breached)
    failing = sum(1 for r in plan.routes if r.slo_status == "review_required")
    slo = duration_words(plan.slo_minutes)
    parts = []
    if breached:
        longest = max((r.age_minutes for r in plan.routes if r.slo_status == "breached"),
                      default=0)
        parts.append(f"{plural(breached, 'recovery', 'recoveries')} past the {slo} SLO "
                     f"(longest open {duration_words(longest)})")
    if within:
        parts.append(f"{within} within SLO" if breached else
                     f"{plural(within, 'recovery', 'recoveries')} open within the {slo} SLO")
    if failing:
        parts.append(f"{plural(failing, 'connector')} with failed retries")
    return ", ".join(parts) or "nothing at risk"


def escalation_message(plan: EscalationPlan, provider: str, attempt: int) -> dict[str, Any]:
    headline = escalation_headline(plan)
    return {
        "type": "cavra.escalation",
        "plan_id": plan.plan_id,
        "alert_level": plan.alert_level,
        "provider": provider,
        "attempt": attempt,
        "summary": f"CAVRA {plan.alert_level} escalation {plan.plan_id}: {headline}",
        "headline": headline,
        "slo_minutes": plan.slo_minutes,
        "counts": dict(plan.counts),
        "routes_total": len(plan.routes),
        "routes": [
            {"connector": r.connector, "category": r.category, "severity": r.severity,
             "slo_status": r.slo_status, "age_minutes": r.age_minutes,
             "age": duration_words(r.age_minutes), "failure_count": r.failure_count,
             "recommended_action": r.recommended_action}
            for r in plan.routes[:MAX_ROUTES]
        ],
        "ack_command": ack_command(plan.plan_id, provider),
        "created_at": plan.created_at.isoformat(),
        "created_at_text": moment_words(plan.created_at),
    }


STATUS_WORDS = {"critical": "Critical", "at_risk": "At risk", "on_track": "On track"}


def report_reasons(report: ExecutiveReport) -> tuple[str, str]:
    """(``Critical``, ``3 recoveries past SLO in 2 areas``): the status and why."""
    totals = report.body.get("totals") or {}
    status = STATUS_WORDS.get(report.status, report.status)
    past, areas = totals.get("past_slo", 0), totals.get("areas_past_slo", 0)
    open_total, failed = totals.get("open", 0), totals.get("failed_or_unconfirmed", 0)
    if past:
        why = f"{plural(past, 'recovery', 'recoveries')} past SLO in {plural(areas, 'area')}"
    elif open_total:
        why = f"{plural(open_total, 'recovery', 'recoveries')} open, all within SLO"
    elif failed:
        why = f"{plural(failed, 'notification')} failed or unconfirmed"
    else:
        why = "no open recoveries, every notification delivered"
    return status, why


def report_headline(report: ExecutiveReport) -> str:
    """``Critical — 3 recoveries past SLO in 2 areas``."""
    return " — ".join(report_reasons(report))


def report_message(run: ScheduleRun, report: ExecutiveReport, provider: str,
                   attempt: int) -> dict[str, Any]:
    body = report.body
    zone = str(body.get("timezone") or "UTC")
    status, why = report_reasons(report)
    headline = f"{status} — {why}"
    return {
        "type": "cavra.executive_report",
        "run_id": run.run_id,
        "report_id": report.report_id,
        "provider": provider,
        "attempt": attempt,
        "status": report.status,
        "status_text": STATUS_WORDS.get(report.status, report.status),
        "headline": headline,
        "window": {"start": report.window_start.isoformat(),
                   "end": report.window_end.isoformat(), "timezone": zone_of(zone)[1],
                   "text": window_words(report.window_start, report.window_end, zone)},
        # ASCII: a subject line with a non-ASCII character is folded into encoded words.
        "summary": f"CAVRA executive recovery report {report.report_id}: {status}, {why}",
        "business_impact": body.get("business_impact", ""),
        "totals": body.get("totals", {}),
        "slo_minutes": body.get("slo_minutes"),
        "key_risks": body.get("key_risks", []),
        "provider_summary": body.get("provider_summary", []),
        "closure_trend": body.get("closure_trend", []),
        "recommended_actions": body.get("recommended_actions", []),
    }
