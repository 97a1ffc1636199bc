"""who accepted each pair (separation of duties); worker runs indexed by schedule

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pair_state") as batch_op:
        batch_op.add_column(sa.Column("accepted_by", sa.String(length=64), nullable=True))
    # Fill it from the evidence: the latest `accepted` acknowledgement of each pair.
    op.execute(
        "UPDATE pair_state SET accepted_by = (SELECT a.acknowledged_by FROM acknowledgements a "
        "WHERE a.plan_id = pair_state.plan_id AND a.provider = pair_state.provider "
        "AND a.state = 'accepted' ORDER BY a.created_at DESC LIMIT 1)"
    )
    op.create_index("ix_worker_runs_schedule", "worker_runs", ["schedule_id", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_worker_runs_schedule", table_name="worker_runs")
    with op.batch_alter_table("pair_state") as batch_op:
        batch_op.drop_column("accepted_by")
