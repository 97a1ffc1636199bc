"""The audit chain as keyset pages, newest first (SPEC §3): ``seq`` is the order and the
cursor. SQLAlchemy Core on ``store.core_tables``: the dashboard's activity feed reads it on
every refresh, and its first frame should not wait for the ORM."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from store.core_tables import audit_events
from store.errors import UserError
from store.models import AuditEvent, Page
from store.services.search import SearchedPage, count_matches, search_condition

if TYPE_CHECKING:  # a type only: importing the context loads the audit log
    from store.services.context import StoreContext

DEFAULT_PAGE = 50
MAX_PAGE = 500
# The Audit list's Decision, Action, Actor and Detail columns.
_SEARCHED = (audit_events.c.action, audit_events.c.actor, audit_events.c.detail,
             audit_events.c.decision)


def list_audit_events(ctx: StoreContext, *, cursor: str | None = None, limit: int = DEFAULT_PAGE,
                      search: str | None = None) -> Page:
    if not 1 <= limit <= MAX_PAGE:
        raise UserError(f"page size must be between 1 and {MAX_PAGE}")
    query = select(audit_events)
    if cursor is not None:
        try:
            query = query.where(audit_events.c.seq < int(cursor))
        except ValueError:
            raise UserError("list cursor is not valid; start from the first page") from None
    condition = search_condition(search, _SEARCHED)
    if condition is not None:
        query = query.where(condition)
    query = query.order_by(audit_events.c.seq.desc()).limit(limit + 1)
    with ctx.db.connect() as conn:
        rows = conn.execute(query).all()
        counted = None
        if condition is not None and cursor is None:  # a filtered list's first page
            counted = ((len(rows), False) if len(rows) <= limit else count_matches(
                conn, select(audit_events.c.seq).where(condition)))
    items = [AuditEvent.model_validate(row) for row in rows[:limit]]
    next_cursor = str(rows[limit - 1].seq) if len(rows) > limit else None
    if counted is not None:
        return SearchedPage(items=items, next_cursor=next_cursor, matches=counted[0],
                            matches_capped=counted[1])
    return Page(items=items, next_cursor=next_cursor)
