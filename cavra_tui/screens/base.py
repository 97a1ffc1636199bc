"""What every console screen shares: the header, the footer, the `/` filter, and loading data
in thread workers that post results back as messages."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from textual._context import NoActiveAppError
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input
from textual.worker import get_current_worker

from cavra_tui import actions, glyphs
from cavra_tui.messages import (
    ActionFailed,
    DataChanged,
    DataLoaded,
    NeedMoreRows,
    ScreenLoaded,
)
from cavra_tui.widgets.footer import ConsoleFooter
from cavra_tui.widgets.header import ConsoleHeader
from cavra_tui.widgets.record_table import RecordTable, Row
from store.errors import UserError
from store.models import Page
from store.services.search import SearchedPage

if TYPE_CHECKING:
    from cavra_tui.app import CavraApp
    from cavra_tui.bootstrap import Runtime

log = logging.getLogger(__name__)
T = TypeVar("T")
FILTER_PLACEHOLDER = "filter the shown columns · !term excludes · Esc clears"
FILTER_PAUSE_S = 0.25  # the filter applies once typing pauses this long
Fetch = Callable[[str | None, str | None], Page]  # (cursor, search) → one page
ToRow = Callable[[Any], Row]


@dataclass(frozen=True)
class Query(Generic[T]):
    part: str
    query: Callable[[], T]
    show: Callable[[DataLoaded[T]], None] | None = None
    append: bool = False
    merge: bool = False
    epoch: int = 0


@dataclass(frozen=True)
class PagedSource:
    fetch: Fetch
    to_row: ToRow
    searchable: bool = True


class CavraScreen(Screen[None]):
    """Subclasses compose their body, say what to load in ``reload`` and show it in
    ``show_<part>`` handlers. Loading never blocks the event loop."""

    TITLE: ClassVar[str] = ""
    FILTERABLE: ClassVar[bool] = True
    LOAD_AT_MOUNT: ClassVar[bool] = False
    BINDINGS: ClassVar[list[BindingType]] = actions.bindings(actions.LISTS)

    def __init__(self) -> None:
        super().__init__()
        self.search: str | None = None
        self._pages: dict[str, PagedSource] = {}
        self._generation = -1  # the app's data generation this screen last loaded
        self._batch: list[Query[Any]] | None = None
        self._cursors: dict[str, str | None] = {}
        self._epochs: dict[str, int] = {}  # bumped when a table's list is replaced
        self._loaded = False  # the first refresh has been answered
        self._on_loaded: list[Callable[[], Any]] = []
        # Textual re-parses the whole stylesheet and restyles every widget (~40 ms) when it
        # shows a screen not marked as styled at the app's CSS count, and marks a mode's new
        # screen only if it was mounted by then: twice on a first visit, again on the next.
        # A new screen is styled when it mounts, so it is marked now if the stylesheet is
        # current: the app is running (at start-up its own styles are not applied yet) and
        # the stylesheet has the theme's variables as they are (not so after a theme change).
        with suppress(NoActiveAppError):
            app = self.app
            if app._is_mounted and app.stylesheet._variables == app.get_css_variables():
                self._css_update_count = app._css_update_count

    @property
    def cavra(self) -> CavraApp:
        return self.app  # type: ignore[return-value]

    @property
    def runtime(self) -> Runtime:
        return self.cavra.runtime

    def compose(self) -> ComposeResult:
        yield ConsoleHeader(id="header")
        yield from self.compose_body()
        # Disabled while hidden, so it never takes focus (and keys) from the lists.
        yield Input(placeholder=glyphs.text(FILTER_PLACEHOLDER), id="filter",
                    classes="-hidden", disabled=True)
        yield ConsoleFooter(compact=True)

    def compose_body(self) -> ComposeResult:
        raise NotImplementedError

    def on_mount(self) -> None:
        self.refresh_header()
        if self.LOAD_AT_MOUNT:
            self.refresh_screen()
        else:
            # Paint the frame first, then ask for data: the screen never waits on the database.
            self.call_after_refresh(self.refresh_screen)

    def on_screen_resume(self) -> None:
        self.refresh_header()
        # Shown again: reload only if something was written since this screen last loaded.
        if self.is_mounted and self._generation not in (-1, self.cavra.data_generation):
            self.refresh_screen(merge=True)

    def refresh_screen(self, merge: bool = False) -> None:
        """Run ``reload``; the queries it asks for run one after another in one thread."""
        self._generation = self.cavra.data_generation
        self._batch = []
        try:
            self.reload(merge=merge)
        finally:
            batch, self._batch = self._batch, None
        if batch:
            self._run_queries(batch, group="reload")
        else:
            self.post_message(ScreenLoaded())

    def refresh_header(self) -> None:
        self.query_one(ConsoleHeader).show(self.cavra.header_info(self.TITLE))

    def when_loaded(self, callback: Callable[[], Any]) -> None:
        """Call ``callback`` once the screen shows its data (now, if it already does)."""
        if self._loaded:
            callback()
        else:
            self._on_loaded.append(callback)

    def on_screen_loaded(self, message: ScreenLoaded) -> None:
        message.stop()
        self._loaded = True
        waiting, self._on_loaded = self._on_loaded, []
        for callback in waiting:
            callback()

    def reload(self, merge: bool = False) -> None:
        """Ask for fresh data. ``merge`` keeps rows already paged in (a live refresh)."""

    def selected(self, kind: str) -> str | None:
        """The highlighted record of ``kind`` (plan, schedule_run, …), for actions."""
        return None

    def record_id_of(self, table_id: str, row_key: str) -> str:
        """The ID of the record a row shows (for Enter); most rows are keyed by it."""
        return row_key

    def inline_record(self, table_id: str, row_key: str) -> tuple[str, dict[str, Any]] | None:
        """A row that is a record inside another (a plan's route …): (title, its fields),
        for the detail view; None when the row has no such record."""
        return None

    # -- loading ----------------------------------------------------------------------------

    def load(self, part: str, query: Callable[[], T],
             show: Callable[[DataLoaded[T]], None] | None = None, *, append: bool = False,
             merge: bool = False, epoch: int = 0) -> None:
        """Run ``query`` in a thread; its result arrives as DataLoaded on this screen and goes
        to ``show`` (a paged table's pages: ``show`` is None)."""
        request = Query(part, query, show, append, merge, epoch)
        if self._batch is not None:  # inside reload: joins the screen's one refresh thread
            self._batch.append(request)
        else:
            self._run_queries([request], group=f"load-{part}")

    def _run_queries(self, queries: list[Query[Any]], group: str) -> None:
        """One thread worker runs the queries in order (threads that run side by side only
        contend for the GIL with the UI); each result is posted as soon as it is ready, but
        the lists' pages that come one after another are posted together: the screen then
        shows them in one go, one layout and one paint instead of one per list."""

        def work() -> None:
            worker = get_current_worker()
            pages: list[DataLoaded[Any]] = []

            def post(message: Message | None = None) -> None:
                if pages and not worker.is_cancelled:
                    self.post_message(pages[0] if len(pages) == 1 else
                                      DataLoaded("pages", list(pages), self._show_pages))
                pages.clear()
                if message is not None and not worker.is_cancelled:
                    self.post_message(message)

            for request in queries:
                if worker.is_cancelled:
                    return
                try:
                    payload = request.query()
                except UserError as exc:
                    post(ActionFailed(f"load {request.part}", str(exc)))
                    continue
                except Exception as exc:  # a database hiccup must never end the console
                    log.exception("loading %s failed", request.part)
                    post(ActionFailed(f"load {request.part}", exc.__class__.__name__))
                    continue
                loaded = DataLoaded(request.part, payload, request.show, append=request.append,
                                    merge=request.merge, epoch=request.epoch)
                if request.show is None:
                    pages.append(loaded)
                else:
                    post(loaded)
            post(ScreenLoaded() if group == "reload" else None)

        self.run_worker(work, thread=True, exclusive=True, group=group, exit_on_error=False,
                        name=group)

    def _show_pages(self, message: DataLoaded[list[DataLoaded[Page]]]) -> None:
        for page in message.payload:
            self.on_data_loaded(page)

    # -- paged tables -----------------------------------------------------------------------

    def page_table(self, table_id: str, fetch: Fetch, to_row: ToRow,
                   searchable: bool = True) -> None:
        """Declare where a RecordTable's pages come from and how a record becomes a row."""
        self._pages[table_id] = PagedSource(fetch, to_row, searchable)

    def reload_table(self, table_id: str, merge: bool = False) -> None:
        source = self._pages[table_id]
        search = self.search if source.searchable else None
        if not merge:
            # A new list (e.g. the filter changed): a next page still loading belongs to the
            # old one and must not be appended, nor its cursor kept.
            self.workers.cancel_group(self, f"load-{table_id}")
            self._epochs[table_id] = self._epochs.get(table_id, 0) + 1
            self._cursors.pop(table_id, None)
            self.query_one(f"#{table_id}", RecordTable).loading_more = False
        self.load(table_id, lambda: source.fetch(None, search), merge=merge)

    def load_more(self, table_id: str) -> None:
        source = self._pages.get(table_id)
        cursor = self._cursors.get(table_id)
        if source is None or cursor is None:
            return
        search = self.search if source.searchable else None
        self.load(table_id, lambda: source.fetch(cursor, search), append=True,
                  epoch=self._epochs.get(table_id, 0))

    def _show_page(self, message: DataLoaded[Page]) -> None:
        source = self._pages[message.part]
        table = self.query_one(f"#{message.part}", RecordTable)
        page: Page = message.payload
        if message.append and message.epoch != self._epochs.get(message.part, 0):
            return  # the next page of a list that has since been replaced
        rows = [source.to_row(item) for item in page.items]
        records = {row[0]: item for row, item in zip(rows, page.items, strict=True)}
        table.records = {**table.records, **records} if message.append or message.merge \
            else records
        more = page.next_cursor is not None
        if message.append:
            table.append_rows(rows, has_more=more)
            self._cursors[message.part] = page.next_cursor
        else:
            loaded_more = message.merge and len(table.record_ids) > len(rows)
            table.show_rows(rows, has_more=more, merge=message.merge)
            if not loaded_more:
                self._cursors[message.part] = page.next_cursor
            self._show_matches(table, page)
        self.table_shown(message.part)

    def table_shown(self, table_id: str) -> None:
        """Called after a table got new rows (e.g. to load the selected record's details)."""

    def on_data_loaded(self, message: DataLoaded[Any]) -> None:
        message.stop()
        if message.part in self._pages and self.is_mounted:
            self._show_page(message)
            return
        if message.show is not None and self.is_mounted:
            message.show(message)

    def on_action_failed(self, message: ActionFailed) -> None:
        message.stop()
        self.notify(message.reason, title=message.action, severity="error")

    def on_data_changed(self, message: DataChanged) -> None:
        message.stop()
        self.refresh_header()
        self.refresh_screen(merge=True)

    def on_need_more_rows(self, message: NeedMoreRows) -> None:
        message.stop()
        self.load_more(message.table_id)

    # -- filter -----------------------------------------------------------------------------
    # It applies as you type, once typing pauses (FILTER_PAUSE_S): every keystroke would
    # otherwise start a query. The lists' services match only the columns a list shows.

    _filter_timer: Timer | None = None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.FILTERABLE or action not in ("open_filter", "close_filter")

    def action_open_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.disabled = False
        box.remove_class("-hidden")
        box.focus()

    def action_close_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_class("-hidden") and not self.search:
            return
        self._stop_filter_timer()
        box.value = ""
        box.add_class("-hidden")
        box.disabled = True
        if self.search:
            self.search = None
            self.refresh_screen()
        self._focus_first_table()

    def _focus_first_table(self) -> None:
        tables = self.query(RecordTable)
        if tables:
            tables.first().focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "filter":
            return
        event.stop()
        self._stop_filter_timer()
        self._filter_timer = self.set_timer(FILTER_PAUSE_S, self._apply_filter)

    def _stop_filter_timer(self) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
            self._filter_timer = None

    def _apply_filter(self) -> None:
        """Reload the lists for what the box holds now, if that changed the filter."""
        self._stop_filter_timer()
        box = self.query_one("#filter", Input)
        search = None if box.has_class("-hidden") else box.value.strip() or None
        if search != self.search:
            self.search = search
            self.refresh_screen()

    def _show_matches(self, table: RecordTable, page: Page) -> None:
        if isinstance(page, SearchedPage):
            table.show_matches(page.matches, capped=page.matches_capped)
        else:
            table.show_matches(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter applies the filter at once (no pause) and goes to the list."""
        if event.input.id != "filter":
            return
        event.stop()
        self._apply_filter()
        if self.search is None:
            event.input.add_class("-hidden")
            event.input.disabled = True
        self._focus_first_table()
