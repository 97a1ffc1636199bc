"""The acknowledgement form: validated inline, nothing is written until it is valid."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select

from cavra_tui.screens.forms.saving import SavingForm
from cavra_tui.workflow import AckRequest, ActionResult
from store.errors import UserError
from store.models import ACK_CLEARS_LIVE_RETRY, ACK_STATES
from store.services.acknowledgements import validate_ack_input


def state_label(state: str) -> str:
    """States that let a live retry send are marked: recording one is a decision."""
    return f"{state} (unlocks live retry)" if state in ACK_CLEARS_LIVE_RETRY else state


class AckForm(SavingForm):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    ERROR_ID = "ack-error"
    SUBMIT_ID = "ack-submit"

    def __init__(self, plan_id: str, provider: str,
                 save: Callable[[AckRequest], ActionResult]) -> None:
        super().__init__(save)
        self._plan_id = plan_id
        self._provider = provider

    def compose(self) -> ComposeResult:
        with Vertical(id="ack-form", classes="dialog form"):
            yield Label("Record an acknowledgement", classes="dialog-title")
            # Compact fields (no borders) keep the whole form inside 80×24.
            yield Label("Plan (ID or latest)")
            yield Input(self._plan_id, id="ack-plan", compact=True)
            yield Label("Provider")
            yield Input(self._provider, id="ack-provider", compact=True)
            yield Label("State")
            # No default: a state that unlocks live retries must be a choice, not an Enter.
            yield Select([(state_label(state), state) for state in ACK_STATES],
                         prompt="choose a state", allow_blank=True, id="ack-state",
                         compact=True)
            yield Label("External ref (optional)")
            yield Input(id="ack-ref", placeholder="e.g. INC-4812", compact=True)
            yield Label("Notes (optional, private: never sent)")
            yield Input(id="ack-notes", compact=True)
            yield Label("", id="ack-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Record", variant="primary", id="ack-submit", compact=True)
                yield Button("Cancel", id="ack-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#ack-plan", Input).focus()

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def _request(self) -> AckRequest:
        plan_id, provider = self._value("ack-plan"), self._value("ack-provider")
        if not plan_id:
            raise UserError("plan is required (an escalation plan ID or `latest`)")
        if not provider:
            raise UserError("provider is required (one the plan was delivered to)")
        select = self.query_one("#ack-state", Select)
        if select.is_blank():
            raise UserError("choose a state: nothing is recorded until you do")
        state = str(select.value)
        ref, notes = self._value("ack-ref") or None, self._value("ack-notes") or None
        validate_ack_input(state, ref, notes)
        return AckRequest(plan_id, provider, state, ref, notes)

    def on_input_changed(self, _event: Input.Changed) -> None:
        self.clear_error()  # the message was about the old value

    def on_select_changed(self, _event: Select.Changed) -> None:
        self.clear_error()

    def show_error(self, text: str) -> None:
        # The service words its checks for the CLI; name the form's fields instead.
        super().show_error(text.replace("--ref", "external ref").replace("--notes", "notes"))
