"""Quiet windows (issue 13): add and remove them, and record the sends they silence.

A quiet window is configuration, like a schedule: every add and remove needs the
``quiet.change`` rule (release_manager) and is audited, and the audit chain vouches for the
row (``store.record_digest``), so an edit behind cavra's back shows in ``audit verify``. Its
one in-place change is being removed; a removed or ended window stays in the table, since
the skips it caused name it. Bad input raises a one-line ``UserError`` before anything is
written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from store.clock import as_utc
from store.errors import Conflict, NotFound, UserError
from store.ids import kind_of, new_id
from store.models import QuietWindow, Severity
from store.policy import Decision
from store.rules.quiet import DEFAULT_SEVERITIES, SEVERITIES, quiet_reason
from store.schedule_limits import MAX_INTERVAL_S
from store.services.context import StoreContext
from store.services.schedules import parse_duration
from store.tables import QuietWindowRow

# The schedule-name alphabet, at most 50 characters: a skipped execution's reason,
# "quiet_window: NAME", must fit its 64-character column on every database.
WINDOW_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,49}")
MAX_LENGTH = timedelta(seconds=MAX_INTERVAL_S)  # 366 days
WHEN_HELP = ("ISO 8601 with an offset (2026-11-27T22:00:00+01:00, …Z), `now`, or +DURATION "
             "from now (+30m, +2h, +1d)")


class QuietSkip(BaseModel):
    """A send a quiet window silenced: nothing was sent, and this was audited."""

    model_config = ConfigDict(frozen=True)
    provider: str
    plan_id: str | None
    run_id: str | None
    status: str = "skipped"
    reason: str
    window_id: str
    window: str
    until: datetime
    delivery_id: None = None  # nothing was sent: no delivery record


def parse_when(text: str, now: datetime, option: str) -> datetime:
    """``--from`` / ``--until``: ISO 8601 with an offset (stored as UTC), ``now`` or
    ``+DURATION`` (the units of ``schedule add --every``)."""
    value = (text or "").strip()
    if value.lower() == "now":
        return as_utc(now)
    if value.startswith("+"):
        try:
            return as_utc(now) + timedelta(seconds=parse_duration(value[1:]))
        except UserError:
            raise UserError(f"{option} {text!r}: use {WHEN_HELP}") from None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"{option} {text!r}: use {WHEN_HELP}") from None
    if moment.tzinfo is None:
        raise UserError(f"{option} {text!r} has no offset: add one (…Z, …+01:00) so the time "
                        "is not guessed at")
    return as_utc(moment)


def _check_name(name: str) -> str:
    text = (name or "").strip()
    if not text.isprintable():
        raise UserError("quiet window name must be printable (no control characters)")
    if not WINDOW_NAME.fullmatch(text):
        raise UserError(f"quiet window name {text!r}: use 1–50 of a-z 0-9 . _ -, starting with "
                        "a letter or digit (e.g. db-maintenance)")
    return text


def _check_providers(ctx: StoreContext, providers: Sequence[str]) -> list[str]:
    chosen = list(dict.fromkeys(p.strip() for p in providers))
    if not chosen:
        raise UserError("name at least one --provider to keep quiet")
    for name in chosen:
        if ctx.config.provider(name) is None:
            raise UserError(f"provider {name!r} is not configured")
    return chosen


def _check_severities(severities: Sequence[str] | None) -> list[Severity]:
    wanted = list(dict.fromkeys(severities or DEFAULT_SEVERITIES))
    for level in wanted:
        if level not in SEVERITIES:
            raise UserError(f"severity {level!r}: choose warning or critical")
    return [level for level in SEVERITIES if level in wanted]


def _taken(session: Session, name: str, now: datetime) -> str | None:
    """The window that holds ``name`` now: one not removed and not ended."""
    found = session.execute(select(QuietWindowRow.window_id).where(
        QuietWindowRow.name == name, QuietWindowRow.removed.is_(False),
        QuietWindowRow.ends_at > now).limit(1)).scalar_one_or_none()
    return str(found) if found is not None else None


def describe(window: QuietWindow) -> str:
    """``ops-webhook, pager (warning) 2026-11-27T22:00:00+00:00 – 2026-11-28T02:00:00+00:00``"""
    return (f"{', '.join(window.providers)} ({'+'.join(window.severities)}) "
            f"{window.starts_at.isoformat()} – {window.ends_at.isoformat()}")


def add_quiet_window(ctx: StoreContext, *, name: str, providers: Sequence[str],
                     starts: str, ends: str,
                     severities: Sequence[str] | None = None) -> QuietWindow:
    clean_name = _check_name(name)
    chosen = _check_providers(ctx, providers)
    levels = _check_severities(severities)
    now = as_utc(ctx.clock())
    starts_at = parse_when(starts, now, "--from")
    ends_at = parse_when(ends, now, "--until")
    if ends_at <= starts_at:
        raise UserError(f"--until ({ends_at.isoformat()}) must be later than --from "
                        f"({starts_at.isoformat()})")
    if ends_at <= now:
        raise UserError(f"--until ({ends_at.isoformat()}) has passed: a window that has ended "
                        "silences nothing")
    if ends_at - starts_at > MAX_LENGTH:
        raise UserError("a quiet window lasts at most 366 days")
    with ctx.db.read() as session:
        taken = _taken(session, clean_name, now)
    if taken is not None:
        raise UserError(f"a quiet window named {clean_name!r} already exists ({taken}); remove "
                        "it first or pick another name")
    decision = ctx.require("quiet.change")
    with ctx.write() as session:
        if (taken := _taken(session, clean_name, now)) is not None:  # added meanwhile
            raise UserError(f"a quiet window named {clean_name!r} already exists ({taken})")
        row = QuietWindowRow(
            window_id=new_id("quiet_window"), name=clean_name, providers=chosen,
            severities=list(levels), starts_at=starts_at, ends_at=ends_at, removed=False,
            removed_at=None, removed_by=None, created_at=now, created_by=ctx.identity.actor)
        session.add(row)
        session.flush()
        window = QuietWindow.model_validate(row)
        ctx.audit(session, "quiet.change", decision, [window.window_id],
                  f"add quiet window {clean_name!r}: {describe(window)}"[:255],
                  {"change": "add", "window": window.model_dump(mode="json")})
    return window


def _find(session: Session, ref: str, now: datetime) -> QuietWindowRow:
    """By ID (``qwn-…``) or by name: a window that is not removed and has not ended."""
    text = (ref or "").strip()
    row = session.get(QuietWindowRow, text) if kind_of(text) == "quiet_window" else None
    if row is None:
        row = session.execute(select(QuietWindowRow).where(
            QuietWindowRow.name == text, QuietWindowRow.removed.is_(False),
            QuietWindowRow.ends_at > now).limit(1)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"quiet window {text!r} not found (`cavra quiet list` shows the active "
                       "and upcoming ones)")
    if row.removed:
        raise NotFound(f"quiet window {text!r} was already removed")
    if as_utc(row.ends_at) <= now:
        raise NotFound(f"quiet window {text!r} already ended at "
                       f"{as_utc(row.ends_at).isoformat()}")
    return row


def remove_quiet_window(ctx: StoreContext, ref: str) -> QuietWindow:
    """Ends the window now (or before it starts): sends resume at once."""
    now = as_utc(ctx.clock())
    with ctx.db.read() as session:
        target = QuietWindow.model_validate(_find(session, ref, now))
    decision = ctx.require("quiet.change", [target.window_id])
    with ctx.write() as session:
        row = session.get(QuietWindowRow, target.window_id)
        if row is None or row.removed:  # removed meanwhile
            raise Conflict(f"quiet window {target.name!r} was removed meanwhile")
        row.removed, row.removed_at, row.removed_by = True, now, ctx.identity.actor
        session.flush()
        window = QuietWindow.model_validate(row)
        ctx.audit(session, "quiet.change", decision, [window.window_id],
                  f"remove quiet window {window.name!r}: {describe(window)}"[:255],
                  {"change": "remove", "window": window.model_dump(mode="json")})
    return window


def record_quiet_skips(ctx: StoreContext, action: str, decision: Decision,
                       skips: Sequence[QuietSkip]) -> None:
    """A send a window silenced is never dropped silently: one audit event each, naming the
    plan or report run and the window (whose row the event vouches for)."""
    if not skips:
        return
    with ctx.write() as session:
        for skip in skips:
            subject = skip.plan_id or skip.run_id
            ctx.audit(session, action, decision,
                      [*([subject] if subject else []), skip.window_id],
                      f"{skip.provider}: skipped ({skip.reason})"[:255],
                      skip.model_dump(mode="json"))


def quiet_skip(window: QuietWindow, provider: str, *, plan_id: str | None = None,
               run_id: str | None = None) -> QuietSkip:
    return QuietSkip(provider=provider, plan_id=plan_id, run_id=run_id,
                     reason=quiet_reason(window), window_id=window.window_id,
                     window=window.name, until=window.ends_at)
