"""Config snippets shared by the audit tests: an outbox witness (outside the database's folder)
and HMAC-signed checkpoints."""

from __future__ import annotations

from pathlib import Path

KEY_ENV = "CAVRA_TEST_AUDIT_KEY"


def witness_toml(witness: Path, *, key_env: str | None = KEY_ENV, name: str = "audit-witness",
                 audit_extra: str = "") -> str:
    """A `[providers.NAME]` outbox witness at ``witness`` and the `[audit]` table."""
    audit = (f'key_env = "{key_env}"\n' if key_env else "") + audit_extra
    return (f'\n[providers.{name}]\nkind = "outbox"\npath = "{witness}"\naudience = ["audit"]\n'
            f"\n[audit]\n{audit}")
