"""`cavra provider test NAME` and `cavra provider list` (SPEC §7)."""

from __future__ import annotations

import argparse
from typing import Any

from cavra_tui.bootstrap import Runtime
from cavra_tui.cli_output import delivery_json, delivery_lines, emit_json, emit_lines
from store.services.provider_health import provider_states
from workflows.provider_drill import send_drill

DRILL_FAILED_EXIT = 3  # the command worked, the provider did not: scripts can tell


def provider_test(runtime: Runtime, args: argparse.Namespace) -> int:
    deliveries = send_drill(runtime.ctx, runtime.registry, args.name)
    if getattr(args, "json", False):
        emit_json([delivery_json(d) for d in deliveries])
    else:
        emit_lines([f"drill to {args.name}:", *delivery_lines(deliveries)])
    return 0 if deliveries[0].status == "delivered" else DRILL_FAILED_EXIT


def provider_list(runtime: Runtime, args: argparse.Namespace) -> int:
    health = provider_states(runtime.ctx)
    rows: list[dict[str, Any]] = []
    for name, settings in sorted(runtime.config.providers.items()):
        state = health.get(name)
        rows.append({
            "name": name, "kind": settings.kind, "enabled": settings.enabled,
            "audience": list(settings.audience), "timeout_s": settings.timeout_s,
            "target": runtime.registry.get(name).target(),
            "circuit": state.state if state else "closed",
            "consecutive_failures": state.consecutive_failures if state else 0,
            "last_error": state.last_error if state else None,
        })
    if getattr(args, "json", False):
        emit_json(rows)
    else:
        emit_lines([f"{r['name']:<16} {r['kind']:<9} {'on ' if r['enabled'] else 'off'} "
                    f"{'+'.join(r['audience']):<20} circuit {r['circuit']:<9} "
                    f"failures {r['consecutive_failures']}  {r['target']}" for r in rows])
    return 0

