"""quiet windows (``cavra quiet add``): configuration vouched for by the audit chain, whose
one in-place change is being removed; never deleted

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The columns a window is made of: none of them changes once it is written. Removing a
# window sets ``removed`` (with ``removed_at`` and ``removed_by``), once. ``store.pg_roles``
# checks these triggers as they are written here.
FIXED = ("window_id", "name", "providers", "severities", "starts_at", "ends_at", "created_at",
         "created_by")
MESSAGE = "a quiet window changes only by being removed"


def upgrade() -> None:
    op.create_table(
        "quiet_windows",
        sa.Column("window_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("providers", sa.JSON(), nullable=False),
        sa.Column("severities", sa.JSON(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("window_id"),
    )
    op.create_index("ix_quiet_windows_ends_at", "quiet_windows", ["ends_at"])
    op.create_index("ix_quiet_windows_created_at", "quiet_windows", ["created_at"])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in FIXED)
        op.execute(
            "CREATE TRIGGER quiet_windows_only_removal BEFORE UPDATE ON quiet_windows "
            f"WHEN OLD.removed OR NOT NEW.removed OR {changed} "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )
        op.execute(
            "CREATE TRIGGER quiet_windows_no_delete BEFORE DELETE ON quiet_windows "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )
    elif dialect == "postgresql":
        # json has no equality operator: compare the stored text.
        def fixed(row: str) -> str:
            return ", ".join(f"{row}.{c}::text" if c in ("providers", "severities")
                             else f"{row}.{c}" for c in FIXED)

        op.execute(
            "CREATE FUNCTION cavra_quiet_window_removal() RETURNS trigger AS $$ BEGIN "
            "IF TG_OP = 'UPDATE' AND NOT OLD.removed AND NEW.removed "
            f"AND ({fixed('NEW')}) IS NOT DISTINCT FROM ({fixed('OLD')}) THEN RETURN NEW; "
            f"END IF; RAISE EXCEPTION '{MESSAGE}'; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER quiet_windows_only_removal BEFORE UPDATE OR DELETE "
            "ON quiet_windows FOR EACH ROW EXECUTE FUNCTION cavra_quiet_window_removal()"
        )


def downgrade() -> None:
    op.drop_index("ix_quiet_windows_created_at", table_name="quiet_windows")
    op.drop_index("ix_quiet_windows_ends_at", table_name="quiet_windows")
    op.drop_table("quiet_windows")  # its triggers go with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS cavra_quiet_window_removal()")
