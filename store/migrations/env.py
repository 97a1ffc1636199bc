"""Alembic environment: runs on the connection handed over by ``store.db``."""

from alembic import context

from store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `alembic` CLI use
    raise RuntimeError("run migrations through store.db.open_database")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
context.run_migrations()
