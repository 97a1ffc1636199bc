"""`cavra db grant ROLE…` (SPEC §9): login roles that may append evidence but never delete it.

Run it as the database owner (the role that runs the migrations), after every upgrade.
"""

from __future__ import annotations

import argparse

from cavra_tui.bootstrap import Runtime
from cavra_tui.cli_output import emit_json, emit_lines
from store.pg_roles import apply_grants, grant_statements, grantable_tables


def db_grant(runtime: Runtime, args: argparse.Namespace) -> int:
    roles: list[str] = list(args.roles)
    grant_statements(roles, ())  # a bad role name is refused before anything else
    if args.print_only:
        sql = grant_statements(roles, grantable_tables(runtime.db))
        if getattr(args, "json", False):
            emit_json({"roles": roles, "statements": sql})
        else:
            emit_lines([f"{statement};" for statement in sql])
        return 0
    # cavra's roles decide who may ask (audited, allowed or not); the database decides the rest.
    decision = runtime.ctx.require("db.grant", roles)
    lines = apply_grants(runtime.db, roles)
    with runtime.ctx.write() as session:
        runtime.ctx.audit(session, "db.grant", decision, roles, f"granted {', '.join(roles)}",
                          {"roles": roles, "statements": grant_statements(
                              roles, grantable_tables(runtime.db))})
    if getattr(args, "json", False):
        emit_json({"roles": roles, "granted": lines})
    else:
        emit_lines(lines)
    return 0
