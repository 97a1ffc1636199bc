"""The executive report body, derived only from data (SPEC §4)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class OpenGroup:
    category: str
    connector: str
    count: int
    oldest: datetime
    failures: int


def summarise(open_groups: Iterable[OpenGroup], provider_counts: dict[str, dict[str, int]],
              trend: list[dict[str, Any]], now: datetime, slo_minutes: int) -> dict[str, Any]:
    by_category: dict[str, dict[str, Any]] = {}
    for group in open_groups:
        entry = by_category.setdefault(group.category, {
            "count": 0, "breached": False, "owners": {}, "failures": 0})
        entry["count"] += group.count
        entry["failures"] += group.failures
        age = (now - group.oldest).total_seconds() / 60
        entry["breached"] = entry["breached"] or age > slo_minutes
        entry["owners"][group.connector] = entry["owners"].get(group.connector, 0) + group.count
    risks = []
    for category, entry in by_category.items():
        owner = max(sorted(entry["owners"]), key=lambda name: entry["owners"][name])
        risks.append({
            "severity": "critical" if entry["breached"] else "warning",
            "risk": f"{entry['count']} open {category} recoveries"
                    + (" past SLO" if entry["breached"] else ""),
            "count": entry["count"], "owner": owner,
        })
    risks.sort(key=lambda r: (r["severity"] != "critical", -r["count"], r["risk"]))
    open_total = sum(r["count"] for r in risks)
    critical = sum(1 for r in risks if r["severity"] == "critical")
    failed = sum(c.get("failed", 0) + c.get("unknown", 0) for c in provider_counts.values())
    delivered = sum(c.get("delivered", 0) for c in provider_counts.values())
    status = "critical" if critical else "at_risk" if open_total or failed else "on_track"
    impact = (f"{open_total} recoveries open, {critical} risk areas past SLO; "
              f"{delivered} notifications delivered, {failed} failed or unconfirmed in the window")
    actions = []
    if critical:
        actions.append("Page owners of risk areas past SLO and review their rollback playbooks")
    if failed:
        actions.append("Review failed notification deliveries and run the retry worker")
    if open_total and not critical:
        actions.append("Keep release owners on the open recoveries until closure")
    if not actions:
        actions.append("No action needed: recovery loop healthy")
    summary = [{"provider": name, **counts} for name, counts in sorted(provider_counts.items())]
    return {"status": status, "business_impact": impact, "key_risks": risks[:10],
            "provider_summary": summary, "closure_trend": trend, "recommended_actions": actions}
