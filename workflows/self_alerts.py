"""The loop reports its own failure (issue 13.5): the scheduler leader checks `cavra health`
and tells the operations providers once when a condition turns critical (executive delivery
exhausted, worker missed, permanent errors, a held live lock …), nothing while it lasts,
and once when it clears. Each raise and clear is audited (``health.self_alert``), naming
the deliveries that carried it; the audit chain is the state, so a restart or a new leader
neither repeats nor forgets an alert."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from store.clock import as_utc
from store.errors import Conflict
from store.models import Delivery
from store.rules.quiet import silencing
from store.rules.self_alerts import CLEARED, Announcement, announcements, conditions
from store.services.context import StoreContext
from store.services.health import read_health
from store.services.quiet_reads import quiet_windows_from
from store.services.self_alerts import open_self_alerts, record_self_alert
from workflows.connectors.registry import ConnectorRegistry
from workflows.delivery import send_one

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SelfAlertResult:
    announcement: Announcement
    deliveries: list[Delivery]
    silenced: list[str]  # operations providers a quiet window for critical kept it from


def stamp(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y%m%dT%H%M%SZ")


def operations_providers(ctx: StoreContext) -> list[str]:
    """Every enabled provider whose audience includes operations (the outbox by default)."""
    return [name for name, provider in ctx.config.providers.items()
            if provider.enabled and "operations" in provider.audience]


def self_alert_message(announcement: Announcement, raised_at: str, now: datetime,
                       provider: str) -> dict[str, Any]:
    cleared = announcement.state == CLEARED
    return {
        "type": "cavra.self_alert", "state": announcement.state, "code": announcement.code,
        "severity": "info" if cleared else "critical", "provider": provider,
        "summary": (f"CAVRA loop recovered: {announcement.code} cleared" if cleared else
                    f"CAVRA loop failing: {announcement.message}"),
        "detail": announcement.message, "raised_at": raised_at, "at": as_utc(now).isoformat(),
        # A raise and its clear share this: PagerDuty resolves the incident the raise opened.
        "incident_key": f"cavra:self-alert:{announcement.code}:{raised_at}",
        "next_step": "cavra health" if not cleared else "",
    }


def run_self_alerts(ctx: StoreContext, registry: ConnectorRegistry) -> list[SelfAlertResult]:
    """One health check: announce what turned failing or cleared since the last one."""
    report = read_health(ctx)
    now = ctx.clock()
    pending = announcements(conditions((a.code, a.severity, a.message) for a in report.alerts),
                            open_self_alerts(ctx))
    if not pending:
        return []
    decision = ctx.require("health.self_alert")
    windows = quiet_windows_from(ctx, now)
    results = []
    for announcement in pending:
        raised_at = announcement.raised_at or stamp(now)
        sent: list[Delivery] = []
        silenced: list[str] = []
        for provider in operations_providers(ctx):
            if silencing(windows, provider, "critical", now) is not None:
                silenced.append(provider)  # only a window that silences critical does
                continue
            message = self_alert_message(announcement, raised_at, now, provider)
            try:
                sent.append(send_one(
                    ctx, registry, kind="self_alert", provider=provider, plan_id=None,
                    schedule_run_id=None, attempt=1,
                    key=f"{message['incident_key']}:{announcement.state}",
                    message=message, action="health.self_alert.deliver", decision=decision))
            except Conflict as exc:  # one busy provider must not hold back the others
                log.warning("self-alert to %s not sent: %s", provider, exc)
        record_self_alert(ctx, announcement, raised_at, [d.delivery_id for d in sent],
                          {"state": announcement.state, "code": announcement.code,
                           "message": announcement.message, "raised_at": raised_at,
                           "deliveries": [d.delivery_id for d in sent],
                           "quiet": silenced})
        results.append(SelfAlertResult(announcement, sent, silenced))
    return results
