"""What a person is told when a command or the console's start fails: one line, and the exit
code (2: their situation — bad input, a refusal, a database that said no; 1: ours)."""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass

from store.errors import UserError

log = logging.getLogger("cavra")


@dataclass(frozen=True)
class Failure:
    reason: str
    exit_code: int
    internal: bool = False

    @property
    def line(self) -> str:
        """What the command line prints on stderr."""
        return f"cavra: {'internal error' if self.internal else 'error'}: {self.reason}"


def privilege_refusal(exc: BaseException) -> str | None:
    """PostgreSQL said no (e.g. a login role after an upgrade, before `cavra db grant` was run
    again): the user's situation, one line, not an internal error."""
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        return None
    reason = (str(exc.orig).strip().splitlines() or [""])[0]
    if "permission denied" not in reason and "must be owner" not in reason:
        return None
    return (f"database: {reason} (ask the database owner to run `cavra db grant` "
            "for your role)")


def environment_trouble(exc: BaseException) -> str | None:
    """The machine said no (a damaged or read-only database, a full disk, a file this user
    may not write): the user's situation, one line."""
    from sqlalchemy.exc import DBAPIError

    from store.db import explain_database_error

    if isinstance(exc, DBAPIError):
        return explain_database_error((str(exc.orig).strip().splitlines() or [""])[0])
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.ENOSPC,
                                                   errno.EROFS, errno.EDQUOT):
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot use{where}: {exc.strerror}"
    return None


def describe_failure(exc: Exception) -> Failure:
    """An internal failure's traceback goes to the log, never the screen."""
    if isinstance(exc, UserError):
        return Failure(str(exc), 2)
    refusal = privilege_refusal(exc) or environment_trouble(exc)
    if refusal:
        return Failure(refusal, 2)
    log.error("internal error", exc_info=exc)
    return Failure(f"{exc.__class__.__name__} (details in cavra.log under the data dir)", 1,
                   internal=True)
