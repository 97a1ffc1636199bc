"""Public-safe message bodies: IDs, counts, statuses and provider names only.

Never acknowledgement notes, external refs, targets or secrets (SPEC §7).
"""

from __future__ import annotations

from typing import Any

from store.models import EscalationPlan, ExecutiveReport, ScheduleRun


def escalation_message(plan: EscalationPlan, provider: str, attempt: int) -> dict[str, Any]:
    return {
        "type": "cavra.escalation",
        "plan_id": plan.plan_id,
        "alert_level": plan.alert_level,
        "provider": provider,
        "attempt": attempt,
        "summary": (f"CAVRA {plan.alert_level} escalation {plan.plan_id}: "
                    f"{plan.counts.get('escalation', 0)} routes, "
                    f"{plan.counts.get('critical', 0)} critical, "
                    f"{plan.counts.get('slo_breached', 0)} SLO breached"),
        "counts": dict(plan.counts),
        "routes": [
            {"connector": r.connector, "category": r.category, "severity": r.severity,
             "slo_status": r.slo_status, "age_minutes": r.age_minutes,
             "failure_count": r.failure_count, "recommended_action": r.recommended_action}
            for r in plan.routes[:20]
        ],
        "created_at": plan.created_at.isoformat(),
    }


def report_message(run: ScheduleRun, report: ExecutiveReport, provider: str,
                   attempt: int) -> dict[str, Any]:
    body = report.body
    return {
        "type": "cavra.executive_report",
        "run_id": run.run_id,
        "report_id": report.report_id,
        "provider": provider,
        "attempt": attempt,
        "status": report.status,
        "window": {"start": report.window_start.isoformat(), "end": report.window_end.isoformat()},
        "summary": f"CAVRA executive recovery report {report.report_id}: {report.status}",
        "business_impact": body.get("business_impact", ""),
        "key_risks": body.get("key_risks", []),
        "provider_summary": body.get("provider_summary", []),
        "recommended_actions": body.get("recommended_actions", []),
    }
