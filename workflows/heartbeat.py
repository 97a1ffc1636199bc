"""A heartbeat lease for one live run (SPEC §5.5): taken with a short TTL and renewed by a
background thread every third of it, between sends and while a send waits. A run that is
killed stops renewing, so its lease expires within one TTL and the next run may start."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from store.clock import Clock
from store.errors import Conflict
from store.policy import Decision
from store.services.context import StoreContext
from store.services.deliveries import sweep_stale_in_flight
from store.services.locks import acquire, lease_holder, release, try_acquire
from store.services.retry import Subject, record_abandoned_run

log = logging.getLogger(__name__)


class Heartbeat:
    """``with Heartbeat(...) as beat:``: ``beat.taken`` says whether the lease was free (or
    expired); ``beat.dead_holder`` names the holder whose lease had expired; ``beat.lost``
    turns true if a renewal ever fails (another process took it: stop sending)."""

    def __init__(self, ctx: StoreContext, name: str, holder: str, ttl_s: float,
                 clock: Clock) -> None:
        self.ctx, self.name, self.holder, self.ttl_s, self.clock = ctx, name, holder, ttl_s, clock
        self.taken = False
        self.dead_holder: str | None = None
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def __enter__(self) -> Heartbeat:
        self.taken, self.dead_holder = acquire(self.ctx, self.name, self.holder, self.ttl_s,
                                               self.clock())
        if self.taken:
            self._thread = threading.Thread(target=self._beat, name=f"cavra-lease-{self.name}",
                                            daemon=True)
            self._thread.start()
        return self

    def _beat(self) -> None:
        renewed = time.monotonic()
        while not self._stop.wait(self.ttl_s / 3):
            try:
                if not try_acquire(self.ctx, self.name, self.holder, self.ttl_s, self.clock()):
                    log.error("lease %s was taken from %s", self.name, self.holder)
                    self._lost.set()
                    return
                renewed = time.monotonic()
            except Exception:  # a failed renewal is retried at the next beat …
                log.exception("could not renew lease %s", self.name)
                # … but once the lease may have run out, another run may start: stop sending.
                if time.monotonic() - renewed >= self.ttl_s * 2 / 3:
                    log.error("lease %s not renewed for %.0f s: giving it up", self.name,
                              time.monotonic() - renewed)
                    self._lost.set()
                    return

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.taken:
            release(self.ctx, self.name, self.holder)


@contextmanager
def live_run_lease(ctx: StoreContext, name: str, run_id: str, *, action: str, what: str,
                   subject: Subject) -> Iterator[tuple[Heartbeat, int]]:
    """One live run of a worker at a time (both retry workers): take its heartbeat lease or
    refuse (audited as ``action``), then settle what a dead holder left — its in-flight
    deliveries past their deadline become ``unknown`` (counted), the dead run is recorded
    abandoned. Yields the lease and how many deliveries were settled."""
    with Heartbeat(ctx, name, run_id, ctx.config.retry.lease_ttl_s, ctx.clock) as lease:
        if not lease.taken:
            holder = lease_holder(ctx, name, ctx.clock())
            refusal = Decision(False, f"one {what} at a time",
                               f"live run {holder or 'unknown'} is in progress")
            ctx.audit_denial(action, [holder] if holder else [], refusal)
            raise Conflict(f"another {what} ({holder or 'unknown'}) is in progress; wait for "
                           "it to finish")
        marked = sweep_stale_in_flight(ctx)
        if lease.dead_holder:  # its process died holding the lease: say so, in evidence
            record_abandoned_run(ctx, lease.dead_holder, subject)
        yield lease, len(marked)
