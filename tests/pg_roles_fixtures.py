"""A PostgreSQL database as the docs set it up (SPEC §9): an owner role that ran the
migrations and two login roles granted with ``cavra db grant``, each with a password.

Reusable by any test module::

    from tests import pg_roles_fixtures
    from tests.pg_roles_fixtures import GrantedDatabase, login_url

    pg_granted = pg_roles_fixtures.pg_granted  # (an import would trip ruff's F811)

Without ``CAVRA_TEST_PG_URL`` (a superuser URL, see ``.ci/run``) the tests that use
``pg_granted`` skip. Logins go over TCP with a password (``CAVRA_TEST_PG_LOGIN_HOST``,
default 127.0.0.1: Debian's pg_hba.conf allows scram-sha-256 there). Every database and
role is dropped at teardown, with bounded timeouts.
"""

from __future__ import annotations

import io
import os
import secrets
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

PG_ENV = "CAVRA_TEST_PG_URL"
TIMEOUT_S = 20
# Bounded waits: a stuck lock or server fails the test instead of hanging it.
CONNECT_ARGS = {"connect_timeout": 10,
                "options": f"-c statement_timeout={TIMEOUT_S * 1000} "
                           f"-c lock_timeout={TIMEOUT_S * 1000}"}


def admin_url() -> str:
    """The superuser URL from ``CAVRA_TEST_PG_URL``; skips the test without it."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"no PostgreSQL server: set {PG_ENV} (see .ci/run)")
    return url


def login_url(role: str, password: str, database: str | None = None) -> str:
    """A password login as ``role`` over TCP (to ``database``, default the admin URL's)."""
    admin = make_url(admin_url())
    return URL.create("postgresql+psycopg", username=role, password=password,
                      host=os.environ.get("CAVRA_TEST_PG_LOGIN_HOST", "127.0.0.1"),
                      port=admin.port or 5432,
                      database=database or admin.database).render_as_string(hide_password=False)


def engine(url: str) -> Engine:
    """An autocommit engine with bounded timeouts (dispose it when done)."""
    return create_engine(url, isolation_level="AUTOCOMMIT", connect_args=CONNECT_ARGS)


@dataclass(frozen=True)
class LoginRole:
    name: str
    password: str
    url: str  # password login over TCP to the test database


@dataclass
class GrantedDatabase:
    database: str
    admin_url: str  # the superuser, connected to this database
    owner: LoginRole  # owns every table: ran the migrations and `cavra db grant`
    roles: tuple[LoginRole, LoginRole]  # LOGIN roles granted with `cavra db grant`
    grant_output: str  # what `cavra db grant` printed
    _extra_roles: list[str] = field(default_factory=list)

    def admin_sql(self, *statements: str) -> None:
        """Run statements as the superuser on this database."""
        self._run(self.admin_url, statements)

    def owner_sql(self, *statements: str) -> None:
        """Run statements as the owner (e.g. grant too much by hand, drop a trigger)."""
        self._run(self.owner.url, statements)

    def add_login_role(self, label: str) -> LoginRole:
        """A further LOGIN role with a password and no privileges; dropped at teardown."""
        role = _new_role(self.database, label)
        self._extra_roles.append(role.name)
        self.admin_sql(f"CREATE ROLE {role.name} LOGIN PASSWORD '{role.password}'")
        return role

    @staticmethod
    def _run(url: str, statements: tuple[str, ...]) -> None:
        eng = engine(url)
        try:
            with eng.connect() as conn:
                for statement in statements:
                    conn.execute(text(statement))
        finally:
            eng.dispose()


def _new_role(database: str, label: str) -> LoginRole:
    name = f"{database}_{label}"
    password = secrets.token_hex(16)
    return LoginRole(name=name, password=password, url=login_url(name, password, database))


def _cli(*args: str) -> tuple[int, str, str]:
    from cavra_tui.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def pg_granted() -> Iterator[GrantedDatabase]:
    """A fresh database owned by a new LOGIN owner role, migrated as that owner, and two
    new LOGIN roles granted with ``cavra db grant`` (run through ``cavra_tui.cli.main``)."""
    from store.db import open_database

    superuser_url = admin_url()
    name = f"cavra_r{uuid.uuid4().hex[:10]}"
    owner = _new_role(name, "owner")
    operators = (_new_role(name, "op_a"), _new_role(name, "op_b"))
    created: list[str] = []
    admin = engine(superuser_url)
    granted: GrantedDatabase | None = None
    try:
        with admin.connect() as conn:
            for role in (owner, *operators):
                conn.execute(text(f"CREATE ROLE {role.name} LOGIN PASSWORD '{role.password}'"))
                created.append(role.name)
            conn.execute(text(f"CREATE DATABASE {name} OWNER {owner.name}"))
        try:
            open_database(owner.url).dispose()  # migrate as the owner
        except Exception as exc:
            if "password authentication" in str(exc) or "pg_hba.conf" in str(exc):
                pytest.skip(f"PostgreSQL refuses password logins over TCP: {exc}")
            raise
        code, out, err = _cli("--db", owner.url, "db", "grant", *(r.name for r in operators))
        assert code == 0, err
        granted = GrantedDatabase(
            database=name, owner=owner, roles=operators, grant_output=out,
            admin_url=make_url(superuser_url).set(database=name).render_as_string(
                hide_password=False))
        yield granted
    finally:
        left: list[str] = []
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            for role_name in [*(granted._extra_roles if granted else []), *created]:
                try:
                    conn.execute(text(f"DROP ROLE IF EXISTS {role_name}"))
                except DBAPIError as exc:  # e.g. a lock timeout: report it, never hang
                    left.append(f"{role_name} ({str(exc.orig).strip().splitlines()[0]})")
        admin.dispose()
        if left:
            pytest.fail(f"could not drop test roles: {', '.join(left)}")
