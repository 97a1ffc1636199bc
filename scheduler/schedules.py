"""Adding a schedule: the scheduler checks that it can run the trigger, the store records it
(so the store never needs APScheduler)."""

from __future__ import annotations

from scheduler.triggers import check_cron
from store.models import Schedule
from store.schedule_limits import DEFAULT_MISFIRE_GRACE_S
from store.services import schedules as stored
from store.services.context import StoreContext


def add_schedule(ctx: StoreContext, *, name: str, cron: str | None = None,
                 every: str | int | None = None, timezone: str = "UTC",
                 kind: str = "report", providers: list[str] | None = None, live: bool = False,
                 misfire_grace_s: int = DEFAULT_MISFIRE_GRACE_S) -> Schedule:
    if cron is not None and every is None:
        cron = check_cron(cron, stored.check_timezone(timezone))
    return stored.add_schedule(ctx, name=name, cron=cron, every=every, timezone=timezone,
                               kind=kind, providers=providers, live=live,
                               misfire_grace_s=misfire_grace_s)
