"""The one wiring point: settings → database, config, identity, connectors (SPEC §2).

Only what every command needs is imported here; the connectors are built on first use, so a
read-only command (or a console that never sends) never loads them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from store.clock import Clock, system_clock
from store.config import CavraConfig, EnvSettings, data_dir, load_config
from store.db import Database, default_sqlite_url, open_database
from store.errors import UserError
from store.policy import Identity, resolve_identity
from store.services.context import StoreContext

if TYPE_CHECKING:
    from store.audit import EventSigner
    from workflows.connectors.registry import ConnectorRegistry


@dataclass
class Runtime:
    ctx: StoreContext
    data_dir: Path
    outbox_dir: Path
    # Found on open: e.g. append-only triggers dropped behind cavra's back (one line each).
    warnings: tuple[str, ...] = ()
    created_database: Path | None = None  # a SQLite file this start created

    @property
    def read_only_copy(self) -> bool:
        """An existing SQLite file this process may not change, opened read-only."""
        return self.ctx.db.read_only_copy
    _registry: ConnectorRegistry | None = field(default=None, repr=False)
    _registry_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def registry(self) -> ConnectorRegistry:
        """The configured connectors, built on first use (by whichever thread sends first)."""
        with self._registry_lock:
            if self._registry is None:
                from workflows.connectors.registry import ConnectorRegistry

                self._registry = ConnectorRegistry(self.config, self.outbox_dir,
                                                   clock=self.ctx.clock)
            return self._registry

    @property
    def db(self) -> Database:
        return self.ctx.db

    @property
    def config(self) -> CavraConfig:
        return self.ctx.config

    @property
    def identity(self) -> Identity:
        return self.ctx.identity

    def close(self) -> None:
        self.ctx.db.dispose()


def outbox_dir(db: Database, fallback: Path) -> Path:
    """``outbox.jsonl`` sits beside the SQLite database, else in the data dir (SPEC §7)."""
    if db.sqlite_path is not None and str(db.sqlite_path) != ":memory:":
        return db.sqlite_path.resolve().parent
    return fallback


def _read_only_copy(url: str) -> Path | None:
    """The SQLite file a URL names, when it exists and this process may not change it."""
    from sqlalchemy.engine import make_url

    from store.db import writable

    try:
        parsed = make_url(url)
    except Exception:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database)
    return path if path.exists() and not writable(path) else None


def _new_sqlite_file(url: str) -> Path | None:
    """The SQLite file a URL names, if it does not exist yet (None for :memory: or a server)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # a bad URL is the database layer's to report
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database)
    return None if path.exists() else path


def build_runtime(*, db_url: str | None = None, config_path: str | None = None,
                  read_only: bool = False, clock: Clock = system_clock,
                  default_db_name: str = "cavra.db", user: str | None = None,
                  existing_only: bool = False) -> Runtime:
    """``existing_only``: a read-only command never creates a database (a mistyped path
    must not pass for a healthy, empty loop)."""
    env = EnvSettings()
    config = load_config(config_path or env.config)
    folder = data_dir(env)
    url = db_url or env.db_url or default_sqlite_url(folder).replace("cavra.db", default_db_name)
    if config.identity.source == "database" and url.startswith("sqlite"):
        # Refuse before the file is created: a SQLite file has no users to authenticate.
        raise UserError('identity: source = "database" needs PostgreSQL (a SQLite file has '
                        'no users); use source = "os"')
    created = _new_sqlite_file(url)
    if created is not None and existing_only:
        raise UserError(f"database: {created} does not exist (this command only reads, and "
                        "creates nothing: check --db / CAVRA_DB_URL)")
    copy = _read_only_copy(url)  # every command: writes are then refused, in one line
    db = open_database(url, read_only_copy=copy is not None)
    identity = _identity(config, db, read_only=read_only or copy is not None, user=user,
                         reason="the database is a read-only copy" if copy else None)
    ctx = StoreContext(db=db, config=config, identity=identity, clock=clock,
                       event_signer=event_signer(config))
    return Runtime(ctx=ctx, data_dir=folder, outbox_dir=outbox_dir(db, folder),
                   warnings=tuple(opening_warnings(db)), created_database=created)


def opening_warnings(db: Database) -> list[str]:
    """Say at once when the database no longer protects its evidence (one query)."""
    from store.pg_roles import append_only_problems

    problems = append_only_problems(db)
    if not problems:
        return []
    more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
    return [f"append-only protection missing: {problems[0]}{more} "
            "(run `cavra audit verify`)"]


def event_signer(config: CavraConfig) -> EventSigner | None:
    """``[audit] signing = "ssh"``: each event is signed through ssh-agent as it is written."""
    if config.audit.signing != "ssh":
        return None
    from store.signing import ssh_sign

    key = config.audit.ssh_key
    if key is not None and not key.lstrip().startswith(("ssh-", "ecdsa-", "sk-")):
        key = str(config.resolve_path(key))

    def sign(event_sha256: str) -> str:
        return ssh_sign(event_sha256.encode(), public_key=key)

    return sign


def _identity(config: CavraConfig, db: Database, *, read_only: bool,
              user: str | None, reason: str | None = None) -> Identity:
    """The actor comes from the OS (effective uid) or the database, never the environment."""
    if config.identity.source == "database":
        from store.db_identity import database_identity

        try:
            db_user, groups = database_identity(db)
        except Exception:
            db.dispose()
            raise
        return resolve_identity(config, read_only=read_only, user=db_user, groups=groups,
                                source="database",
                                read_only_reason=reason or "--read-only was given")
    return resolve_identity(config, read_only=read_only, user=user,
                            read_only_reason=reason or "--read-only was given")
