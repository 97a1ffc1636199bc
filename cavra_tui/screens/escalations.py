"""Escalations: plans (with their escalation level and the time left before the next), the
routes of the highlighted plan, and its deliveries, acks and follow-up levels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.widgets import DataTable

from cavra_tui import actions
from cavra_tui.formatting import status, when
from cavra_tui.messages import DataLoaded
from cavra_tui.screens.base import CavraScreen
from cavra_tui.widgets.record_table import RecordTable, Row
from store.ids import kind_of
from store.models import Acknowledgement, Delivery, EscalationPlan, Page, PlanWithLevel
from store.services.follow_up import FollowUpClaim, list_plans_with_levels, plan_claims
from store.services.listing import list_acknowledgements, list_deliveries

# Level: the plan's escalation level of its policy's (L2/3); Next: the time left before the
# next level (12m), "due" when a follow-up run would escalate it now, "-" when it will not.
PLAN_COLUMNS = (("When", "when"), ("Plan", "plan"), ("Alert", "alert"), ("Level", "level"),
                ("Next", "next"), ("Routes", "routes"), ("Providers", "providers"), ("By", "by"))
# What to do comes early: at 80 columns the last columns are cut off.
ROUTE_COLUMNS = (("Severity", "severity"), ("Action", "action"), ("Connector", "connector"),
                 ("Category", "category"), ("SLO", "slo"), ("Age", "age"), ("Fails", "fails"))
TIMELINE_COLUMNS = (("When", "when"), ("Event", "event"), ("Provider", "provider"),
                    ("Status", "status"), ("Detail", "detail"))


def plan_row(item: PlanWithLevel) -> Row:
    plan = item.plan
    return plan.plan_id, (when(plan.created_at), plan.plan_id, status(plan.alert_level),
                          item.level, item.next, str(len(plan.routes)),
                          ", ".join(plan.selected_providers) or "-", plan.created_by)


def timeline_rows(deliveries: list[Delivery], acks: list[Acknowledgement],
                  levels: Sequence[FollowUpClaim] = ()) -> list[Row]:
    """Deliveries, acknowledgements and follow-up levels of one plan, newest first, as one
    story. A delivery a follow-up run made names the run; a level's row is the run's ID
    (Enter opens the run's record)."""
    events: list[tuple[Any, Row]] = []
    for d in deliveries:
        code = f"HTTP {d.status_code}" if d.status_code is not None else ""
        run = (f"by {d.sent_by_run_id}" if d.sent_by_run_id
               and kind_of(d.sent_by_run_id) == "follow_up_run" else "")
        detail = " ".join(x for x in (f"attempt {d.attempt}", code, d.error or "", run) if x)
        events.append((d.created_at, (d.delivery_id, (when(d.created_at), "delivery",
                                                      d.provider, status(d.status), detail))))
    for a in acks:
        detail = f"by {a.acknowledged_by}" + (f" ref {a.external_ref}" if a.external_ref else "")
        events.append((a.created_at, (a.ack_id, (when(a.created_at), "ack", a.provider,
                                                 status(a.state), detail))))
    for c in levels:
        events.append((c.created_at, (c.follow_up_run_id, (
            when(c.created_at), f"level {c.level}", ", ".join(c.providers) or "-",
            status("escalated"), f"by {c.follow_up_run_id}"))))
    events.sort(key=lambda pair: (pair[0], pair[1][0]), reverse=True)
    return [row for _, row in events]


class EscalationsScreen(CavraScreen):
    TITLE: ClassVar[str] = "Escalations"
    BINDINGS: ClassVar[list[BindingType]] = actions.bindings("escalations")

    def __init__(self) -> None:
        super().__init__()
        self._plans: dict[str, EscalationPlan] = {}
        self._detail_for: str | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(classes="stack"):
            yield RecordTable(PLAN_COLUMNS, id="plans", title="Escalation plans")
            yield RecordTable(ROUTE_COLUMNS, id="routes", title="Routes of the plan")
            yield RecordTable(TIMELINE_COLUMNS, id="timeline", title="Deliveries and acks")

    def on_mount(self) -> None:
        ctx = self.runtime.ctx
        self.page_table("plans", lambda cursor, search: list_plans_with_levels(
            ctx, ctx.clock(), cursor=cursor, search=search), self._plan_row)
        # CavraScreen.on_mount runs after this one (Textual calls each class's handler).

    def _plan_row(self, item: PlanWithLevel) -> Row:
        self._plans[item.plan.plan_id] = item.plan
        return plan_row(item)

    def reload(self, merge: bool = False) -> None:
        self.reload_table("plans", merge=merge)
        if merge and self._detail_for:
            self._load_timeline(self._detail_for)

    def selected(self, kind: str) -> str | None:
        if kind == "plan":
            return self.query_one("#plans", RecordTable).selected_id()
        if kind == "provider":
            # A delivery or an acknowledgement; a level's row names several providers (and
            # has no record here): nothing to acknowledge there.
            record = self.query_one("#timeline", RecordTable).selected_record()
            return getattr(record, "provider", None)
        return None

    def table_shown(self, table_id: str) -> None:
        if table_id == "plans":
            self._show_detail(self.selected("plan"))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "plans":
            self._show_detail(event.row_key.value)

    def inline_record(self, table_id: str, row_key: str) -> tuple[str, dict[str, Any]] | None:
        """A route of the highlighted plan (its row key ends with the route's index)."""
        plan = self._plans.get(self._detail_for or "")
        index = row_key.rsplit("/", 1)[-1]
        if table_id != "routes" or plan is None or not index.isdigit():
            return None
        route = plan.routes[int(index)]
        return (f"{plan.plan_id} route {int(index) + 1}",
                {"plan_id": plan.plan_id, **route.model_dump(mode="json")})

    def _show_detail(self, plan_id: str | None) -> None:
        routes = self.query_one("#routes", RecordTable)
        plan = self._plans.get(plan_id or "")
        if plan is None:
            routes.show_rows([], has_more=False)
            self.query_one("#timeline", RecordTable).show_rows([], has_more=False)
            self._detail_for = None
            return
        routes.show_rows([(f"{r.connector}/{r.category}/{i}", (
            status(r.severity), r.recommended_action, r.connector, r.category, r.slo_status,
            f"{r.age_minutes}m", str(r.failure_count))) for i, r in enumerate(plan.routes)],
            has_more=False)
        if plan.plan_id != self._detail_for:
            self._detail_for = plan.plan_id
            self._load_timeline(plan.plan_id)

    def _load_timeline(self, plan_id: str) -> None:
        ctx = self.runtime.ctx
        self.load("timeline", lambda: (
            plan_id, list_deliveries(ctx, plan_id=plan_id, kind="escalation"),
            list_acknowledgements(ctx, plan_id=plan_id), plan_claims(ctx, plan_id)),
            self.show_timeline)

    def show_timeline(self, message: DataLoaded[tuple[str, Page, Page,
                                                      list[FollowUpClaim]]]) -> None:
        plan_id, deliveries, acks, levels = message.payload
        if plan_id != self._detail_for:
            return
        timeline = self.query_one("#timeline", RecordTable)
        timeline.records = {**{d.delivery_id: d for d in deliveries.items},
                            **{a.ack_id: a for a in acks.items}}
        timeline.show_rows(timeline_rows(deliveries.items, acks.items, levels), has_more=False)
        # One page of each: say so, rather than let the list look complete.
        cut = deliveries.next_cursor is not None or acks.next_cursor is not None
        timeline.border_subtitle = (f"newest {len(deliveries.items)} deliveries and "
                                    f"{len(acks.items)} acks only: older ones not shown"
                                    if cut else None)
