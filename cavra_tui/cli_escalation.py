"""`cavra escalation plan|deliver|ack` (SPEC §5, §7)."""

from __future__ import annotations

import argparse

from cavra_tui.bootstrap import Runtime
from cavra_tui.cli_output import (
    delivery_json,
    delivery_lines,
    emit_deliveries,
    emit_json,
    emit_lines,
    plan_json,
    plan_lines,
    wants_json,
)
from store.services.escalation import build_plan
from workflows.delivery import deliver_escalation
from workflows.pagerduty_resolve import acknowledge_and_resolve


def escalation_plan(runtime: Runtime, args: argparse.Namespace) -> int:
    plan = build_plan(runtime.ctx, args.slo_minutes)
    emit_json(plan_json(plan)) if wants_json(args) else emit_lines(plan_lines(plan))
    return 0


def escalation_deliver(runtime: Runtime, args: argparse.Namespace) -> int:
    deliveries = deliver_escalation(runtime.ctx, runtime.registry, args.plan_id, args.provider)
    emit_deliveries(deliveries, wants_json(args))
    return 0


def escalation_ack(runtime: Runtime, args: argparse.Namespace) -> int:
    ack, resolves = acknowledge_and_resolve(runtime.ctx, runtime.registry, args.plan_id,
                                            args.provider, args.state, args.ref, args.notes)
    if wants_json(args):
        emit_json({**ack.model_dump(mode="json"), "resolve_deliveries": [
            delivery_json(d) for d in resolves]} if resolves else ack)
    else:
        emit_lines([f"{ack.ack_id}  {ack.plan_id}/{ack.provider}  {ack.state}  "
                    f"by {ack.acknowledged_by}", *(delivery_lines(resolves) if resolves else [])])
    return 0
