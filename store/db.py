"""Engine, sessions and migrations. Opening a database upgrades it to the newest schema."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError, ProgrammingError
from sqlalchemy.pool import QueuePool

from store.errors import UserError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)
# The newest migration in store/migrations/versions. Knowing it without importing Alembic
# keeps start-up fast when the database is current; a test checks it against Alembic.
SCHEMA_HEAD = "0009"
MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 15_000


# What SQLite's own messages mean for the person who ran the command (one line each).
_TROUBLE = (
    ("database disk image is malformed",
     "{where} is damaged ({reason}): restore it from a backup"),
    ("file is not a database", "cannot open {where}: {reason} (check --db / CAVRA_DB_URL)"),
    ("database or disk is full",
     "the disk is full ({reason}): free space and run it again; nothing was half-written"),
    ("attempt to write a readonly database",
     "the database is read-only here ({reason}): read-only commands (metrics, health, audit "
     "verify) still work; write to a writable copy"),
    ("unable to open database file",
     "cannot open the database file ({reason}): check the path and the folder's permissions"),
    ("disk i/o error", "the disk failed ({reason}); nothing was half-written"),
    ("database is locked",
     "the database is busy ({reason}): another process held it for over 15 s; try again"),
)


def explain_database_error(reason: str, where: str = "the database file") -> str | None:
    """A known database failure in words, or None (then it is ours: an internal error)."""
    lowered = reason.lower()
    for fragment, words in _TROUBLE:
        if fragment in lowered:
            return "database: " + words.format(reason=reason, where=where)
    return None


def default_sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'cavra.db'}"


def _may_write(path: Path) -> bool:
    """Writable for this process, and not made read-only on purpose: no write bit at all
    means "leave it as it is" even to root (an auditor's copy), whom permissions don't stop."""
    return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)


def folder_writable(path: Path) -> bool:
    return _may_write(path.parent if str(path.parent) else Path("."))


def writable(path: Path) -> bool:
    """Whether this process may change the SQLite file and create its -wal/-shm beside it."""
    return folder_writable(path) and (not path.exists() or _may_write(path))


def read_only_uri(path: Path, immutable: bool) -> str:
    """A SQLite URI that opens the file without writing anything: ``mode=ro`` (SQLite may
    still create the -shm of a WAL database), or ``immutable=1`` when not even that can be
    made (a read-only folder: SQLite then reads the file as it is, taking no locks). The
    path is percent-encoded once and handed to sqlite3 as is (``?``, ``#``, ``%`` in a
    file name stay part of the name)."""
    query = "immutable=1" if immutable else "mode=ro"
    return f"file:{quote(str(path.resolve()))}?{query}"


def _sqlite_engine(url: str, immediate: bool, read_only_uri: str | None = None) -> Engine:
    read_only = read_only_uri is not None
    if read_only_uri is not None:
        uri = read_only_uri
        engine = create_engine("sqlite://", poolclass=QueuePool, creator=lambda: sqlite3.connect(
            uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False))
    else:
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when a transaction begins (SQLAlchemy docs recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if read_only:  # a read-only copy: change nothing, not even the journal mode
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.close()
            return
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front, so a read-then-write never fails mid-way.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """Two engines on one URL: writers serialise (SQLite BEGIN IMMEDIATE), readers do not.

    The ORM (``sqlalchemy.orm``) is loaded with the first session: reads on Core
    (``connect``) never need it, and a quick command should not pay for it."""

    def __init__(self, url: str, read_only_copy: bool = False) -> None:
        """``read_only_copy``: an existing SQLite file this process may not change (an
        auditor's copy): opened read-only, never migrated, nothing written beside it."""
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):
            raise UserError("database: not a database URL (see --db / CAVRA_DB_URL)") from None
        self.url = url
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.sqlite_path = Path(parsed.database) if self.is_sqlite and parsed.database else None
        self.read_only_copy = read_only_copy and self.sqlite_path is not None
        if self.is_sqlite and self.read_only_copy and self.sqlite_path is not None:
            # mode=ro needs the -shm of a WAL file: without a writable folder, immutable.
            immutable = not folder_writable(self.sqlite_path)
            wal = self.sqlite_path.with_name(self.sqlite_path.name + "-wal")
            if immutable and wal.exists() and wal.stat().st_size > 0:
                # immutable=1 ignores the -wal: the copy would read as older than it is.
                raise UserError(f"database: {self.sqlite_path} is a read-only copy with an "
                                f"uncheckpointed {wal.name} in a read-only folder: copy both "
                                "to a writable folder, or checkpoint the original first")
            ro_uri = read_only_uri(self.sqlite_path, immutable=immutable)
            self.write_engine = _sqlite_engine(url, immediate=True, read_only_uri=ro_uri)
            self.read_engine = _sqlite_engine(url, immediate=False, read_only_uri=ro_uri)
        elif self.is_sqlite:
            if self.sqlite_path is not None and str(self.sqlite_path) != ":memory:":
                try:
                    self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise UserError(f"database: cannot create the folder "
                                    f"{self.sqlite_path.parent}: {exc.strerror}") from None
            self.write_engine = _sqlite_engine(url, immediate=True)
            self.read_engine = _sqlite_engine(url, immediate=False)
        else:
            try:
                self.write_engine = create_engine(url, pool_pre_ping=True)
            except Exception as exc:  # e.g. missing driver
                raise UserError(
                    f"database: cannot use {parsed.render_as_string()}: {exc}") from None
            self.read_engine = self.write_engine
        self._sessions: dict[bool, sessionmaker[Session]] = {}

    def describe(self) -> str:
        """The URL without a password, fit for a header or a log."""
        return make_url(self.url).render_as_string(hide_password=True)

    def short_name(self) -> str:
        """What a narrow header shows: the file name, or host/database."""
        if self.sqlite_path is not None:
            return self.sqlite_path.name
        parsed = make_url(self.url)
        return f"{parsed.host or 'local'}/{parsed.database or ''}"

    def _check_copy_schema(self) -> None:
        try:
            with self.read_engine.connect() as conn:
                current = current_revision(conn)
        except DatabaseError as exc:
            reason = (str(exc.orig).strip().splitlines() or ["unknown error"])[0]
            raise UserError(f"database: cannot open {self.describe()}: {reason}") from None
        if current != SCHEMA_HEAD:
            raise UserError(f"database: {self.describe()} is a read-only copy at schema "
                            f"{current or 'none'}; this cavra needs {SCHEMA_HEAD} (upgrade a "
                            "writable copy first)")

    def _sessionmaker(self, write: bool) -> sessionmaker[Session]:
        made = self._sessions.get(write)
        if made is None:  # two threads racing here make two equal factories: harmless
            from sqlalchemy.orm import sessionmaker

            made = sessionmaker(self.write_engine if write else self.read_engine,
                                expire_on_commit=False)
            self._sessions[write] = made
        return made

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on any error."""
        with self._sessionmaker(write=True)() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessionmaker(write=False)() as session:
            yield session

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A read on SQLAlchemy Core, in one transaction (one snapshot), never committed."""
        with self.read_engine.connect() as conn:
            yield conn

    def migrate(self) -> None:
        if self.read_only_copy:
            self._check_copy_schema()
            return
        try:
            upgrade_to_head(self.write_engine)
        except OperationalError as exc:
            reason = (str(exc.orig).strip().splitlines() or ["unknown error"])[0]
            raise UserError(explain_database_error(reason, self.describe())
                            or f"database: cannot open {self.describe()}: {reason}") from None
        except ProgrammingError as exc:  # PostgreSQL: a login role may not run migrations
            reason = (str(exc.orig).strip().splitlines() or ["unknown error"])[0]
            raise UserError(f"database: cannot upgrade {self.describe()}: {reason} (upgrade as "
                            "the owner role, then run `cavra db grant` again)") from None
        except DatabaseError as exc:  # e.g. SQLite: "file is not a database"
            reason = (str(exc.orig).strip().splitlines() or ["unknown error"])[0]
            raise UserError(explain_database_error(reason, self.describe())
                            or f"database: cannot open {self.describe()}: {reason}") from None

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()


def _alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def current_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


def upgrade_to_head(engine: Engine) -> None:
    with engine.connect() as conn:
        current = current_revision(conn)
    if current == SCHEMA_HEAD:
        return
    from alembic import command
    from alembic.script import ScriptDirectory

    config = _alembic_config()
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    if current is not None and current not in known:
        raise UserError(f"database: schema revision {current} is newer than this cavra "
                        "(upgrade cavra to open it)")
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    log.info("database upgraded from %s to %s", current, SCHEMA_HEAD)


def open_database(url: str, read_only_copy: bool = False) -> Database:
    database = Database(url, read_only_copy=read_only_copy)
    database.migrate()
    return database
