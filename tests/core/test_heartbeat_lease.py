"""Heartbeat leases (SPEC §5.5): renewed while their holder lives, lost within one TTL when
it dies, the next holder told whose lease expired; `cavra health` names a lease held longer
than a run should take."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from store.services.health import read_health
from store.services.locks import acquire, release, try_acquire
from tests.core.helpers import WEBHOOK_CONFIG
from workflows.heartbeat import Heartbeat


def _now() -> datetime:
    return datetime.now(UTC)


def test_a_renewed_lease_outlives_its_ttl_and_an_abandoned_one_does_not(
        make_runtime: Any, write_config: Any) -> None:
    ctx = make_runtime(write_config(WEBHOOK_CONFIG)).ctx
    with Heartbeat(ctx, "live_test", "wrk-alive", 0.6, _now) as beat:
        assert beat.taken and beat.dead_holder is None
        time.sleep(1.5)  # well past one TTL: the beat kept it
        assert not try_acquire(ctx, "live_test", "wrk-other", 0.6, _now())
        assert not beat.lost
    assert try_acquire(ctx, "live_test", "wrk-other", 0.6, _now())  # released on exit
    release(ctx, "live_test", "wrk-other")

    # A holder that stops renewing (killed) loses the lease within one TTL …
    assert try_acquire(ctx, "live_test", "wrk-dead", 0.6, _now())
    assert acquire(ctx, "live_test", "wrk-next", 0.6, _now()) == (False, None)
    time.sleep(0.7)
    # … and the next holder learns whose lease expired.
    assert acquire(ctx, "live_test", "wrk-next", 0.6, _now()) == (True, "wrk-dead")
    assert acquire(ctx, "live_test", "wrk-next", 0.6, _now()) == (True, None)  # a renewal


def test_a_run_that_loses_its_lease_is_told(make_runtime: Any, write_config: Any) -> None:
    ctx = make_runtime(write_config(WEBHOOK_CONFIG)).ctx
    with Heartbeat(ctx, "live_test", "wrk-slow", 0.6, _now) as beat:
        release(ctx, "live_test", "wrk-slow")  # as if it had expired …
        assert try_acquire(ctx, "live_test", "wrk-thief", 60, _now())  # … and been taken
        time.sleep(0.5)
        assert beat.lost


def test_health_names_a_lease_held_too_long(make_runtime: Any, write_config: Any,
                                            clock: Any) -> None:
    runtime = make_runtime(write_config(WEBHOOK_CONFIG))
    assert try_acquire(runtime.ctx, "live_retry_worker", "wrk-stuck", 30, clock.now)
    assert "live_lock_held" not in {a.code for a in read_health(runtime.ctx).alerts}
    for _ in range(12):  # renewed every 10 s for two minutes: alive, but far too long
        clock.advance(seconds=10)
        assert try_acquire(runtime.ctx, "live_retry_worker", "wrk-stuck", 30, clock.now)
    # default max_deliveries 5 × the provider's 2 s timeout + 60 s = 70 s
    [alert] = [a for a in read_health(runtime.ctx).alerts if a.code == "live_lock_held"]
    assert alert.figures["holder"] == "wrk-stuck" and alert.figures["age_minutes"] == 2
    release(runtime.ctx, "live_retry_worker", "wrk-stuck")
    assert "live_lock_held" not in {a.code for a in read_health(runtime.ctx).alerts}
