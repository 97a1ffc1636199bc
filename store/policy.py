"""Who is acting and what they may do (SPEC §9)."""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass

from store.config import ROLE_NAMES, CavraConfig

OPERATING = frozenset({"operator", "release_manager"})
RELEASE = frozenset({"release_manager"})
WITNESSING = frozenset({"operator", "release_manager", "auditor"})

# action → roles that may take it. Reads (metrics, evidence, audit verify/export) need none.
RULES: dict[str, frozenset[str]] = {
    "recovery.import": OPERATING,
    "escalation.plan": OPERATING,
    "escalation.deliver": OPERATING,
    "escalation.ack": OPERATING,
    "escalation.follow_up.dry_run": OPERATING,
    "escalation.follow_up.live": OPERATING,  # sends a plan's next level, as deliver does
    "retry.plan": OPERATING,
    "retry.run.dry_run": OPERATING,
    "retry.run.live": RELEASE,
    "report.schedule_run": OPERATING,
    "report.deliver": OPERATING,
    "report.retry.plan": OPERATING,
    "report.retry.dry_run": OPERATING,
    "report.retry.live": OPERATING,  # no acknowledgement gate: executive reports are not acked
    "provider.test": OPERATING,
    "schedule.change": RELEASE,
    "quiet.change": RELEASE,  # quiet windows silence sends: as weighty as a live schedule
    "demo.seed": OPERATING,
    "scheduler.fire": OPERATING,
    "audit.checkpoint": WITNESSING,
    "db.grant": RELEASE,
    "health.record": WITNESSING,
    "health.self_alert": OPERATING,  # the scheduler leader tells operations the loop fails
}


# Short: the header must fit 80 columns ("os": the effective uid, "db": the database role).
IDENTITY_SOURCES = {"os": "os", "database": "db"}


@dataclass(frozen=True)
class Identity:
    actor: str
    roles: frozenset[str]
    read_only: bool = False
    single_operator: bool = False
    source: str = "os"  # where the actor's name comes from: "os" (euid) or "database"
    read_only_reason: str = "--read-only was given"

    @property
    def source_label(self) -> str:
        return IDENTITY_SOURCES.get(self.source, self.source)

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
    """The user of the effective uid. Never USER/LOGNAME/LNAME/USERNAME: anyone can set those
    (``getpass.getuser`` reads them first)."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # no passwd entry (some containers)
        return f"uid-{uid}"


def os_groups(user: str) -> frozenset[str]:
    """The user's real group memberships (primary and supplementary) from the group database."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return frozenset()
    names = set()
    for gid in os.getgrouplist(user, entry.pw_gid):
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            continue
    return frozenset(names)


def resolve_identity(config: CavraConfig, *, read_only: bool = False,
                     user: str | None = None, groups: frozenset[str] | None = None,
                     source: str = "os",
                     read_only_reason: str = "--read-only was given") -> Identity:
    """The OS user (or, with ``source = "database"``, the database's session user) is the
    actor. No [roles] table → single-operator mode (all roles)."""
    actor = user or current_user()
    roles_config = config.roles
    if roles_config is None:
        return Identity(actor, frozenset(ROLE_NAMES), read_only, single_operator=True,
                        source=source, read_only_reason=read_only_reason)
    if groups is None:
        groups = os_groups(actor)
    roles = set()
    for role in ROLE_NAMES:
        members = getattr(roles_config, role)
        if actor in members or any(f"@{group}" in members for group in groups):
            roles.add(role)
    return Identity(actor, frozenset(roles), read_only=read_only or not roles, source=source,
                    read_only_reason=read_only_reason)


def authorize(identity: Identity, action: str) -> Decision:
    needed = RULES[action]
    rule = f"{action} requires {' or '.join(sorted(needed))}"
    have = ", ".join(sorted(identity.roles)) or "no role"
    if identity.read_only and not identity.roles:
        # Read-only because the user holds no role: say what the action needs.
        return Decision(False, rule, f"{identity.actor} holds no role; {action} needs "
                        f"{' or '.join(sorted(needed))}")
    if identity.read_only:
        return Decision(False, rule, f"read-only mode: no changes allowed ({identity.actor} "
                        f"has {have}; {identity.read_only_reason})")
    if identity.roles & needed:
        return Decision(True, rule, "allowed")
    return Decision(False, rule, f"{identity.actor} has {have}; {action} needs "
                    f"{' or '.join(sorted(needed))}")
