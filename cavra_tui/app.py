"""The CAVRA console: wires screens, keys, the scheduler and live refresh. Nothing else."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.worker import get_current_worker

from cavra_tui.bootstrap import Runtime
from cavra_tui.commands import WorkflowCommands
from cavra_tui.messages import DataChanged
from cavra_tui.palette import CavraCommands
from cavra_tui.screens.acknowledgements import AcknowledgementsScreen
from cavra_tui.screens.audit import AuditScreen
from cavra_tui.screens.base import CavraScreen
from cavra_tui.screens.dashboard import DashboardScreen
from cavra_tui.screens.escalations import EscalationsScreen
from cavra_tui.screens.executive import ExecutiveScreen
from cavra_tui.screens.help import HelpScreen
from cavra_tui.screens.retry_runs import RetryRunsScreen
from cavra_tui.widgets.header import HeaderInfo
from scheduler.status import LEADER_LOCK
from store.counters import change_version
from store.services.locks import current_holder

log = logging.getLogger(__name__)
CHANGE_POLL_S = 2.0  # other processes' writes show within this (one tiny row read per poll)
SCREEN_KEYS = ("dashboard", "escalations", "acknowledgements", "retry_runs", "executive",
               "audit")


class CavraApp(WorkflowCommands):
    CSS_PATH = "styles/console.tcss"
    TITLE = "CAVRA recovery console"
    MODES: ClassVar[dict[str, Any]] = {
        "dashboard": DashboardScreen,
        "escalations": EscalationsScreen,
        "acknowledgements": AcknowledgementsScreen,
        "retry_runs": RetryRunsScreen,
        "executive": ExecutiveScreen,
        "audit": AuditScreen,
    }
    DEFAULT_MODE: ClassVar[str] = "dashboard"
    COMMANDS = WorkflowCommands.COMMANDS | {CavraCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        # One footer entry stands for all six screen keys.
        Binding("1", "switch_mode('dashboard')", "Screens", key_display="1-6"),
        *(Binding(str(number), f"switch_mode('{mode}')", mode.replace("_", " ").title(),
                  show=False) for number, mode in enumerate(SCREEN_KEYS, start=1) if number > 1),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, runtime: Runtime, *, start_scheduler: bool = True,
                 live_refresh: bool = True) -> None:
        super().__init__()
        self.runtime = runtime
        self.start_scheduler = start_scheduler
        self.live_refresh = live_refresh
        self.scheduler_service: Any = None
        self.alert_level: str | None = None
        self.busy: list[str] = []  # actions running now, shown in the header
        self._finishers = {}
        self._seen_version: tuple[int, str | None] | None = None
        self.data_generation = 0  # bumped on every known write; screens reload when behind

    # -- lifecycle ---------------------------------------------------------------------------

    def on_mount(self) -> None:
        for warning in self.runtime.warnings:
            self.notify(warning, severity="error", timeout=15)
        if self.start_scheduler:
            self._start_scheduler()
        if self.live_refresh:
            self.set_interval(CHANGE_POLL_S, self._poll_changes)

    def on_unmount(self) -> None:
        if self.scheduler_service is not None:
            try:
                self.scheduler_service.shutdown()
            except Exception:  # shutting down must never raise out of the console
                log.exception("scheduler shutdown failed")

    def _start_scheduler(self) -> None:
        try:
            from scheduler.runner import SchedulerService
        except ImportError:
            log.info("scheduler.runner not available: the console runs without a scheduler")
            return
        try:
            self.scheduler_service = SchedulerService(self.runtime.ctx, self.runtime.registry)
            self.scheduler_service.start()
            refusal = getattr(self.scheduler_service, "refusal", None)
            if refusal:  # e.g. read-only: this console shows the scheduler but never fires
                self.notify(f"scheduler not started here: {refusal}", timeout=8)
        except Exception as exc:
            log.exception("scheduler did not start")
            self.scheduler_service = None
            self.notify(f"scheduler did not start: {exc.__class__.__name__}", severity="error")

    @property
    def scheduler_holder(self) -> str | None:
        """This process's lease name while its scheduler runs (the pane says leader/standby)."""
        service = self.scheduler_service
        if service is None or not getattr(service, "running", False):
            return None
        return getattr(service, "holder", None) or None

    # -- live refresh ------------------------------------------------------------------------

    def _read_version(self) -> tuple[int, str | None]:
        with self.runtime.db.read() as session:
            # Leadership moves without a write to the change marker (lease renewals are not
            # changes), so the leader is part of what is compared.
            return (change_version(session),
                    current_holder(session, LEADER_LOCK, self.runtime.ctx.clock())[0])

    def note_own_write(self) -> None:
        try:
            self._seen_version = self._read_version()
        except Exception:  # only an optimisation: the poll then reloads once more
            log.exception("reading the change marker failed")

    def _poll_changes(self) -> None:
        def read_version() -> None:
            version = self._read_version()
            if not get_current_worker().is_cancelled:
                self.post_message(DataChanged(version))

        self.run_worker(read_version, thread=True, exclusive=True, group="change-poll",
                        exit_on_error=False)

    def on_data_changed(self, message: DataChanged) -> None:
        if message.version is None or message.version == self._seen_version:
            return
        first = self._seen_version is None
        self._seen_version = message.version
        # The first poll reloads only if the embedded scheduler runs: the screens loaded
        # before it took (or failed to take) the lease, so their scheduler pane is stale.
        if not first or self.scheduler_holder is not None:
            self.refresh_data()

    def refresh_header(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, CavraScreen) and screen.is_mounted:
                screen.refresh_header()

    def refresh_data(self) -> None:
        """Reload the visible screen now; the others reload when they are shown."""
        self.data_generation += 1
        for screen in self.screen_stack:
            if isinstance(screen, CavraScreen) and screen.is_mounted:
                screen.post_message(DataChanged())

    # -- what screens ask the app ------------------------------------------------------------

    def header_info(self, screen_title: str) -> HeaderInfo:
        identity = self.runtime.identity
        return HeaderInfo(actor=identity.actor, role=identity.role_label,
                          read_only=identity.read_only, database=self.runtime.db.describe(),
                          identity_source=identity.source_label, screen=screen_title,
                          alert_level=self.alert_level, busy=tuple(self.busy))

    def note_alert_level(self, level: str) -> None:
        self.alert_level = level

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        else:
            self.push_screen(HelpScreen())
