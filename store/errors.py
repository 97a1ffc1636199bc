"""Errors a user can act on. The CLI prints them as one line and exits 2."""


class UserError(Exception):
    """Bad input or a refused request: nothing was written (except a denial's audit event)."""


class NotFound(UserError):
    """A referenced record does not exist."""


class PolicyDenied(UserError):
    """The actor's role or the read-only mode does not allow the action."""


class Conflict(UserError):
    """The request collides with work in progress (e.g. a second live worker run)."""


class StaleDecision(Conflict):
    """The pair moved on (a success, another attempt) since the decision was made."""


class AlreadyDelivered(Conflict):
    """The run already reached this provider: sending again would duplicate it."""
