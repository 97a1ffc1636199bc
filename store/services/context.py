"""What every service call needs: the database, the config, who is acting, and the clock."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from store.clock import Clock, system_clock
from store.config import CavraConfig
from store.db import Database
from store.errors import PolicyDenied, UserError
from store.policy import Decision, Identity, authorize

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from store.audit import EventSigner

log = logging.getLogger(__name__)


@dataclass
class StoreContext:
    db: Database
    config: CavraConfig
    identity: Identity
    clock: Clock = field(default=system_clock)
    # [audit] signing = "ssh": every event is signed with the actor's key (SPEC §9).
    event_signer: EventSigner | None = None

    def require(self, action: str, target_ids: list[str] | None = None) -> Decision:
        """Allow or refuse ``action``; a refusal is audited, then raised."""
        decision = authorize(self.identity, action)
        if not decision.allowed:
            self.audit_denial(action, target_ids or [], decision)
            raise PolicyDenied(f"refused: {decision.reason}")
        return decision

    def audit_denial(self, action: str, target_ids: list[str], decision: Decision) -> None:
        """Record a refusal in its own transaction (best effort on a read-only database)."""
        try:
            with self.db.write() as session:
                self._append(session, action, target_ids, decision.rule, False,
                             decision.reason, {"action": action, "targets": target_ids})
        except (SQLAlchemyError, UserError):  # a read-only copy; no key to sign with
            log.warning("could not record the denial of %s", action)

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self.db.write() as session:
            yield session

    def audit_deny(self, session: Session, action: str, rule: str, target_ids: list[str],
                   detail: str, evidence: Any) -> None:
        """A refusal decided inside a unit of work (e.g. separation of duties in a run)."""
        self._append(session, action, target_ids, rule, False, detail, evidence)

    def audit(self, session: Session, action: str, decision: Decision, target_ids: list[str],
              detail: str, evidence: Any) -> None:
        self._append(session, action, target_ids, decision.rule, True, detail, evidence)

    def _append(self, session: Session, action: str, target_ids: list[str], rule: str,
                allowed: bool, detail: str, evidence: Any) -> None:
        # The audit chain is ORM work: loaded with the first write, so a read-only command
        # (metrics, schedule list) never imports it.
        from store.audit import append_audit

        append_audit(session, identity=self.identity, action=action, target_ids=target_ids,
                     rule=rule, allowed=allowed, detail=detail, evidence=evidence,
                     at=self.clock(), signer=self.event_signer)
