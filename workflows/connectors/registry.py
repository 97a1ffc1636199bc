"""Builds the configured connectors by name."""

from __future__ import annotations

import importlib
from pathlib import Path

from store.clock import Clock, system_clock
from store.config import CavraConfig
from store.errors import UserError
from workflows.connectors.base import Connector
from workflows.connectors.outbox import OutboxConnector

# kind → "module:class"; a new kind is one module plus one line here (outbox is built apart:
# it needs the default folder). Imported on first use: httpx and smtplib cost start-up time
# and memory that a console on the embedded outbox never needs.
NETWORK_KINDS: dict[str, str] = {
    "webhook": "workflows.connectors.webhook:WebhookConnector",
    "slack": "workflows.connectors.slack:SlackConnector",
    "email": "workflows.connectors.email:EmailConnector",
    "pagerduty": "workflows.connectors.pagerduty:PagerDutyConnector",
}


def connector_class(kind: str) -> type[Connector]:
    module, _, name = NETWORK_KINDS[kind].partition(":")
    found: type[Connector] = getattr(importlib.import_module(module), name)
    return found

class ConnectorRegistry:
    def __init__(self, config: CavraConfig, outbox_dir: Path, *,
                 clock: Clock = system_clock) -> None:
        self.config = config
        self.outbox_dir = outbox_dir
        self.clock = clock  # what connectors stamp on a send (webhook-timestamp)
        self._cache: dict[str, Connector] = {}
        # Built now, so a malformed whsec_ secret is one config error before any command
        # records or sends anything, not a failure halfway through a run.
        for name, settings in config.providers.items():
            if settings.enabled and getattr(settings, "signing", None) == "standard-webhooks":
                self.get(name)

    def override(self, name: str, connector: Connector | None) -> None:
        """Swap in a connector for one provider (the demo's flaky phase); None restores."""
        if connector is None:
            self._cache.pop(name, None)
        else:
            self._cache[name] = connector

    def get(self, name: str) -> Connector:
        if name in self._cache:
            return self._cache[name]
        settings = self.config.provider(name)
        if settings is None:
            raise UserError(f"provider {name!r} is not configured")
        connector: Connector
        if settings.kind == "outbox":
            connector = OutboxConnector(name, settings, self.config, self.outbox_dir)
        elif settings.kind in NETWORK_KINDS:
            connector = connector_class(settings.kind)(name, settings, self.config,
                                                       clock=self.clock)
        else:
            raise UserError(f"provider {name!r}: kind {settings.kind!r} is not supported yet")
        self._cache[name] = connector
        return connector
