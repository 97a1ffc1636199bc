"""The CAVRA console: wires screens, keys, the scheduler and live refresh. Nothing else.

It starts fast: this module imports only Textual and the console's own light modules, and
each screen's module is imported when the screen is first shown. ``StartingCavraApp`` (what
`cavra` runs) paints a placeholder first (header and footer), builds the runtime (store,
SQLAlchemy, pydantic) in a thread worker after mount, then installs the real screens; a
config or database error leaves a clear screen with the one-line reason instead.
"""

from __future__ import annotations

import importlib
import logging
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.binding import BindingType
from textual.screen import Screen
from textual.worker import get_current_worker

from cavra_tui import actions
from cavra_tui.commands import WorkflowCommands
from cavra_tui.failures import describe_failure
from cavra_tui.messages import DataChanged, RuntimeReady, StartFailed
from cavra_tui.palette import CavraCommands
from cavra_tui.screens.start_failed import StartFailedScreen
from cavra_tui.screens.starting import StartingScreen
from cavra_tui.start_up import without_collection
from cavra_tui.widgets.header import HeaderInfo

if TYPE_CHECKING:
    from cavra_tui.bootstrap import Runtime
    from cavra_tui.screens.messages import LoggedMessage

log = logging.getLogger(__name__)
MAX_TOASTS = 3
TOAST_SECONDS = 4.0
TOAST_CHARS = 140  # about two lines of a toast at 80 columns
CHANGE_POLL_S = 2.0  # other processes' writes show within this (one tiny row read per poll)
# mode → (module under cavra_tui.screens, class): imported when the screen is first shown.
SCREENS = {
    "dashboard": ("dashboard", "DashboardScreen"),
    "escalations": ("escalations", "EscalationsScreen"),
    "acknowledgements": ("acknowledgements", "AcknowledgementsScreen"),
    "retry_runs": ("retry_runs", "RetryRunsScreen"),
    "executive": ("executive", "ExecutiveScreen"),
    "audit": ("audit", "AuditScreen"),
    "health": ("health", "HealthScreen"),
}
SCREEN_KEYS = tuple(SCREENS)
FIRST_MODE = "dashboard"


def _screen_class(mode: str) -> type[Screen[Any]]:
    module, name = SCREENS[mode]
    found: type[Screen[Any]] = getattr(importlib.import_module(f"cavra_tui.screens.{module}"),
                                       name)
    return found


def _lazy(mode: str) -> Callable[[], Screen[Any]]:
    return lambda: _screen_class(mode)()


def _check_keys(runtime: Runtime) -> None:
    """A bad `[keys]` table stops the console with one line, like any config error."""
    from store.errors import UserError

    try:
        actions.check_keymap(runtime.config.keys)
    except ValueError as exc:
        raise UserError(f"config: {exc}") from None


class CavraApp(WorkflowCommands):
    """The console on an opened runtime (tests, screenshots, benchmarks of the screens)."""

    CSS_PATH = "styles/console.tcss"
    TITLE = "CAVRA recovery console"
    MODES: ClassVar[dict[str, Any]] = {mode: _lazy(mode) for mode in SCREENS}
    DEFAULT_MODE: ClassVar[str] = FIRST_MODE
    COMMANDS = WorkflowCommands.COMMANDS | {CavraCommands}
    BINDINGS: ClassVar[list[BindingType]] = actions.bindings(actions.GLOBAL)

    def __init__(self, runtime: Runtime | None, *, start_scheduler: bool = True,
                 live_refresh: bool = True) -> None:
        """``runtime`` is None only for StartingCavraApp, which builds it."""
        super().__init__()
        self._runtime = runtime
        self.start_scheduler = start_scheduler
        self.live_refresh = live_refresh
        self.scheduler_service: Any = None
        self.alert_level: str | None = None
        self.busy: list[str] = []  # actions running now, shown in the header
        self._finishers = {}
        self._seen_version: tuple[int, str | None] | None = None
        self.data_generation = 0  # bumped on every known write; screens reload when behind
        self.message_log: deque[LoggedMessage] = deque(maxlen=500)
        self.keymap: dict[str, str] = {}  # the config's [keys], checked (see actions.py)

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("the console has not opened its database yet")
        return self._runtime

    @property
    def started(self) -> bool:
        return self._runtime is not None

    # -- lifecycle ---------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.start_up()

    def start_up(self) -> None:
        self._open_console()

    def _open_console(self) -> None:
        self.keymap = actions.check_keymap(self.runtime.config.keys)
        if self.keymap:
            self.set_keymap(self.keymap)
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
        from scheduler.status import LEADER_LOCK
        from store.services.locks import changes_and_holder

        # Leadership moves without a write to the change marker (lease renewals are not
        # changes), so the leader is part of what is compared.
        return changes_and_holder(self.runtime.ctx, LEADER_LOCK)

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

    def _console_screens(self) -> list[Any]:
        from cavra_tui.screens.base import CavraScreen  # loaded with the first real screen

        return [screen for screen in self.screen_stack
                if isinstance(screen, CavraScreen) and screen.is_mounted]

    def refresh_header(self) -> None:
        if self.started:
            for screen in self._console_screens():
                screen.refresh_header()

    def refresh_data(self) -> None:
        """Reload the visible screen now; the others reload when they are shown."""
        self.data_generation += 1
        if self.started:
            for screen in self._console_screens():
                screen.post_message(DataChanged())

    # -- what screens ask the app ------------------------------------------------------------

    def header_info(self, screen_title: str) -> HeaderInfo:
        identity = self.runtime.identity
        return HeaderInfo(actor=identity.actor, role=identity.role_label,
                          read_only=identity.read_only, database=self.runtime.db.short_name(),
                          identity_source=identity.source_label, screen=screen_title,
                          alert_level=self.alert_level, busy=tuple(self.busy),
                          read_only_copy=self.runtime.read_only_copy)

    def note_alert_level(self, level: str) -> None:
        self.alert_level = level

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Compact toasts (about 4 s, at most 3 on screen, over two lines they are cut);
        every one is also kept for the Messages view (`m`), so none is lost."""
        from cavra_tui.screens.messages import LoggedMessage

        # The runtime's clock (UTC, like every time the console shows; frozen in tests).
        at = self.runtime.ctx.clock() if self.started else datetime.now(UTC)
        self.message_log.append(LoggedMessage(at, str(severity), title, message))
        short = message if len(message) <= TOAST_CHARS else message[:TOAST_CHARS - 1] + "…"
        super().notify(short, title=title, severity=severity,
                       timeout=TOAST_SECONDS if timeout is None else min(timeout, 8),
                       markup=markup)

    def _refresh_notifications(self) -> None:
        # At most MAX_TOASTS on screen, the newest; the older ones stay in Messages.
        for older in list(self._notifications)[:-MAX_TOASTS]:
            del self._notifications[older]
        super()._refresh_notifications()

    def on_data_table_row_selected(self, event: Any) -> None:
        """Enter on a list row opens that record in full (plans, deliveries, executions …)."""
        from cavra_tui.screens.record_detail import RecordDetail
        from cavra_tui.widgets.record_table import RecordTable
        from store.services.records import record_kind

        if not isinstance(event.data_table, RecordTable) or not self.started:
            return
        record_id = event.row_key.value
        named = getattr(self.screen, "record_id_of", None)
        if named is not None and isinstance(record_id, str):
            record_id = named(event.data_table.id or "", record_id)
        if isinstance(record_id, str) and record_kind(record_id):
            self.push_screen(RecordDetail(record_id))
            return
        inline = getattr(self.screen, "inline_record", None)
        found = inline(event.data_table.id or "", str(record_id)) if inline else None
        if found is not None:
            title, fields = found
            self.push_screen(RecordDetail(title, fields=fields))

    def run_registered(self, entry: actions.ConsoleAction) -> None:
        """Run a registry action as its key would (the palette): an action of another
        screen goes to that screen first, once it has loaded, so it acts on the record
        highlighted there, never on one of the screen the palette was opened over."""
        here = self.current_mode
        if entry.screen in actions.SCREEN_TITLES and not any(
                other.runs == entry.runs and other.screen in (here, actions.GLOBAL)
                for other in actions.ACTIONS):
            self.switch_mode(entry.screen)
            self.call_after_refresh(self._when_loaded, entry)
            return
        self.call_later(self.run_action, entry.runs, self.screen)

    def _when_loaded(self, entry: actions.ConsoleAction) -> None:
        screen = self.screen
        when_loaded = getattr(screen, "when_loaded", None)

        def run() -> None:
            self.call_later(self.run_action, entry.runs, screen)

        if when_loaded is None:
            run()
        else:
            when_loaded(run)

    def action_copy_id(self) -> None:
        """The highlighted record's ID to the terminal's clipboard (OSC 52: works over SSH,
        in tmux with set-clipboard on)."""
        from cavra_tui.widgets.record_table import RecordTable

        focused = self.focused
        record_id = focused.selected_id() if isinstance(focused, RecordTable) else None
        if record_id is None:
            tables = list(self.screen.query(RecordTable))
            record_id = tables[0].selected_id() if tables else None
        if record_id is None:
            self.notify("highlight a record first: nothing was copied", severity="warning")
            return
        self.copy_to_clipboard(record_id)
        self.notify(f"copied {record_id}", timeout=3)

    def action_messages(self) -> None:
        from cavra_tui.screens.messages import MessagesScreen

        if isinstance(self.screen, MessagesScreen):
            self.pop_screen()
            return
        self.push_screen(MessagesScreen(list(self.message_log)))

    def action_help(self) -> None:
        from cavra_tui.screens.help import HelpScreen  # Markdown: loaded when first asked

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        else:
            mode = self.current_mode if self.current_mode in actions.SCREEN_TITLES else None
            self.push_screen(HelpScreen(self.runtime.db.describe() if self.started else "",
                                        screen=mode, keymap=self.keymap))


class StartingCavraApp(CavraApp):
    """What `cavra` runs: the first frame is a placeholder, painted before the store loads;
    ``opener`` builds the runtime in a thread worker (then ``prepare`` runs on it, e.g. the
    demo's seed), then the dashboard replaces the placeholder."""

    MODES: ClassVar[dict[str, Any]] = {"starting": StartingScreen, **CavraApp.MODES}
    DEFAULT_MODE: ClassVar[str] = "starting"

    def __init__(self, opener: Callable[[], Runtime], *,
                 prepare: Callable[[Runtime], None] | None = None, start_scheduler: bool = True,
                 live_refresh: bool = True) -> None:
        super().__init__(None, start_scheduler=start_scheduler, live_refresh=live_refresh)
        self._opener = opener
        self._prepare = prepare

    def start_up(self) -> None:
        self._build_runtime()

    @work(thread=True, exclusive=True, exit_on_error=False, group="start-up")
    def _build_runtime(self) -> None:
        """Everything heavy happens here, off the event loop: importing the store, opening
        the database (and migrating it), reading the config, importing the first screen."""
        runtime: Runtime | None = None
        try:
            with without_collection():
                runtime = self._opener()
                _check_keys(runtime)
                _screen_class(FIRST_MODE)
            if self._prepare is not None:
                self._prepare(runtime)
        except Exception as exc:  # a config or database error: shown, never raised
            if runtime is not None:
                runtime.close()
            failure = describe_failure(exc)
            reason = f"internal error: {failure.reason}" if failure.internal else failure.reason
            self.post_message(StartFailed(reason, failure.exit_code))
            return
        if get_current_worker().is_cancelled:  # the person quit while it opened
            runtime.close()
            return
        self.post_message(RuntimeReady(runtime))

    def on_runtime_ready(self, message: RuntimeReady) -> None:
        self._runtime = message.runtime
        self.switch_mode(FIRST_MODE)
        self.remove_mode("starting")
        self.refresh_bindings()
        self._open_console()

    def on_start_failed(self, message: StartFailed) -> None:
        self.push_screen(StartFailedScreen(message.reason, message.exit_code))
