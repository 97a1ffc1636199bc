"""status range indexes (issue 9): health's reads look up rows by status *and* a second
column, and a status-only index made each of them visit every row ever in that status —
every failed execution since the start (a cold console spent ~0.6 s there on 10^6
executions), every failed delivery of both kinds. Each status index becomes a composite
one that still serves the status-only lookups.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_execution_records_status", table_name="execution_records")
    op.create_index("ix_execution_records_status_created_at", "execution_records",
                    ["status", "created_at"])
    op.drop_index("ix_deliveries_status", table_name="deliveries")
    op.create_index("ix_deliveries_status_kind", "deliveries", ["status", "kind"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_status_kind", table_name="deliveries")
    op.create_index("ix_deliveries_status", "deliveries", ["status"])
    op.drop_index("ix_execution_records_status_created_at", table_name="execution_records")
    op.create_index("ix_execution_records_status", "execution_records", ["status"])
