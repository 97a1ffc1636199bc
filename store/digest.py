"""Canonical JSON and SHA-256, so the same content always hashes the same."""

import hashlib
import json
from typing import Any

# One encoder for every call (``json.dumps`` with these options builds one per call).
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str,
                            ensure_ascii=True)


def canonical_json(value: Any) -> str:
    return _ENCODER.encode(value)


def sha256_of(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()
