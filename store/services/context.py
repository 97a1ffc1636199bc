"""What every service call needs: the database, the config, who is acting, and the clock."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from store.audit import EventSigner, append_audit
from store.clock import Clock, system_clock
from store.config import CavraConfig
from store.db import Database
from store.errors import PolicyDenied, UserError
from store.policy import Decision, Identity, authorize

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
                append_audit(session, identity=self.identity, action=action,
                             target_ids=target_ids, rule=decision.rule, allowed=False,
                             detail=decision.reason, evidence={"action": action,
                                                               "targets": target_ids},
                             at=self.clock(), signer=self.event_signer)
        except (SQLAlchemyError, UserError):  # a read-only copy; no key to sign with
            log.warning("could not record the denial of %s", action)

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self.db.write() as session:
            yield session

    def audit_deny(self, session: Session, action: str, rule: str, target_ids: list[str],
                   detail: str, evidence: Any) -> None:
        """A refusal decided inside a unit of work (e.g. separation of duties in a run)."""
        append_audit(session, identity=self.identity, action=action, target_ids=target_ids,
                     rule=rule, allowed=False, detail=detail, evidence=evidence,
                     at=self.clock(), signer=self.event_signer)

    def audit(self, session: Session, action: str, decision: Decision, target_ids: list[str],
              detail: str, evidence: Any) -> None:
        append_audit(session, identity=self.identity, action=action, target_ids=target_ids,
                     rule=decision.rule, allowed=True, detail=detail, evidence=evidence,
                     at=self.clock(), signer=self.event_signer)
