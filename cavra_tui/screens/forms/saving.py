"""A modal form that saves itself: the write runs in a thread worker while the form stays
open, so a refusal from the service shows inline and what was typed is kept."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from textual.message import Message
from textual.widgets import Button, Input, Label
from textual.worker import get_current_worker

from cavra_tui.screens.modal import CavraModal
from cavra_tui.workflow import ActionResult
from store.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class FormSaved(Message):
    outcome: ActionResult


@dataclass
class FormRefused(Message):
    reason: str


class SavingForm(CavraModal[ActionResult | None]):
    """Subclasses build a request from their fields and call ``save(request)``; the form
    dismisses with the service's ActionResult on success."""

    ERROR_ID: ClassVar[str] = ""
    SUBMIT_ID: ClassVar[str] = ""

    def __init__(self, save: Callable[[Any], ActionResult]) -> None:
        super().__init__()
        self._save = save

    def show_error(self, text: str) -> None:
        error = self.query_one(f"#{self.ERROR_ID}", Label)
        error.update(f"✗ {text}")
        error.add_class("-shown")

    def clear_error(self) -> None:
        """A field changed: an error about its old value no longer stands."""
        if not self.is_mounted:
            return
        error = self.query_one(f"#{self.ERROR_ID}", Label)
        error.update("")
        error.remove_class("-shown")

    def _request(self) -> Any:
        """Build the request from the fields; raise UserError to show a message inline."""
        raise NotImplementedError

    def submit(self) -> None:
        try:
            request = self._request()
        except UserError as exc:
            self.show_error(str(exc))
            return
        self.save(request)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == self.SUBMIT_ID:
            self.submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def save(self, request: Any) -> None:
        if any(not worker.is_finished for worker in self.workers):
            return  # one write at a time: Enter pressed twice saves once
        self.query_one(f"#{self.SUBMIT_ID}", Button).disabled = True

        def work() -> None:
            try:
                outcome = self._save(request)
            except UserError as exc:
                self.post_message(FormRefused(str(exc)))
                return
            except Exception as exc:  # shown, logged, survived
                log.exception("saving %s failed", type(self).__name__)
                self.post_message(FormRefused(f"internal error: {exc.__class__.__name__} "
                                              "(details in cavra.log)"))
                return
            if not get_current_worker().is_cancelled:
                self.post_message(FormSaved(outcome))

        self.run_worker(work, thread=True, group="save", exit_on_error=False)

    def on_form_saved(self, message: FormSaved) -> None:
        message.stop()
        self.dismiss(message.outcome)

    def on_form_refused(self, message: FormRefused) -> None:
        message.stop()
        self.query_one(f"#{self.SUBMIT_ID}", Button).disabled = False
        self.show_error(message.reason)
        refresh = getattr(self.app, "refresh_data", None)
        if refresh is not None:  # a refusal is audited: the screens below should show it
            refresh()
