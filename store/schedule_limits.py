"""What a schedule may be: its kinds, interval and catch-up limits (SPEC §8).

No imports, so the command line can show the defaults in ``--help`` without loading the store.
"""

KINDS: tuple[str, ...] = ("report", "retry-worker", "report-retry", "follow-up")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_INTERVAL_S = 1
MAX_INTERVAL_S = 366 * 86400
MAX_MISFIRE_GRACE_S = 86400
DEFAULT_MISFIRE_GRACE_S = 300
