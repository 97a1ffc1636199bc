"""Human and ``--json`` renderings of command results. The JSON field names are SPEC §10's."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from store.text import visible

if TYPE_CHECKING:
    from store.models import Delivery, EscalationPlan, RetryDecision, WorkerRunResult
    from store.services.quiet_windows import QuietSkip


def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def emit_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")


def emit_lines(lines: list[str]) -> None:
    """Text output: any control character stored in the data (an older database) is written
    as a visible escape, so output can never move the cursor or clear the screen."""
    sys.stdout.write("\n".join(visible(line) for line in lines) + "\n")


def plan_json(plan: EscalationPlan) -> dict[str, Any]:
    return plan.model_dump(mode="json")


def plan_lines(plan: EscalationPlan) -> list[str]:
    lines = [f"plan {plan.plan_id}  alert {plan.alert_level}  SLO {plan.slo_minutes} min  "
             f"providers {', '.join(plan.selected_providers) or '-'}",
             "  " + ", ".join(f"{k} {v}" for k, v in plan.counts.items())]
    for route in plan.routes:
        lines.append(f"  {route.severity:<8} {route.connector}/{route.category}  "
                     f"{route.slo_status}  age {route.age_minutes}m  failures "
                     f"{route.failure_count}  → {', '.join(route.providers)}")
    return lines


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return delivery.model_dump(mode="json")


def delivery_lines(deliveries: list[Delivery]) -> list[str]:
    if not deliveries:
        return ["nothing to deliver (every provider already succeeded)"]
    return [f"{d.delivery_id}  {d.provider:<16} {d.status:<9} "
            f"{d.status_code if d.status_code is not None else '-':>4}  "
            f"attempt {d.attempt}  {d.error or ''}".rstrip() for d in deliveries]


def worker_json(result: WorkerRunResult) -> dict[str, Any]:
    return {
        **result.run.model_dump(mode="json"),
        "executions": [e.model_dump(mode="json", include={
            "execution_id", "status", "reason", "provider", "plan_id", "retry_plan_id",
            "worker_run_id",  # dumped as the SPEC names it: run_id
            "delivery_id", "idempotency_key", "payload_sha256", "attempt", "execution_sha256"})
            for e in result.executions],
        "acknowledgement_pending": result.acknowledgement_pending,
    }


def worker_lines(result: WorkerRunResult) -> list[str]:
    run = result.run
    lines = [f"worker run {run.run_id}  {run.mode}  retry plan {run.retry_plan_id}",
             "  " + ", ".join(f"{k} {v}" for k, v in run.summary.items())]
    for e in result.executions:
        lines.append(f"  {e.execution_id}  {e.status:<9} {e.plan_id}/{e.provider}  "
                     f"{e.reason}  key {e.idempotency_key}  payload {e.payload_sha256[:12]}")
    return lines


def decision_line(d: RetryDecision) -> str:
    """One retry / wait / suppress decision, as `retry plan` and `health` print it."""
    when = d.next_retry_at.isoformat(timespec="seconds") if d.next_retry_at else "-"
    return (f"  {d.action:<8} {d.plan_id}/{d.provider}  retries {d.retry_count}  "
            f"next {when}  {d.reason}")


def skip_lines(skipped: list[QuietSkip]) -> list[str]:
    """Sends a quiet window silenced: nothing was sent (the audit chain has each one)."""
    return [f"{'(not sent)':<14}  {s.provider:<16} {s.status:<9} {s.reason}  until "
            f"{s.until.isoformat(timespec='minutes')}" for s in skipped]


def emit_deliveries(deliveries: list[Delivery], as_json: bool,
                    skipped: list[QuietSkip] | None = None) -> None:
    """One entry per provider: its delivery record, or (``status`` skipped, no
    ``delivery_id``) the quiet window that kept the send back."""
    skipped = skipped or []
    if as_json:
        emit_json([delivery_json(d) for d in deliveries]
                  + [s.model_dump(mode="json") for s in skipped])
    elif skipped:
        emit_lines(([] if not deliveries else delivery_lines(deliveries)) + skip_lines(skipped))
    else:
        emit_lines(delivery_lines(deliveries))
