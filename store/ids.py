"""Short, typed, unique record IDs such as ``esc-7f3a9c2e41``."""

import secrets

PREFIXES = {
    "plan": "esc",
    "ack": "ack",
    "retry_plan": "rtp",
    "worker_run": "wrk",
    "execution": "exe",
    "report": "rpt",
    "schedule_run": "run",
    "delivery": "dlv",
    "schedule": "sch",
    "checkpoint": "ckp",
    "health_snapshot": "hlt",
    "quiet_window": "qwn",
    "follow_up_run": "fup",
}


def new_id(kind: str) -> str:
    return f"{PREFIXES[kind]}-{secrets.token_hex(5)}"


def kind_of(record_id: str) -> str | None:
    prefix = record_id.split("-", 1)[0]
    for kind, known in PREFIXES.items():
        if known == prefix:
            return kind
    return None
