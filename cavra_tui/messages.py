"""Messages that carry results from thread workers back to the UI thread.

Workers never touch widgets: they post one of these, and the screen that asked for the data
updates its widgets in the handler (attributes down, messages up).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from textual.message import Message

T = TypeVar("T")


@dataclass
class DataLoaded(Message, Generic[T]):
    """A screen's query finished. ``part`` names which widget the data is for; ``show`` is
    the handler the screen named when it asked (typed: it takes what the query returns),
    None for a paged list (the screen's table code shows it)."""

    part: str
    payload: T
    show: Callable[[DataLoaded[T]], None] | None = None
    append: bool = False
    merge: bool = False
    epoch: int = 0  # a page appended to a list the filter has since replaced is dropped


@dataclass
class ScreenLoaded(Message):
    """Every query of a screen's refresh has been answered (its lists show their rows)."""


@dataclass
class DataChanged(Message):
    """Something was written (by this process or another): visible screens should reload."""

    # The change marker plus the scheduler leader: either moving means "reload".
    version: tuple[int, str | None] | None = None


@dataclass
class ActionFinished(Message):
    """A workflow action ran; ``summary`` is the one line shown to the user."""

    action: str
    summary: str
    severity: str = "information"
    result: Any = None
    focus: tuple[str, str] | None = None  # (table ID, record ID) to put the cursor on


@dataclass
class ActionFailed(Message):
    """A workflow action was refused or failed; the reason is shown, the app keeps running."""

    action: str
    reason: str


@dataclass
class SendPreviewReady(Message):
    """What a deliver action would send is ready: ask before sending it."""

    preview: Any
    send: Any  # the step to run once the person confirms


@dataclass
class LivePreviewReady(Message):
    """The dry-run that precedes a live run finished: show what a live run would send."""

    preview: Any
    ack_states: dict[tuple[str, str], str | None] = field(default_factory=dict)


@dataclass
class NeedMoreRows(Message):
    """A table's cursor reached its last loaded row: load the next page."""

    table_id: str


@dataclass
class CursorMovedByUser(Message):
    """A person moved a table's cursor (keys or mouse), as opposed to a reload moving it."""

    table_id: str


@dataclass
class RuntimeReady(Message):
    """The start-up worker opened the database and config: the console can show its screens."""

    runtime: Any  # cavra_tui.bootstrap.Runtime (not imported here: it loads the store)


@dataclass
class StartFailed(Message):
    """The console could not start: ``reason`` is the line the command line would print."""

    reason: str
    exit_code: int
