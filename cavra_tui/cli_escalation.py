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
from store.models import FollowUpRun
from store.services.escalation import build_plan
from workflows.delivery import deliver_escalation_outcome
from workflows.pagerduty_resolve import acknowledge_and_resolve


def escalation_plan(runtime: Runtime, args: argparse.Namespace) -> int:
    plan = build_plan(runtime.ctx, args.slo_minutes)
    emit_json(plan_json(plan)) if wants_json(args) else emit_lines(plan_lines(plan))
    return 0


def escalation_deliver(runtime: Runtime, args: argparse.Namespace) -> int:
    outcome = deliver_escalation_outcome(runtime.ctx, runtime.registry, args.plan_id,
                                         args.provider)
    emit_deliveries(outcome.deliveries, wants_json(args), outcome.skipped)
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


def escalation_follow_up(runtime: Runtime, args: argparse.Namespace) -> int:
    from workflows.follow_up import run_follow_up

    run = run_follow_up(runtime.ctx, runtime.registry, live=args.live)
    emit_json(run) if wants_json(args) else emit_lines(follow_up_lines(run))
    return 0


def follow_up_lines(run: FollowUpRun) -> list[str]:
    counts = ", ".join(f"{k} {v}" for k, v in run.summary.items() if v and k != "considered")
    lines = [f"follow-up run {run.run_id}  {run.mode}  {run.summary.get('considered', 0)} open "
             f"plan(s)" + (f": {counts}" if counts else ": nothing to escalate")]
    for item in run.escalations:
        to = f"L{item['from_level']} → L{item['to_level']}/{item['levels']}"
        lines.append(f"  {item['plan_id']}  {to}  {item['status']}"
                     + (f" ({item['reason']})" if item["reason"] else ""))
        for send in item["sends"]:
            what = send.get("delivery_id") or "(not sent)"
            lines.append(f"    {what}  {send['provider']:<16} {send.get('status', 'dry_run'):<9} "
                         f"key {send.get('idempotency_key', '-')}"
                         + (f"  {send['error']}" if send.get("error") else "")
                         + (f"  {send['reason']}" if send.get("reason") else ""))
        if item["already_sent"]:
            lines.append(f"    already sent: {', '.join(item['already_sent'])}")
    for fo in run.failovers:  # suppressed pairs sent once to their failover (issue 13 step 2)
        lines.append(f"  {fo['plan_id']}  failover {fo['provider']} → {fo['target']}  "
                     f"{fo['status']} ({fo['suppressed']})"
                     + (f"  {fo['reason']}" if fo["reason"] else ""))
        for send in fo["sends"]:
            lines.append(f"    {send.get('delivery_id') or '(not sent)'}  {send['provider']:<16} "
                         f"{send.get('status', 'dry_run'):<9} "
                         f"key {send.get('idempotency_key', '-')}")
    return lines
