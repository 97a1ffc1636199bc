"""The embedded default: JSON lines appended to a local file (SPEC §7)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from workflows.connectors.base import Connector, OutboundMessage, Outcome, Stopwatch, error_class


class OutboxConnector(Connector):
    kind = "outbox"

    def __init__(self, name: str, settings: Any, config: Any, default_dir: Path) -> None:
        super().__init__(name, settings, config)
        configured = settings.path
        if configured is None:
            filename = "outbox.jsonl" if name == "outbox" else f"{name}.jsonl"
            self.path = default_dir / filename
        else:
            base = Path(config.base_dir) if config.base_dir else default_dir
            self.path = (base / configured) if not Path(configured).is_absolute() else Path(
                configured)

    def target(self) -> str:
        return f"file://{self.path.name}"

    def send(self, message: OutboundMessage) -> Outcome:
        watch = Stopwatch()
        line = json.dumps({
            "delivery_id": message.delivery_id, "kind": message.kind, "provider": message.provider,
            "idempotency_key": message.idempotency_key, "plan_id": message.plan_id,
            "run_id": message.schedule_run_id, "message": message.message,
        }, sort_keys=True)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One write call per line in append mode keeps concurrent writers' lines whole.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
        except OSError as exc:
            return Outcome(status="failed", latency_ms=watch.ms(),
                           error=f"outbox_write_failed: {error_class(exc)}")
        return Outcome(status="delivered", latency_ms=watch.ms())
