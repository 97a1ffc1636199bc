"""Readable text for people-facing channels (Slack, email, PagerDuty summaries).

Built only from the public-safe message body (``store.rules.messages``): IDs, counts,
statuses and provider names. Nothing else is ever looked up here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_ROUTES_SHOWN = 10
DRILL_MARK = "[DRILL]"


@dataclass(frozen=True)
class Rendered:
    title: str
    lines: list[str] = field(default_factory=list)
    severity: str = "info"  # critical | warning | info (PagerDuty's vocabulary)

    def text(self) -> str:
        return "\n".join([self.title, "", *self.lines])


def _escalation(message: dict[str, Any]) -> Rendered:
    level = str(message.get("alert_level", "warning"))
    counts = message.get("counts", {}) or {}
    lines = [
        f"Plan: {message.get('plan_id')}  (attempt {message.get('attempt')})",
        f"Alert level: {level}",
        "Counts: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
    ]
    routes = message.get("routes", []) or []
    if routes:
        lines.append("Routes:")
        for route in routes[:MAX_ROUTES_SHOWN]:
            lines.append(f"- {route.get('severity')}: {route.get('connector')}/"
                         f"{route.get('category')} {route.get('slo_status')}, age "
                         f"{route.get('age_minutes')} min, failures "
                         f"{route.get('failure_count')}: {route.get('recommended_action')}")
        if len(routes) > MAX_ROUTES_SHOWN:
            lines.append(f"- … and {len(routes) - MAX_ROUTES_SHOWN} more")
    severity = level if level in ("critical", "warning") else "info"
    return Rendered(title=str(message.get("summary") or f"CAVRA escalation "
                              f"{message.get('plan_id')}"), lines=lines, severity=severity)


def _report(message: dict[str, Any]) -> Rendered:
    window = message.get("window", {}) or {}
    lines = [
        f"Report: {message.get('report_id')}  run {message.get('run_id')}",
        f"Status: {message.get('status')}",
        f"Window: {window.get('start')} → {window.get('end')}",
        f"Business impact: {message.get('business_impact')}",
    ]
    risks = message.get("key_risks", []) or []
    if risks:
        lines.append("Key risks:")
        lines += [f"- {r.get('severity')}: {r.get('risk')} ({r.get('count')})"
                  for r in risks[:MAX_ROUTES_SHOWN] if isinstance(r, dict)]
    actions = message.get("recommended_actions", []) or []
    if actions:
        lines.append("Recommended actions:")
        lines += [f"- {a}" for a in actions[:MAX_ROUTES_SHOWN]]
    return Rendered(title=str(message.get("summary") or "CAVRA executive recovery report"),
                    lines=lines)


def _drill(message: dict[str, Any]) -> Rendered:
    return Rendered(title=str(message.get("summary")), lines=[
        f"Provider: {message.get('provider')}",
        "This is a connectivity drill sent by `cavra provider test`. No action is needed.",
    ])


def _resolve(message: dict[str, Any]) -> Rendered:
    return Rendered(title=str(message.get("summary")), lines=[
        f"Plan: {message.get('plan_id')}", f"Provider: {message.get('provider')}"])


def render(kind: str, message: dict[str, Any]) -> Rendered:
    if kind == "executive":
        return _report(message)
    if kind == "drill":
        return _drill(message)
    if kind == "resolve":
        return _resolve(message)
    return _escalation(message)
