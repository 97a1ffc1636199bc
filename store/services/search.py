"""The console's list filter as SQL: words that must appear, ``!words`` that must not, each
matched literally (``%``, ``_``, ``\\`` and quotes are plain characters) and case-insensitively
in the columns a list shows — never in fields the person cannot see.

A filtered list's first page also says how many rows match, counted with a LIMIT so a million
matching rows cost what a thousand do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, String, and_, cast, false, func, not_, or_, select

from store.models import Page

if TYPE_CHECKING:  # the audit list runs on Core (no ORM import before the first frame)
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

MATCH_CAP = 1000  # matches counted at most: beyond that the list says "1,000+ matches"


class SearchedPage(Page):
    """A filtered list's first page, with how many rows match the filter in all."""

    matches: int
    matches_capped: bool = False  # more than ``matches`` rows match


@dataclass(frozen=True)
class Terms:
    include: tuple[str, ...]
    exclude: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)


def parse_search(search: str | None) -> Terms:
    """``"slack !failed"`` → rows with "slack" and without "failed". Words are split on
    whitespace; a lone ``!`` (a word still being typed) is ignored."""
    include: list[str] = []
    exclude: list[str] = []
    for word in (search or "").split():
        if word.startswith("!"):
            if len(word) > 1:
                exclude.append(word[1:])
        else:
            include.append(word)
    return Terms(tuple(include), tuple(exclude))


def as_text(column: Any) -> ColumnElement[Any]:
    """A shown column that is not text (a status code) as text."""
    return cast(column, String)


def _without(column: Any, marks: str) -> ColumnElement[Any]:
    text: ColumnElement[Any] = cast(column, String)
    for mark in marks:
        text = func.replace(text, mark, "")
    return text


def list_as_text(column: Any) -> ColumnElement[Any]:
    """A JSON list of names as the list shows it: ``["a", "b"]`` reads ``a, b`` (so a quote or
    a bracket typed into the filter does not match the JSON around the names)."""
    return _without(column, '"[]')


def counts_as_text(column: Any) -> ColumnElement[Any]:
    """JSON counts as a list shows them all (``cavra_tui.formatting.counts(keep_zero=True)``):
    ``{"retry": 1, "wait": 0}`` reads ``retry 1, wait 0``."""
    return func.replace(_without(column, '"{}:'), "_", " ")


def _anywhere(columns: Sequence[Any], word: str) -> ColumnElement[bool]:
    if "\x00" in word:
        # No stored text holds NUL (PostgreSQL refuses it, SQLite's LIKE stops at it): such a
        # word matches nothing, and is never sent to the database.
        return false()
    return or_(*(func.coalesce(column, "").icontains(word, autoescape=True)
                 for column in columns))


def search_condition(search: str | None,
                     columns: Sequence[Any]) -> ColumnElement[bool] | None:
    """The WHERE condition of ``search`` over ``columns``; None when there is nothing to
    filter. NULL columns count as empty text, so ``!word`` keeps rows whose column is NULL."""
    terms = parse_search(search)
    if not terms or not columns:
        return None
    parts = [_anywhere(columns, word) for word in terms.include]
    parts += [not_(_anywhere(columns, word)) for word in terms.exclude]
    return and_(*parts)


def count_matches(reader: Session | Connection, query: Select[Any]) -> tuple[int, bool]:
    """(rows matching ``query``, counted up to MATCH_CAP; whether there are more)."""
    bounded = query.limit(MATCH_CAP + 1).subquery()
    found = reader.execute(select(func.count()).select_from(bounded)).scalar_one()
    return min(found, MATCH_CAP), found > MATCH_CAP
