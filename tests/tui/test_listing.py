"""Keyset-paged lists (store.services.listing): every record once, newest first, even when
many records share one timestamp (a frozen clock makes them all tie)."""

from __future__ import annotations

import pytest

from cavra_tui.bootstrap import Runtime
from store.errors import UserError
from store.models import RecoveryItem
from store.services.escalation import build_plan
from store.services.listing import list_audit_events, list_plans
from store.services.recovery import import_recovery_items


def _plans(runtime: Runtime, count: int) -> list[str]:
    import_recovery_items(runtime.ctx, [RecoveryItem(
        recovery_id="rec-1", connector="payments-api", category="rollback",
        opened_at=runtime.ctx.clock())])
    return [build_plan(runtime.ctx).plan_id for _ in range(count)]


def test_pages_walk_every_record_once_in_order_despite_equal_timestamps(
        runtime: Runtime) -> None:
    made = _plans(runtime, 23)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = list_plans(runtime.ctx, cursor=cursor, limit=5)
        seen += [plan.plan_id for plan in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 5
    assert seen == sorted(made, reverse=True)  # same created_at: the ID breaks the tie


def test_search_and_bad_cursor(runtime: Runtime) -> None:
    made = _plans(runtime, 3)
    assert [p.plan_id for p in list_plans(runtime.ctx, search=made[1]).items] == [made[1]]
    with pytest.raises(UserError, match="cursor"):
        list_plans(runtime.ctx, cursor="not-a-cursor")
    with pytest.raises(UserError, match="page size"):
        list_plans(runtime.ctx, limit=0)


def test_audit_events_page_by_sequence(runtime: Runtime) -> None:
    _plans(runtime, 4)
    first = list_audit_events(runtime.ctx, limit=3)
    rest = list_audit_events(runtime.ctx, cursor=first.next_cursor, limit=10)
    seqs = [e.seq for e in first.items + rest.items]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs) == seqs[0]
    assert rest.next_cursor is None
