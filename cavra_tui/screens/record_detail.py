"""A record in full (Enter on any list row): every field, nothing cut, readable at 80×24.
A field that names another record is a link: Enter opens it on top, Esc or Backspace goes
back through the trail (each record is one modal on the stack), and the title shows it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Label

from cavra_tui.screens.modal import CavraModal
from store.clock import as_utc
from store.text import visible


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return as_utc(value).isoformat(timespec="seconds")
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


class RecordDetail(CavraModal[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Back"),
        Binding("backspace", "dismiss", "Back", show=False),
    ]

    def __init__(self, record_id: str, trail: tuple[str, ...] = (),
                 fields: dict[str, Any] | None = None) -> None:
        """``fields``: a record that lives inside another (a plan's route, a retry
        decision, a health alert), shown as given; otherwise it is read by its ID."""
        super().__init__()
        self.record_id = record_id
        self.trail = (*trail, record_id)
        self.links: dict[str, str] = {}  # row key → the record ID it opens
        self.given = fields

    def compose(self) -> ComposeResult:
        with Vertical(id="record-detail", classes="dialog"):
            crumbs = " › ".join(self.trail[-3:])
            yield Label(("… › " if len(self.trail) > 3 else "") + crumbs, id="detail-trail",
                        classes="dialog-title")
            yield DataTable(id="detail-fields", cursor_type="row", zebra_stripes=True)
            yield Label("Enter on a ↗ field opens that record · Esc goes back", id="detail-hint")

    def on_mount(self) -> None:
        table = self.query_one("#detail-fields", DataTable)
        table.add_columns("Field", "Value")
        table.add_row("", Text("loading…", style="dim"))
        if self.given is not None:
            self._show(self.given, [])
            return
        ctx = self.app.runtime.ctx  # type: ignore[attr-defined]
        record_id = self.record_id

        def fetch() -> tuple[dict[str, Any] | None, list[Any]]:
            from store.services.records import read_record, related_records

            fields = read_record(ctx, record_id)
            return fields, related_records(ctx, record_id) if fields else []

        self.run_worker(fetch, thread=True, name="detail", exit_on_error=False)

    def on_worker_state_changed(self, event: Any) -> None:
        worker = event.worker
        if worker.name != "detail" or not worker.is_finished:
            return
        fields, related = worker.result if worker.error is None else (None, [])
        self._show(fields, related)

    def _show(self, fields: dict[str, Any] | None, related: list[Any]) -> None:
        from store.services.records import record_kind

        table = self.query_one("#detail-fields", DataTable)
        table.clear()
        if not fields:
            table.add_row("", Text(f"{self.record_id}: not found", style="red"))
            return
        for name, value in fields.items():
            shown = visible(_shown(value))
            if isinstance(value, str) and value != self.record_id and record_kind(value):
                self.links[name] = value
                table.add_row(name, Text(f"↗ {shown}", style="bold underline"), key=name)
            else:
                # Long values wrap into several lines of the cell: nothing is cut.
                table.add_row(name, Text(shown), key=name, height=None)
        if related:
            table.add_row(Text("named by", style="dim"), Text("records that name this one",
                                                              style="dim"), key="-related-")
        for index, other in enumerate(related):
            key = f"-related-{index}"
            self.links[key] = other.record_id
            table.add_row(other.relation, Text.assemble(
                (f"↗ {other.record_id}", "bold underline"), f" {visible(other.summary)}"),
                key=key)
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        target = self.links.get(str(event.row_key.value))
        if target is not None:
            self.app.push_screen(RecordDetail(target, self.trail))
