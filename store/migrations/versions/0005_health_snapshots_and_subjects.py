"""recorded health snapshots (append-only); retry plans and worker runs name their subject
(escalation or executive; none on older rows: escalation); leases record when they were
taken (heartbeat leases: how long a holder has held one)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy): on SQLite a table copy would drop the append-only
    # triggers of migration 0001. Older rows keep NULL, and their digests do not change
    # (``store.record_digest`` hashes a late column only when it is set).
    op.add_column("retry_plans", sa.Column("subject", sa.String(length=16), nullable=True))
    op.add_column("worker_runs", sa.Column("subject", sa.String(length=16), nullable=True))
    op.add_column("locks", sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "health_snapshots",
        sa.Column("snapshot_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("alerts", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("snapshot_id"),
    )
    op.create_index("ix_health_snapshots_created_at", "health_snapshots", ["created_at"])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER health_snapshots_no_{verb.lower()} BEFORE {verb} "
                "ON health_snapshots "
                "BEGIN SELECT RAISE(ABORT, 'health_snapshots is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE TRIGGER health_snapshots_append_only BEFORE UPDATE OR DELETE "
            "ON health_snapshots FOR EACH ROW EXECUTE FUNCTION cavra_append_only()"
        )


def downgrade() -> None:
    op.drop_index("ix_health_snapshots_created_at", table_name="health_snapshots")
    op.drop_table("health_snapshots")
    with op.batch_alter_table("locks") as batch_op:
        batch_op.drop_column("acquired_at")
    for table in ("worker_runs", "retry_plans"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("subject")
