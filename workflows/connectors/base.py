"""The connector interface: one attempt per call, an honest outcome, never a secret."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from store.clock import Clock, system_clock
from store.config import CavraConfig


@dataclass(frozen=True)
class Outcome:
    """What a connector reports about one attempt (the store records it on the delivery)."""

    status: str  # delivered | failed | unknown
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None
    retry_after_s: int | None = None


@dataclass(frozen=True)
class OutboundMessage:
    delivery_id: str
    kind: str  # escalation | executive | drill | resolve
    provider: str
    idempotency_key: str
    plan_id: str | None
    schedule_run_id: str | None  # an executive report's run (the body's ``run_id``)
    attempt: int
    message: dict[str, Any] = field(default_factory=dict)


class MissingSecret(Exception):
    """The environment variable a provider names is not set."""


def redact_url(url: str) -> str:
    """Scheme and host only: paths and queries of webhook URLs carry tokens."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "invalid-url"
    return f"{parts.scheme or '?'}://{host}{port}/***"


def error_class(exc: BaseException) -> str:
    """A class name and a fixed description: exception text can quote URLs or credentials."""
    return exc.__class__.__name__


class Connector(ABC):
    kind: str

    def __init__(self, name: str, settings: Any, config: CavraConfig, *,
                 clock: Clock = system_clock) -> None:
        self.name = name
        self.settings = settings
        self.config = config
        self.clock = clock  # the app's "now" for what a send stamps (webhook-timestamp)

    @property
    def timeout_s(self) -> float:
        return float(self.settings.timeout_s)

    @abstractmethod
    def target(self) -> str:
        """The redacted target stored on the delivery record."""

    @abstractmethod
    def send(self, message: OutboundMessage) -> Outcome:
        """Exactly one attempt. Must not raise for provider failures: return the outcome."""


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    def ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)
