"""Identity from the database (``[identity] source = "database"``, SPEC §9): PostgreSQL has
authenticated the connection (password, peer, certificate), so its ``session_user`` names the
actor and cannot be claimed by an operator on another jump host."""

from __future__ import annotations

from sqlalchemy import text

from store.db import Database
from store.errors import UserError


def database_identity(db: Database) -> tuple[str, frozenset[str]]:
    """The session user and the database roles it is a member of (its ``@group`` roles)."""
    if db.is_sqlite:
        raise UserError('identity: source = "database" needs PostgreSQL '
                        "(a SQLite file has no users); use source = \"os\"")
    with db.read() as session:
        user = session.execute(text("SELECT session_user")).scalar_one()
        groups = session.execute(text(
            "SELECT r.rolname FROM pg_roles r WHERE r.rolname <> session_user "
            "AND pg_has_role(session_user, r.oid, 'MEMBER')")).scalars().all()
    return str(user), frozenset(str(g) for g in groups)
