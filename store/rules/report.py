"""The executive report body, derived only from data (SPEC §4).

What each figure counts (README "What each report figure counts" says the same in prose):

- *Open* items are those in an open state (``OPEN_STATES``) opened before the window's end;
  an item is *past SLO* when its age at the window's end, in whole minutes, exceeds the SLO
  (the escalation plan's own rule). Backlog carried into the window counts.
- One key risk per category with open items: ``critical`` when any of them is past SLO (its
  ``count`` is the items past SLO, its ``owner`` the connector with most of those), else
  ``warning`` (its ``count`` is the open items, all within SLO, its ``owner`` the connector
  with most of them). Ties go to the alphabetically first connector.
- Notifications are escalation deliveries created in the window, by provider and status.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from store.rules.messages import duration_words, plural

KEY_RISKS_SHOWN = 10
DELIVERY_STATUSES = ("delivered", "failed", "unknown", "in_flight")


@dataclass(frozen=True)
class OpenGroup:
    """The open items of one (category, connector), as of the window's end."""

    category: str
    connector: str
    count: int
    oldest: datetime
    failures: int
    past_slo: int = 0  # of ``count``: open longer than the SLO


def _owner(counts: dict[str, int]) -> str:
    """Most items wins; a tie goes to the alphabetically first connector."""
    return min(counts, key=lambda name: (-counts[name], name))


def _risk_text(area: str, open_count: int, past: int) -> str:
    recoveries = plural(open_count, f"open {area} recovery", f"open {area} recoveries")
    if past == open_count:
        return f"{recoveries} past SLO"
    if past:
        return f"{recoveries}, {past} past SLO"
    return f"{recoveries} within SLO"


def key_risks(groups: Iterable[OpenGroup], now: datetime) -> list[dict[str, Any]]:
    """Every category with open items, worst first (not yet cut to the shown ten)."""
    areas: dict[str, dict[str, Any]] = {}
    for group in groups:
        entry = areas.setdefault(group.category, {"open": 0, "past": 0, "oldest": group.oldest,
                                                  "by_open": {}, "by_past": {}})
        entry["open"] += group.count
        entry["past"] += group.past_slo
        entry["oldest"] = min(entry["oldest"], group.oldest)
        entry["by_open"][group.connector] = entry["by_open"].get(group.connector, 0) + group.count
        if group.past_slo:
            entry["by_past"][group.connector] = (entry["by_past"].get(group.connector, 0)
                                                 + group.past_slo)
    risks = []
    for area, entry in areas.items():
        past, open_count = entry["past"], entry["open"]
        risks.append({
            "area": area,
            "severity": "critical" if past else "warning",
            "risk": _risk_text(area, open_count, past),
            "count": past or open_count,
            "open": open_count,
            "past_slo": past,
            "within_slo": open_count - past,
            "oldest_minutes": max(0, int((now - entry["oldest"]).total_seconds() // 60)),
            "owner": _owner(entry["by_past"] or entry["by_open"]),
        })
    risks.sort(key=lambda r: (r["severity"] != "critical", -r["past_slo"], -r["open"],
                              r["area"]))
    return risks


def _impact(open_total: int, past_total: int, areas_past: int, slo_minutes: int,
            delivered: int, failed: int) -> str:
    if not open_total:
        backlog = "No recovery was open at the window's end"
    elif past_total:
        backlog = (f"{plural(open_total, 'recovery', 'recoveries')} open at the window's end, "
                   f"{past_total} past the {duration_words(slo_minutes)} SLO in "
                   f"{plural(areas_past, 'area')}")
    else:
        backlog = (f"{plural(open_total, 'recovery', 'recoveries')} open at the window's end, "
                   f"all within the {duration_words(slo_minutes)} SLO")
    sent = (f"{plural(delivered, 'escalation notification')} delivered, "
            f"{failed} failed or unconfirmed in the window")
    return f"{backlog}; {sent}."


def _actions(risks: list[dict[str, Any]], open_total: int, failed: int) -> list[str]:
    actions = []
    critical = [r for r in risks if r["severity"] == "critical"]
    if critical:
        owners = sorted({r["owner"] for r in critical})
        past = sum(r["past_slo"] for r in critical)
        more = f" and {len(owners) - 5} more" if len(owners) > 5 else ""
        actions.append(f"Page the risk owners ({', '.join(owners[:5])}{more}) about the "
                       f"{plural(past, 'recovery', 'recoveries')} past SLO and review their "
                       "recovery playbooks")
    if failed:
        actions.append(f"Review the {plural(failed, 'failed or unconfirmed notification')} "
                       "and run the retry worker")
    if open_total and not critical:
        recoveries = plural(open_total, "open recovery", "open recoveries")
        actions.append(f"Keep release owners on the {recoveries} until closure")
    if not actions:
        actions.append("No action needed: recovery loop healthy")
    return actions


def summarise(open_groups: Iterable[OpenGroup], provider_counts: dict[str, dict[str, int]],
              trend: list[dict[str, Any]], now: datetime, slo_minutes: int) -> dict[str, Any]:
    """The body: ``now`` is the window's end, ``provider_counts`` maps provider → status →
    escalation deliveries in the window, ``trend`` is the per-day closure trend."""
    risks = key_risks(open_groups, now)
    open_total = sum(r["open"] for r in risks)
    past_total = sum(r["past_slo"] for r in risks)
    areas_past = sum(1 for r in risks if r["past_slo"])
    summary: list[dict[str, Any]] = []
    for name, counts in sorted(provider_counts.items()):
        row = {status: counts.get(status, 0) for status in DELIVERY_STATUSES}
        summary.append({"provider": name, **row, "total": sum(counts.values())})
    delivered = sum(p["delivered"] for p in summary)
    failed = sum(p["failed"] + p["unknown"] for p in summary)
    status = "critical" if past_total else "at_risk" if open_total or failed else "on_track"
    return {
        "status": status,
        "business_impact": _impact(open_total, past_total, areas_past, slo_minutes,
                                   delivered, failed),
        "totals": {"open": open_total, "past_slo": past_total, "within_slo":
                   open_total - past_total, "areas": len(risks), "areas_past_slo": areas_past,
                   "delivered": delivered, "failed_or_unconfirmed": failed,
                   "in_flight": sum(p["in_flight"] for p in summary)},
        "slo_minutes": slo_minutes,
        "key_risks": risks[:KEY_RISKS_SHOWN],
        "provider_summary": summary,
        "closure_trend": trend,
        "recommended_actions": _actions(risks, open_total, failed),
    }
