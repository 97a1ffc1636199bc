"""Every console action, declared once: its key, footer label, palette title, help text, the
screen it belongs to, and whether it writes, sends or needs a role.

The screens' bindings, the footer, the command palette, read-only and role gating, the help
screen and the README's key table are all generated from ``ACTIONS``. Each binding carries
the action's ID, so a ``[keys]`` table in the config can rebind it (Textual's keymap).

Imported before the first frame: nothing here may load the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from textual.binding import Binding, BindingType

GLOBAL = "global"  # an action every screen answers to (bound on the app)
LISTS = "lists"  # bound on every console screen (they act on the screen's lists)
TABLE = "table"  # bound on each list itself (it acts on the focused list)
SCREEN_TITLES = {
    "dashboard": "Dashboard", "escalations": "Escalations",
    "acknowledgements": "Acknowledgements", "retry_runs": "Retry runs",
    "executive": "Executive", "audit": "Audit", "health": "Health",
}


@dataclass(frozen=True)
class ConsoleAction:
    id: str  # the binding ID: what `[keys]` in the config rebinds
    key: str  # Textual key name(s), comma-separated
    label: str  # the footer's word (short: the footer must fit 80 columns)
    help: str  # one line for the help screen and the README
    screen: str = GLOBAL  # the mode it is bound on, or GLOBAL
    action: str = ""  # the Textual action the key runs (default: app.<id>)
    title: str = ""  # the command palette's entry ("" = not in the palette)
    writes: bool = False  # refused in a read-only session
    sends: bool = False  # sends to providers: the console asks first
    permission: str | None = None  # the policy rule it needs (store.policy.RULES)
    show: bool = True  # in the footer (every key is in the help screen)
    key_display: str | None = None

    @property
    def runs(self) -> str:
        return self.action or f"app.{self.id}"

    @property
    def name(self) -> str:
        """The action method's name, without namespace or parameters."""
        return self.runs.removeprefix("app.").partition("(")[0]

    @property
    def shown_key(self) -> str:
        return self.key_display or display_key(self.key)


def _screens() -> tuple[ConsoleAction, ...]:
    # One footer entry stands for all seven screen keys.
    return tuple(
        ConsoleAction(f"screen.{mode}", str(number), "Screens" if number == 1 else title,
                      f"go to {title}", action=f"app.switch_mode('{mode}')",
                      title=f"Go to {title}", show=number == 1,
                      key_display="1-7" if number == 1 else None)
        for number, (mode, title) in enumerate(SCREEN_TITLES.items(), start=1))


ACTIONS: tuple[ConsoleAction, ...] = (
    *_screens(),
    ConsoleAction("help", "question_mark", "Help",
                  "this help: this screen's keys first, then the global ones",
                  title="Help", key_display="?"),
    ConsoleAction("messages", "m", "Msgs",
                  "messages: every notification so far, newest first", title="Messages"),
    ConsoleAction("copy_id", "c", "Copy ID",
                  "copy the highlighted record's ID to the clipboard (OSC 52, works over SSH)",
                  show=False),
    ConsoleAction("quit", "q", "Quit", "quit the console"),
    # Not in the footer (it must fit 80 columns): the help and the lists' borders name it.
    ConsoleAction("open_filter", "slash", "Filter", "filter this screen's lists",
                  screen=LISTS, action="open_filter", key_display="/", show=False),
    ConsoleAction("close_filter", "escape", "Clear filter", "clear the filter",
                  screen=LISTS, action="close_filter", show=False),
    ConsoleAction("follow", "F", "Follow", "follow the focused list: keep its newest row "
                  "highlighted as rows arrive (like less +F; moving stops it)",
                  screen=TABLE, action="toggle_follow", show=False, key_display="F"),
    # -- Escalations
    ConsoleAction("build_plan", "p", "Plan",
                  "build an escalation plan from open recovery items and failed retries",
                  screen="escalations", title="Build escalation plan", writes=True,
                  permission="escalation.plan"),
    ConsoleAction("deliver_plan", "d", "Deliver",
                  "deliver the highlighted plan: shows what goes where, then asks",
                  screen="escalations", title="Deliver escalation plan", writes=True,
                  sends=True, permission="escalation.deliver"),
    ConsoleAction("acknowledge", "a", "Ack",
                  "record an acknowledgement for the highlighted plan and provider",
                  screen="escalations", title="Acknowledge", writes=True,
                  permission="escalation.ack"),
    ConsoleAction("follow_up_dry_run", "f", "Follow-up",
                  "follow-up dry-run: which plans are past their acknowledgement timeout and "
                  "would escalate to their next level (sends nothing; live: the CLI or a "
                  "follow-up schedule)", screen="escalations",
                  title="Escalation follow-up: dry-run", writes=True,
                  permission="escalation.follow_up.dry_run"),
    # -- Acknowledgements
    ConsoleAction("acknowledge_pair", "a", "Acknowledge",
                  "record an acknowledgement for the highlighted pair",
                  screen="acknowledgements", action="app.acknowledge", writes=True,
                  permission="escalation.ack"),
    # -- Retry runs
    ConsoleAction("retry_plan", "r", "Plan", "build a retry plan: retry / wait / suppress per "
                  "failed pair", screen="retry_runs", title="Build retry plan", writes=True,
                  permission="retry.plan"),
    ConsoleAction("dry_run", "y", "Dry-run",
                  "retry worker dry-run: records what a live run would send; sends nothing",
                  screen="retry_runs", title="Retry worker: dry-run", writes=True,
                  permission="retry.run.dry_run"),
    ConsoleAction("live_run", "L", "Live", "retry worker live run: a dry-run preview first, "
                  "then confirm", screen="retry_runs", title="Retry worker: live run",
                  writes=True, sends=True, permission="retry.run.live", key_display="L"),
    ConsoleAction("show_evidence", "e", "Evidence",
                  "the evidence chain of the highlighted execution (Esc comes back)",
                  screen="retry_runs", title="Show evidence"),
    # -- Executive
    ConsoleAction("schedule_run", "s", "Run", "build an executive report for the last 24 hours",
                  screen="executive", title="Executive report: schedule run", writes=True,
                  permission="report.schedule_run"),
    ConsoleAction("deliver_report", "d", "Send", "deliver the highlighted schedule run's "
                  "report: shows where, then asks", screen="executive",
                  title="Executive report: deliver", writes=True, sends=True,
                  permission="report.deliver"),
    ConsoleAction("add_schedule", "n", "Schedule",
                  "add a schedule: report or retry worker, cron or interval",
                  screen="executive", title="Add schedule", writes=True,
                  permission="schedule.change"),
    ConsoleAction("toggle_schedule", "t", "On/off", "enable / disable the highlighted schedule",
                  screen="executive", title="Enable / disable schedule", writes=True,
                  permission="schedule.change", show=False),
    ConsoleAction("report_retry_dry_run", "y", "Re-send dry", "what re-sending failed "
                  "executive deliveries would send (dry-run)", screen="executive",
                  title="Executive re-send: dry-run", writes=True,
                  permission="report.retry.dry_run", show=False),
    ConsoleAction("report_retry_live", "L", "Re-send", "re-send failed executive reports: a "
                  "dry-run preview first, then confirm", screen="executive",
                  title="Executive re-send: live", writes=True, sends=True,
                  permission="report.retry.live", key_display="L"),
    # -- Audit
    ConsoleAction("verify_audit", "v", "Verify",
                  "verify the hash chain, the evidence behind it and the witness files",
                  screen="audit", action="verify", title="Verify audit"),
    ConsoleAction("checkpoint", "w", "Checkpoint",
                  "sign the chain head and send it to the audit witnesses", screen="audit",
                  title="Audit checkpoint", writes=True, permission="audit.checkpoint"),
    ConsoleAction("evidence_for_id", "e", "Evidence",
                  "show the evidence chain of an execution or delivery ID you type",
                  screen="audit", action="ask_evidence"),
)
BY_ID: dict[str, ConsoleAction] = {entry.id: entry for entry in ACTIONS}
# Actions the keys can only run once the database is open (before that: greyed out).
NEEDS_RUNTIME = frozenset({entry.name for entry in ACTIONS
                           if entry.screen not in (GLOBAL, LISTS, TABLE)}
                          | {"switch_mode", "copy_id"})
WRITE_NAMES = frozenset(entry.name for entry in ACTIONS if entry.writes)
KEY_NAME = re.compile(r"^(?:(?:ctrl|shift|alt|super|meta)\+)*(?:[a-z0-9_]+|[!-~])$",
                      re.IGNORECASE)
_SYMBOLS = {"question_mark": "?", "slash": "/", "escape": "Esc", "enter": "Enter",
            "backspace": "Backspace", "space": "Space"}


def display_key(keys: str) -> str:
    return "/".join(_SYMBOLS.get(key, key) for key in keys.split(","))


def for_screen(screen: str) -> list[ConsoleAction]:
    return [entry for entry in ACTIONS if entry.screen == screen]


def bindings(screen: str) -> list[BindingType]:
    """The Textual bindings of ``screen`` (or GLOBAL), each with its action's ID."""
    return [Binding(entry.key, entry.runs, entry.label, show=entry.show, id=entry.id,
                    key_display=entry.key_display, tooltip=entry.help)
            for entry in for_screen(screen)]


def find(action_name: str, screen: str | None) -> ConsoleAction | None:
    """The registered action a key or the palette ran (by method name), preferring the
    entry of ``screen``."""
    found = [entry for entry in ACTIONS if entry.name == action_name]
    for entry in found:
        if entry.screen == screen:
            return entry
    return found[0] if found else None


def effective_key(entry: ConsoleAction, keymap: Mapping[str, str]) -> str:
    return display_key(keymap[entry.id]) if entry.id in keymap else entry.shown_key


def check_keymap(keymap: Mapping[str, str]) -> dict[str, str]:
    """The config's ``[keys]`` table, checked: known IDs, key names Textual understands, and
    no two actions of one screen (or a screen and the global ones) on the same key. Raises
    ValueError with one line."""
    for action_id, keys in keymap.items():
        if action_id not in BY_ID:
            known = ", ".join(sorted(BY_ID))
            raise ValueError(f"[keys] {action_id}: no such action (known: {known})")
        if not isinstance(keys, str) or not keys.strip():
            raise ValueError(f"[keys] {action_id}: give a key name, e.g. \"x\" or \"ctrl+x\"")
        for key in keys.split(","):
            if not KEY_NAME.match(key.strip()):
                raise ValueError(f"[keys] {action_id}: {key.strip()!r} is not a key name")
    checked = {action_id: ",".join(k.strip() for k in keys.split(","))
               for action_id, keys in keymap.items()}
    for screen in (*SCREEN_TITLES, GLOBAL):
        taken: dict[str, str] = {}
        scope = for_screen(screen) + (for_screen(LISTS) + for_screen(TABLE)
                                      + for_screen(GLOBAL) if screen != GLOBAL else [])
        for entry in scope:
            for key in checked.get(entry.id, entry.key).split(","):
                other = taken.setdefault(key, entry.id)
                if other != entry.id:
                    raise ValueError(f"[keys] {entry.id} and {other} would share the key "
                                     f"{key!r}" + ("" if screen == GLOBAL else f" on {screen}"))
    return checked


def help_rows(screen: str | None, keymap: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(key, what it does, note) rows: this screen's keys first, then the global ones."""
    rows = []
    scopes: Iterable[str] = ([screen] if screen in SCREEN_TITLES else []) + [LISTS, TABLE,
                                                                               GLOBAL]
    for scope in scopes:
        for entry in for_screen(scope):
            if entry.id.startswith("screen.") and entry.id != "screen.dashboard":
                continue  # one row: "1-7"
            what = (f"screens: {', '.join(SCREEN_TITLES.values())}"
                    if entry.id == "screen.dashboard" else entry.help)
            rows.append((effective_key(entry, keymap), what, note(entry)))
    return rows


def note(entry: ConsoleAction) -> str:
    parts = []
    if entry.sends:
        parts.append("sends (asks first)")
    elif entry.writes:
        parts.append("writes")
    if entry.permission:
        parts.append(entry.permission)
    return ", ".join(parts)


def markdown_key_table() -> str:
    """The README's key table (a test checks the README holds exactly this)."""
    lines = ["| screen | key | does | writes · policy rule |", "|---|---|---|---|"]
    for scope in (GLOBAL, LISTS, TABLE, *SCREEN_TITLES):
        for entry in for_screen(scope):
            if entry.id.startswith("screen.") and entry.id != "screen.dashboard":
                continue
            where = ("every screen" if scope in (GLOBAL, LISTS) else
                     "every list" if scope == TABLE else SCREEN_TITLES[scope])
            what = (f"screens: {', '.join(SCREEN_TITLES.values())}"
                    if entry.id == "screen.dashboard" else entry.help)
            lines.append(f"| {where} | `{entry.shown_key}` | {what} | {note(entry)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m cavra_tui.actions: print the README's key table
    print(markdown_key_table(), end="")
