"""failover (issue 13 step 2): the claims of a suppressed escalation pair's one failover
send, one per (plan, provider) (append-only: a pair fails over once), and the failovers a
follow-up run recorded (``follow_up_runs.failovers``; none on older rows)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

APPEND_ONLY = ("failover_claims",)


def upgrade() -> None:
    op.create_table(
        "failover_claims",
        sa.Column("plan_id", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("plan_id", "provider"),
    )
    # A nullable column: adding it rewrites nothing, and older rows keep their digests
    # (store.record_digest.LATE_COLUMNS).
    op.add_column("follow_up_runs", sa.Column("failovers", sa.JSON(), nullable=True))
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
    elif dialect == "postgresql":
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION cavra_append_only()"
            )


def downgrade() -> None:
    op.drop_column("follow_up_runs", "failovers")
    op.drop_table("failover_claims")  # its triggers go with it
