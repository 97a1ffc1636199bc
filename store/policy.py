"""Who is acting and what they may do (SPEC §9)."""

from __future__ import annotations

import getpass
import grp
import os
from dataclasses import dataclass

from store.config import ROLE_NAMES, CavraConfig

OPERATING = frozenset({"operator", "release_manager"})
RELEASE = frozenset({"release_manager"})

# action → roles that may take it. Reads (metrics, evidence, audit verify/export) need none.
RULES: dict[str, frozenset[str]] = {
    "recovery.import": OPERATING,
    "escalation.plan": OPERATING,
    "escalation.deliver": OPERATING,
    "escalation.ack": OPERATING,
    "retry.plan": OPERATING,
    "retry.run.dry_run": OPERATING,
    "retry.run.live": RELEASE,
    "report.schedule_run": OPERATING,
    "report.deliver": OPERATING,
    "provider.test": OPERATING,
    "schedule.change": RELEASE,
    "demo.seed": OPERATING,
    "scheduler.fire": OPERATING,
}


@dataclass(frozen=True)
class Identity:
    actor: str
    roles: frozenset[str]
    read_only: bool = False
    single_operator: bool = False

    @property
    def role_label(self) -> str:
        if self.single_operator:
            label = "single-operator"
        else:
            label = "+".join(sorted(self.roles)) or "none"
        return f"{label} (read-only)" if self.read_only else label


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str
    reason: str


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid-{os.getuid()}"


def _user_groups(user: str) -> set[str]:
    try:
        return {group.gr_name for group in grp.getgrall() if user in group.gr_mem}
    except OSError:
        return set()


def resolve_identity(config: CavraConfig, *, read_only: bool = False,
                     user: str | None = None) -> Identity:
    """The OS user is the actor. No [roles] table → single-operator mode (all roles)."""
    actor = user or current_user()
    roles_config = config.roles
    if roles_config is None:
        return Identity(actor, frozenset(ROLE_NAMES), read_only, single_operator=True)
    groups = _user_groups(actor)
    roles = set()
    for role in ROLE_NAMES:
        members = getattr(roles_config, role)
        if actor in members or any(f"@{group}" in members for group in groups):
            roles.add(role)
    return Identity(actor, frozenset(roles), read_only=read_only or not roles)


def authorize(identity: Identity, action: str) -> Decision:
    needed = RULES[action]
    rule = f"{action} requires {' or '.join(sorted(needed))}"
    if identity.read_only:
        return Decision(False, rule, "read-only mode: no changes allowed")
    if identity.roles & needed:
        return Decision(True, rule, "allowed")
    have = ", ".join(sorted(identity.roles)) or "no role"
    return Decision(False, rule, f"{identity.actor} has {have}; {action} needs "
                    f"{' or '.join(sorted(needed))}")
