"""The new-schedule form: cron or interval, timezone and kind, checked inline before saving."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select

from cavra_tui.screens.forms.saving import SavingForm
from cavra_tui.workflow import ScheduleRequest
from scheduler.triggers import check_cron
from store.errors import UserError
from store.schedule_limits import KINDS
from store.services.schedules import check_timezone, parse_duration


class ScheduleForm(SavingForm):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    ERROR_ID = "sch-error"
    SUBMIT_ID = "sch-submit"

    def compose(self) -> ComposeResult:
        with Vertical(id="schedule-form", classes="dialog form"):
            yield Label("Add a schedule", classes="dialog-title")
            yield Label("Name")
            yield Input(id="sch-name", placeholder="e.g. exec-morning", compact=True)
            yield Label("When: a cron expression (0 8 * * 1-5) or an interval (15m, 1h, 1d)")
            yield Input(id="sch-when", compact=True)
            yield Label("Timezone (IANA)")
            yield Input("UTC", id="sch-timezone", compact=True)
            yield Label("Kind")
            yield Select([(kind, kind) for kind in KINDS], value="report", allow_blank=False,
                         id="sch-kind", compact=True)
            yield Label("", id="sch-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Add", variant="primary", id="sch-submit", compact=True)
                yield Button("Cancel", id="sch-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#sch-name", Input).focus()

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def _request(self) -> ScheduleRequest:
        name, when, zone = self._value("sch-name"), self._value("sch-when"), self._value(
            "sch-timezone") or "UTC"
        if not name:
            raise UserError("name is required")
        if not when:
            raise UserError("say when: a cron expression or an interval such as 15m")
        check_timezone(zone)
        kind = str(self.query_one("#sch-kind", Select).value)
        if len(when.split()) > 1:  # fields: a cron expression (its check names what is wrong)
            return ScheduleRequest(name, check_cron(when, check_timezone(zone)), None, zone, kind)
        parse_duration(when)
        return ScheduleRequest(name, None, when, zone, kind)
