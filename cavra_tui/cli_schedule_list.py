"""`cavra schedule list`: trigger, next and last run, missed, errors, providers, leader
(SPEC §8). A read on SQLAlchemy Core, like `cavra metrics`."""

from __future__ import annotations

import argparse
from datetime import datetime

from cavra_tui.bootstrap import Runtime
from cavra_tui.cli_output import emit_json, emit_lines, wants_json
from scheduler.status import ScheduleStatus, read_scheduler_status
from store.services.schedule_reads import list_schedules


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "-"


def schedule_list(runtime: Runtime, args: argparse.Namespace) -> int:
    status = read_scheduler_status(runtime.ctx, runtime.ctx.clock())
    by_id: dict[str, ScheduleStatus] = {s.schedule_id: s for s in status.schedules}
    schedules = list_schedules(runtime.ctx)
    if wants_json(args):
        shown = {"trigger", "next_run_at", "next_run_local", "last_run_at", "missed", "errors"}
        emit_json({"leader": status.leader, "lease_expires_at": status.lease_expires_at,
                   "schedules": [{**s.model_dump(mode="json"), **by_id[s.schedule_id].model_dump(
                       mode="json", include=shown)} for s in schedules]})
        return 0
    lines = [f"scheduler leader: {status.leader or 'none (no scheduler running)'}"]
    if not schedules:
        lines.append("no schedules (add one with `cavra schedule add`)")
    for schedule in schedules:
        state = by_id[schedule.schedule_id]
        lines.append(f"{schedule.schedule_id}  {schedule.name}  {schedule.kind}"
                     f"{' live' if schedule.live else ''}  {state.trigger}  "
                     f"{'enabled' if schedule.enabled else 'disabled'}")
        lines.append(f"  next {state.next_run_local or '-'}  last {_when(state.last_run_at)}  "
                     f"missed {state.missed}  errors {state.errors}  grace "
                     f"{schedule.misfire_grace_s}s  providers "
                     f"{', '.join(schedule.providers) or '-'}")
    emit_lines(lines)
    return 0
