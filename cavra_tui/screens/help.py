"""`?`: every key the console answers to, and the actions the command palette lists."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
## CAVRA console keys

| key | does |
|---|---|
| `1`–`7` | Dashboard, Escalations, Acknowledgements, Retry runs, Executive, Audit, Health |
| `?` | this help · `ctrl+p` command palette (every action) · `q` quit |
| `m` | messages: every notification so far, newest first (toasts go after ~4 s) |
| `/` | filter the lists on this screen (Enter applies, Esc clears) |
| `↑ ↓ PgUp PgDn` | move in a list; more rows load as you reach the end |
| `Home` / `End` | first / last row of a list |
| `Enter` | open the highlighted record in full; on a ↗ field, open that record; `Esc` back |
| `tab` / `shift+tab` | move between lists |

| screen | keys |
|---|---|
| Escalations | `p` build plan · `d` deliver highlighted plan · `a` acknowledge |
| Acknowledgements | `a` acknowledge the highlighted pair |
| Retry runs | `r` retry plan · `y` dry-run · `L` live run (confirms first) · `e` evidence |
| Executive | `s` schedule run · `d` deliver report · `n` new schedule · `t` on/off |
| Executive | `y` re-send dry-run · `L` re-send failed reports live (confirms first) |
| Health | the alerts; the figures of the highlighted one; the executive retry plan |
| Audit | `v` verify · `w` checkpoint to witnesses · `e` evidence for an ID |

A live run first does a dry-run and shows what it would send (provider, idempotency key,
payload digest). It needs the release_manager role and an acknowledgement (accepted,
acknowledged or resolved) for each pair; otherwise it is refused with the reason.

Press `escape` or `?` to close.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", key_display="?"),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(self, database: str = "") -> None:
        super().__init__()
        self.database = database  # the full URL (the header shows only its short name)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog"):
            where = (f"\n\nDatabase: `{self.database}` — the CLI reads the same one with "
                     f"`cavra --db {self.database} metrics`." if self.database else "")
            yield Markdown(HELP.replace("Press `escape` or `?` to close.",
                                        f"Press `escape` or `?` to close.{where}"))
