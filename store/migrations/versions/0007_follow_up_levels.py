"""escalation levels: follow-up runs (append-only evidence) and the claims of a plan's next
level, one per (plan, level) (append-only: a claim sends that level once); the open plans
are indexed for the follow-up run

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

APPEND_ONLY = ("follow_up_runs", "follow_up_claims")


def upgrade() -> None:
    op.create_table(
        "follow_up_runs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("schedule_id", sa.String(length=32), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("escalations", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index("ix_follow_up_runs_created_at", "follow_up_runs", ["created_at"])
    op.create_index("ix_follow_up_runs_schedule", "follow_up_runs",
                    ["schedule_id", "started_at"])
    op.create_table(
        "follow_up_claims",
        sa.Column("plan_id", sa.String(length=32), nullable=False),
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("providers", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("plan_id", "level"),
    )
    op.create_index("ix_plan_state_open", "plan_state", ["open", "plan_id"])
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
    op.drop_index("ix_plan_state_open", table_name="plan_state")
    op.drop_table("follow_up_claims")  # its triggers go with it
    op.drop_index("ix_follow_up_runs_schedule", table_name="follow_up_runs")
    op.drop_index("ix_follow_up_runs_created_at", table_name="follow_up_runs")
    op.drop_table("follow_up_runs")
