"""Per-rebalance targets, per-destination alert deliveries, heartbeats and per-cycle latency.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rebalance_targets",
        sa.Column("rebalance_id", sa.String(128)), sa.Column("coin", sa.String(32)),
        sa.Column("weight", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("rebalance_id", "coin", name="pk_rebalance_targets"),
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("alert_key", sa.String(200)), sa.Column("destination_id", sa.String(16)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime), sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False), sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("alert_key", "destination_id", name="pk_alert_deliveries"),
    )
    op.create_index("ix_alert_deliveries_status_next", "alert_deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(64)), sa.Column("ts", sa.DateTime, nullable=False), sa.Column("detail", sa.Text),
        sa.PrimaryKeyConstraint("name", name="pk_heartbeats"),
    )
    op.create_table(
        "cycle_latency",
        sa.Column("window_ts", sa.DateTime), sa.Column("stage", sa.String(64)),
        sa.Column("seconds", sa.Double, nullable=False), sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("window_ts", "stage", name="pk_cycle_latency"),
    )


def downgrade() -> None:
    for table in ("cycle_latency", "heartbeats", "alert_deliveries", "rebalance_targets"):
        op.drop_table(table)
