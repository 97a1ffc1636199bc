"""Which recovery items and failing connectors escalate, how severely, and to whom (SPEC §5.1)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from store.config import CavraConfig
from store.models import AlertLevel, EscalationRoute, RecoveryItem

OPEN_STATES = frozenset({"open", "reopened", "escalated"})


@dataclass(frozen=True)
class PlanDraft:
    alert_level: AlertLevel
    routes: list[EscalationRoute]
    selected_providers: list[str]
    counts: dict[str, int]


def providers_for(severity: str, config: CavraConfig) -> list[str]:
    """Configured, enabled providers of a severity's level 1 (what a plan is built with);
    the fallback when none is usable."""
    return level_providers(severity, 1, config)


def level_providers(severity: str, level: int, config: CavraConfig) -> list[str]:
    """Configured, enabled providers of a severity's escalation level (1 = the first); the
    fallback when none is usable, nothing for a level the config does not have."""
    levels = config.routing.levels_for(severity)
    if not 1 <= level <= len(levels):
        return []
    named = levels[level - 1].providers
    usable = [name for name in named if (p := config.provider(name)) is not None and p.enabled]
    return usable or [config.routing.fallback]


def build_routes(items: Iterable[RecoveryItem], failed_executions: Mapping[str, int],
                 now: datetime, slo_minutes: int, config: CavraConfig) -> PlanDraft:
    routes: list[EscalationRoute] = []
    open_count = breached = 0
    for item in items:
        if item.closure_state not in OPEN_STATES:
            continue
        open_count += 1
        age = max(0, int((now - item.opened_at).total_seconds() // 60))
        is_breached = age > slo_minutes
        breached += is_breached
        severity = "critical" if is_breached else "warning"
        routes.append(EscalationRoute(
            connector=item.connector, category=item.category, severity=severity,
            reason=(f"{item.recovery_id} open {age} min, SLO {slo_minutes} min breached"
                    if is_breached else f"{item.recovery_id} open {age} min within SLO"),
            recommended_action=("page owner + executive visibility" if is_breached
                                else "notify release owner"),
            age_minutes=age, slo_status="breached" if is_breached else "open",
            failure_count=item.failure_count, providers=providers_for(severity, config),
        ))
    for connector, failures in sorted(failed_executions.items()):
        routes.append(EscalationRoute(
            connector=connector, category="retry-execution", severity="critical",
            reason=f"{failures} retry executions failed or skipped in the lookback window",
            recommended_action="review retry executions and provider health",
            age_minutes=0, slo_status="review_required", failure_count=failures,
            providers=providers_for("critical", config),
        ))
    routes.sort(key=lambda r: (r.severity != "critical", -r.failure_count, -r.age_minutes))
    critical = sum(1 for route in routes if route.severity == "critical")
    level: AlertLevel = "critical" if critical else "warning" if routes else "healthy"
    selected: list[str] = []
    for route in routes:
        for name in route.providers:
            if name not in selected:
                selected.append(name)
    counts = {
        "escalation": len(routes), "critical": critical, "slo_breached": breached,
        "failed_execution": sum(failed_executions.values()), "open_recovery": open_count,
    }
    return PlanDraft(level, routes, selected, counts)
