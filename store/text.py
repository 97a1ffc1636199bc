"""Text from outside is hostile: control characters never enter, and never leave raw.

C0 controls, DEL and C1 controls can move the cursor, clear the screen or rewrite a terminal
line; they are refused in every text input (newline and tab only where a field is prose, like
acknowledgement notes). Text already stored (an older database) is shown with each control
character written as a visible escape (``\\x1b``), never raw."""

from __future__ import annotations

import re

from store.errors import UserError

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_PROSE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def visible(text: str) -> str:
    """``text`` with every control character written as ``\\xNN`` (for terminals and cells)."""
    return _CONTROL.sub(_escape, text) if _CONTROL.search(text) else text


def control_character(text: str, *, prose: bool = False) -> str | None:
    """The first forbidden character, shown as an escape, or None."""
    found = (_CONTROL_IN_PROSE if prose else _CONTROL).search(text)
    return _escape(found) if found else None


def check_text(text: str, field: str, *, prose: bool = False) -> str:
    """Refuse a control character in ``field`` with one line naming it; return the text."""
    bad = control_character(text, prose=prose)
    if bad is not None:
        allowed = " (newline and tab are allowed)" if prose else ""
        raise UserError(f"{field}: contains a control character ({bad}){allowed}")
    return text
