"""The scheduler leader lease (SPEC §8): one row, taken and renewed atomically.

Only the holder fires jobs; the others stand by and take over once it expires.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime
from typing import TYPE_CHECKING

from scheduler.status import LEADER_LOCK
from store.clock import Clock
from store.services.locks import lease_holder, release, try_acquire

if TYPE_CHECKING:
    from store.services.context import StoreContext


def default_holder() -> str:
    """Host, process and a random suffix: readable in the pane, unique per scheduler."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class LeaderLease:
    def __init__(self, ctx: StoreContext, holder: str, ttl_s: float, clock: Clock) -> None:
        self.ctx = ctx
        self.holder = holder
        self.ttl_s = ttl_s
        self.clock = clock

    def renew(self, now: datetime | None = None) -> bool:
        """Take the lease if it is free or expired, extend it if it is ours."""
        return try_acquire(self.ctx, LEADER_LOCK, self.holder, self.ttl_s, now or self.clock())

    def held(self) -> bool:
        """Still ours right now? Checked by a job just before it does any work."""
        return lease_holder(self.ctx, LEADER_LOCK, self.clock()) == self.holder

    def release(self) -> None:
        release(self.ctx, LEADER_LOCK, self.holder)
