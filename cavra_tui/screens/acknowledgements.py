"""Acknowledgements: pairs still waiting for one, and every acknowledgement recorded."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical

from cavra_tui import actions
from cavra_tui.formatting import status, when
from cavra_tui.messages import DataLoaded
from cavra_tui.screens.base import CavraScreen
from cavra_tui.widgets.record_table import RecordTable, Row
from store.models import Acknowledgement, PairState
from store.services.listing import list_acknowledgements, list_pending_pairs

PENDING_COLUMNS = (("Plan", "plan"), ("Provider", "provider"), ("Last delivery", "delivery"),
                   ("Latest ack", "ack"), ("Since", "since"))
PENDING_SHOWN = 100  # pairs awaiting an acknowledgement listed at most (the count says more)
ACK_COLUMNS = (("When", "when"), ("Plan", "plan"), ("Provider", "provider"),
               ("State", "state"), ("By", "by"), ("Ref", "ref"))


def pending_row(pair: PairState) -> Row:
    return f"{pair.plan_id}/{pair.provider}", (
        pair.plan_id, pair.provider, status(pair.latest_status),
        status(pair.latest_ack_state) if pair.latest_ack_state else "none",
        when(pair.last_failure_at or pair.last_success_at))


def ack_row(ack: Acknowledgement) -> Row:
    return ack.ack_id, (when(ack.created_at), ack.plan_id, ack.provider, status(ack.state),
                        ack.acknowledged_by, ack.external_ref or "-")


class AcknowledgementsScreen(CavraScreen):
    TITLE: ClassVar[str] = "Acknowledgements"
    BINDINGS: ClassVar[list[BindingType]] = actions.bindings("acknowledgements")

    def compose_body(self) -> ComposeResult:
        with Vertical(classes="stack"):
            yield RecordTable(PENDING_COLUMNS, id="pending", title="Awaiting acknowledgement")
            yield RecordTable(ACK_COLUMNS, id="acks", title="Acknowledgements")

    def on_mount(self) -> None:
        ctx = self.runtime.ctx
        self.page_table("acks", lambda cursor, search: list_acknowledgements(
            ctx, cursor=cursor, search=search), ack_row)

    def reload(self, merge: bool = False) -> None:
        ctx = self.runtime.ctx
        self.load("pending", lambda: list_pending_pairs(ctx, limit=PENDING_SHOWN + 1),
                  self.show_pending)
        self.reload_table("acks", merge=merge)

    def show_pending(self, message: DataLoaded[list[PairState]]) -> None:
        pending = self.query_one("#pending", RecordTable)
        pairs = message.payload
        pending.records = {pending_row(pair)[0]: pair for pair in pairs[:PENDING_SHOWN]}
        pending.show_rows([pending_row(pair) for pair in pairs[:PENDING_SHOWN]],
                          has_more=False)
        pending.border_subtitle = (f"the {PENDING_SHOWN} most recent shown: more are waiting"
                                   if len(pairs) > PENDING_SHOWN else None)

    def selected(self, kind: str) -> str | None:
        pending = self.query_one("#pending", RecordTable)
        focused_acks = self.focused is self.query_one("#acks")
        source = self.query_one("#acks", RecordTable) if focused_acks else pending
        record = source.selected_record()  # an Acknowledgement or a PairState
        if record is None:
            return None
        return {"plan": record.plan_id, "provider": record.provider}.get(kind)
