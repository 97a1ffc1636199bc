"""`?`: the keys of the screen it was opened on first, then the global ones — generated from
the action registry (cavra_tui/actions.py) with the config's `[keys]` applied."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Markdown

from cavra_tui import actions
from cavra_tui.screens.modal import CavraModal

MOVING = """\
| key | does |
|---|---|
| `↑ ↓ PgUp PgDn` | move in a list; more rows load as you reach the end |
| `Home` / `End` | first / last row of a list (`Home` also reaches rows that arrived above) |
| `Enter` | open the highlighted record in full; on a ↗ field, open that record |
| `Esc` / `Backspace` | back from a record, a modal or the filter |
| `tab` / `shift+tab` | move between lists · `ctrl+p` command palette (every action) |
"""

LIVE_NOTE = """\
A live run first does a dry-run and shows what it would send (provider, idempotency key,
payload digest). It needs the release_manager role and an acknowledgement (accepted,
acknowledged or resolved) for each pair; otherwise it is refused with the reason. A key
shown greyed out says why when pressed (read-only session, or a role this identity lacks).
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def help_markdown(screen: str | None, keymap: Mapping[str, str], database: str = "") -> str:
    title = actions.SCREEN_TITLES.get(screen or "", "")
    lines = [f"## Keys{f' — {title}' if title else ''}", "", "| key | does |", "|---|---|"]
    lines += [f"| `{_cell(key)}` | {_cell(what)}{f' *({_cell(note)})*' if note else ''} |"
              for key, what, note in actions.help_rows(screen, keymap)]
    lines += ["", MOVING, LIVE_NOTE]
    if database:
        lines.append(f"Database: `{database}` — the CLI reads the same one with "
                     f"`cavra --db {database} metrics`.\n")
    lines.append("Press `escape` or `?` to close.")
    return "\n".join(lines)


class HelpScreen(CavraModal[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", key_display="?"),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(self, database: str = "", screen: str | None = None,
                 keymap: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.database = database  # the full URL (the header shows only its short name)
        self.for_screen = screen
        self.keymap = dict(keymap or {})

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog"):
            yield Markdown(help_markdown(self.for_screen, self.keymap, self.database))
