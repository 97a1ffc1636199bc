"""The console's workflow actions as Textual actions (keys, palette): each gathers what the
action needs from the screen (the highlighted plan, run …), asks for input or confirmation in
a modal when needed, and runs the workflow step in a thread worker.

This module is imported before the first frame, so the workflow steps and the forms (which
load the store) are imported where an action first needs them, never at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.worker import Worker, get_current_worker

from cavra_tui import actions
from cavra_tui.messages import ActionFailed, ActionFinished, LivePreviewReady, SendPreviewReady
from store.errors import UserError

if TYPE_CHECKING:
    from cavra_tui import workflow
    from cavra_tui.bootstrap import Runtime

log = logging.getLogger(__name__)
# Actions that write: a read-only session shows them greyed out and never runs them.
WRITE_ACTIONS = actions.WRITE_NAMES
# Actions that need the database open: greyed out until the console has started.
RUNTIME_ACTIONS = actions.NEEDS_RUNTIME | {"show_evidence"}


def _refuse(ctx: Any, permission: str) -> None:
    """Ask the store's policy anyway: it records the denial in the audit chain, then
    raises the reason (PolicyDenied)."""
    ctx.require(permission)
    raise UserError(f"refused: {permission}")  # reached only if the roles changed meanwhile


class WorkflowCommands(App[None]):
    """CavraApp's base. Results come back as ActionFinished / ActionFailed messages."""

    busy: list[str]
    _finishers: dict[Worker[Any], Callable[[], None]]

    def refresh_data(self) -> None:
        """Reload what the screens show (CavraApp decides how)."""

    def refresh_header(self) -> None:
        """Show the running actions in the header (CavraApp decides how)."""

    def note_own_write(self) -> None:
        """From a worker thread, after this console wrote: the reload that follows shows it,
        so the change poll must not reload for it again (CavraApp decides how)."""

    @property
    def runtime(self) -> Runtime:
        """The opened database, config and identity (CavraApp decides when it exists)."""
        raise NotImplementedError

    @property
    def started(self) -> bool:
        """True once the runtime is there (CavraApp builds it after the first frame)."""
        raise NotImplementedError

    def allows(self, action: str) -> bool:
        """False for a write action in a read-only session, for an action the acting roles
        may not take, and for anything that needs the database before it is open (the
        palette leaves it out; the footer greys its key)."""
        return self.gate(action.removeprefix("app.").partition("(")[0]) is None

    def gate(self, name: str) -> str | None:
        """Why the action ``name`` may not run now, in one line; None when it may."""
        entry = actions.find(name, getattr(self, "current_mode", None))
        label = entry.help.split(":")[0] if entry is not None else name.replace("_", " ")
        if not self.started:
            return (f"{label}: the console is still opening its database"
                    if name in RUNTIME_ACTIONS else None)
        identity = self.runtime.identity
        if name in WRITE_ACTIONS and identity.read_only:
            return f"{label}: this session is read-only ({identity.read_only_reason})"
        if entry is not None and entry.permission and not self.permitted(entry.permission):
            return f"{label}: {entry.permission} needs {self.roles_for(entry.permission)}"
        return None

    def permitted(self, permission: str) -> bool:
        """Whether the acting identity may take ``permission`` (the store's policy)."""
        from store.policy import authorize

        return authorize(self.runtime.identity, permission).allowed

    @staticmethod
    def roles_for(permission: str) -> str:
        from store.policy import RULES

        return " or ".join(sorted(RULES.get(permission, ()))) or "a role"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # None: the footer shows the key greyed out; pressing it says why (run_action).
        return True if self.allows(action) else None

    async def run_action(self, action: Any, default_namespace: Any = None,
                         namespaces: Any = None) -> bool:
        """A gated key (greyed in the footer) says why when pressed; a refusal by role goes
        through the store's policy, which records it in the audit chain."""
        if await super().run_action(action, default_namespace, namespaces):
            return True
        if not isinstance(action, str) or not self.is_running:
            return False
        name = action.rpartition(".")[2].partition("(")[0]
        reason = self.gate(name)
        if reason is None:
            return False
        entry = actions.find(name, getattr(self, "current_mode", None))
        if (self.started and entry is not None and entry.permission
                and not self.runtime.identity.read_only
                and not self.permitted(entry.permission)):
            permission, ctx = entry.permission, self.runtime.ctx
            self.start_action(name.replace("_", " "), lambda: _refuse(ctx, permission))
            return True
        self.notify(f"{reason}; nothing was done", severity="warning", timeout=4)
        return True

    def _selected(self, kind: str) -> str | None:
        picker = getattr(self.screen, "selected", None)
        return picker(kind) if picker is not None else None

    def start_action(self, name: str, step: Callable[[], Any],
                     done: Callable[[Any], Any] | None = None) -> None:
        """Run one workflow step in a thread; never more than one step of the same name."""

        def work() -> None:
            try:
                result = step()
            except UserError as exc:
                self.note_own_write()  # refusals are audited: a write too
                self.post_message(ActionFailed(name, str(exc)))
                return
            except Exception as exc:  # an internal failure is shown, logged, and survived
                log.exception("%s failed", name)
                self.post_message(ActionFailed(name, f"internal error: {exc.__class__.__name__}"
                                                     " (details in cavra.log)"))
                return
            self.note_own_write()
            if get_current_worker().is_cancelled:
                return
            self.post_message(done(result) if done else ActionFinished(
                name, result.summary, result.severity, result.result, result.focus))

        def finished() -> None:
            if name in self.busy:
                self.busy.remove(name)
            self.refresh_header()

        group = f"action-{name}"
        if any(w.group == group and not w.is_finished for w in self.workers):
            self.notify(f"{name} is still running", severity="warning", timeout=4)
            return
        self.busy.append(name)
        self.refresh_header()
        worker = self.run_worker(work, thread=True, group=group, exit_on_error=False, name=name)
        self._finishers[worker] = finished

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        finisher = self._finishers.pop(event.worker, None) if event.worker.is_finished else None
        if finisher is not None:
            finisher()

    # -- the workflow, in order --------------------------------------------------------------

    def action_build_plan(self) -> None:
        from cavra_tui import workflow

        self.start_action("build plan", lambda: workflow.plan_escalation(self.runtime))

    def action_deliver_plan(self) -> None:
        from cavra_tui import workflow

        plan_id = self._selected("plan")
        self._ask_then_send(plan_id, "a plan first (Escalations screen)",
                            lambda: workflow.preview_plan_send(self.runtime, plan_id or ""),
                            lambda: workflow.deliver_plan(self.runtime, plan_id))

    def _ask_then_send(self, subject: str | None, highlight: str, preview: Callable[[], Any],
                       send: Callable[[], Any]) -> None:
        """Every send from the console: the highlighted record only (never a fallback to
        `latest`), its preview read in a worker, then a confirmation before ``send``."""
        if subject is None:
            self.notify(f"highlight {highlight}: nothing was sent", severity="warning",
                        timeout=4)
            return
        self.start_action("deliver preview", preview,
                          done=lambda shown: SendPreviewReady(shown, send))

    def on_send_preview_ready(self, message: SendPreviewReady) -> None:
        from cavra_tui.screens.forms.confirm_send import ConfirmSend

        send = message.send

        def confirmed(confirm: bool | None) -> None:
            if confirm:
                self.start_action("send", send)
            else:
                self.notify("cancelled: nothing was sent", timeout=4)

        self.push_screen(ConfirmSend(message.preview), confirmed)

    def action_acknowledge(self) -> None:
        from cavra_tui import workflow
        from cavra_tui.screens.forms.ack_form import AckForm

        form = AckForm(self._selected("plan") or "latest", self._selected("provider") or "outbox",
                       self._noting_writes(lambda r: workflow.record_ack(self.runtime, r)))
        self.push_screen(form, self._form_saved("acknowledge"))

    def action_follow_up_dry_run(self) -> None:
        from cavra_tui import workflow

        self.start_action("follow-up dry-run",
                          lambda: workflow.follow_up_dry_run(self.runtime))

    def action_retry_plan(self) -> None:
        from cavra_tui import workflow

        self.start_action("retry plan", lambda: workflow.plan_retries(self.runtime))

    def action_dry_run(self) -> None:
        from cavra_tui import workflow

        self.start_action("dry-run", lambda: workflow.dry_run(self.runtime))

    def action_live_run(self) -> None:
        from cavra_tui import workflow

        # Without the role the key never gets here: run_action refuses it, audited.
        self.start_action("live run preview", lambda: workflow.preview_live_run(self.runtime),
                          done=lambda preview: LivePreviewReady(preview))

    def action_report_retry_dry_run(self) -> None:
        from cavra_tui import workflow

        self.start_action("executive re-send dry-run",
                          lambda: workflow.report_retry_dry_run(self.runtime))

    def action_report_retry_live(self) -> None:
        from cavra_tui import workflow

        # Operator or release_manager (the service refuses, audited, without a role): the
        # preview is a dry run, then the person confirms exactly what it showed.
        self.start_action("executive re-send preview",
                          lambda: workflow.preview_report_retry(self.runtime),
                          done=lambda preview: LivePreviewReady(preview))

    def on_live_preview_ready(self, message: LivePreviewReady) -> None:
        from cavra_tui import workflow
        from cavra_tui.screens.forms.confirm_live import ConfirmLiveRun

        self.refresh_data()  # the preview's dry-run is itself a recorded run

        previewed = message.preview.sendable_keys
        executive = message.preview.subject == "executive"
        send = workflow.report_retry_live if executive else workflow.live_run

        def confirmed(confirm: bool | None) -> None:
            if confirm:
                self.start_action("executive re-send" if executive else "live run",
                                  lambda: send(self.runtime, previewed))
            else:
                self.notify("live run cancelled: nothing was sent", timeout=4)

        self.push_screen(ConfirmLiveRun(message.preview), confirmed)

    def action_schedule_run(self) -> None:
        from cavra_tui import workflow

        self.start_action("schedule run", lambda: workflow.schedule_run(self.runtime))

    def action_deliver_report(self) -> None:
        from cavra_tui import workflow

        run_id = self._selected("schedule_run")
        self._ask_then_send(run_id, "a schedule run first (Executive screen)",
                            lambda: workflow.preview_report_send(self.runtime, run_id or ""),
                            lambda: workflow.send_report(self.runtime, run_id))

    def action_add_schedule(self) -> None:
        from cavra_tui import workflow
        from cavra_tui.screens.forms.schedule_form import ScheduleForm

        form = ScheduleForm(self._noting_writes(
            lambda request: workflow.new_schedule(self.runtime, request)))
        self.push_screen(form, self._form_saved("add schedule"))

    def _noting_writes(self, save: Callable[[Any], workflow.ActionResult]
                       ) -> Callable[[Any], workflow.ActionResult]:
        def saving(request: Any) -> workflow.ActionResult:
            try:
                return save(request)
            finally:
                self.note_own_write()

        return saving

    def _form_saved(self, name: str) -> Callable[[workflow.ActionResult | None], None]:
        """A form saves itself (refusals show inline); report what it saved like any action."""

        def saved(outcome: workflow.ActionResult | None) -> None:
            if outcome is not None:
                self.post_message(ActionFinished(name, outcome.summary, outcome.severity,
                                                 outcome.result, outcome.focus))

        return saved

    def action_toggle_schedule(self) -> None:
        from cavra_tui import workflow

        schedule_id = self._selected("schedule")
        self.start_action("enable/disable schedule",
                          lambda: workflow.toggle_schedule(self.runtime, schedule_id))

    def action_verify_audit(self) -> None:
        from cavra_tui import workflow

        self.start_action("verify audit", lambda: workflow.verify_audit(self.runtime))

    def action_checkpoint(self) -> None:
        from cavra_tui import workflow

        self.start_action("audit checkpoint", lambda: workflow.write_checkpoint(self.runtime))

    def action_show_evidence(self) -> None:
        """On top of this screen, so Esc comes back to the highlighted execution."""
        from cavra_tui.screens.evidence import EvidenceView

        record_id = self._selected("evidence")
        if record_id is None:
            self.notify("highlight an execution first", severity="warning", timeout=4)
            return
        self.push_screen(EvidenceView(record_id))

    # -- results -----------------------------------------------------------------------------

    def on_action_finished(self, message: ActionFinished) -> None:
        self.notify(message.summary, title=message.action,
                    severity=message.severity)  # type: ignore[arg-type]
        if message.focus is not None:
            self.focus_record(*message.focus)
        self.refresh_data()

    def focus_record(self, table_id: str, record_id: str) -> None:
        """Highlight a record this console just created, once the reload shows it (so the
        next key acts on it, not on the record that was highlighted before)."""
        from cavra_tui.widgets.record_table import RecordTable

        for table in self.screen.query(f"#{table_id}").results(RecordTable):
            table.focus_record(record_id)

    def on_action_failed(self, message: ActionFailed) -> None:
        self.notify(message.reason, title=f"{message.action} refused"
                    if "refused" in message.reason else message.action,
                    severity="error")
        self.refresh_data()  # a refusal is audited: show it
