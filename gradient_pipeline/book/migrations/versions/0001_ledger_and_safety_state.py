"""Ledger and safety state as they were in DuckDB (rebalances, orders, fills, positions, equity, high-water mark,
halt history, alert state and log).

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rebalances",
        sa.Column("rebalance_id", sa.String(128), primary_key=True),
        sa.Column("window_ts", sa.DateTime), sa.Column("rebalance_time", sa.DateTime),
        sa.Column("mode", sa.String(16)), sa.Column("network", sa.String(16)), sa.Column("account", sa.String(64)),
        sa.Column("status", sa.String(16)), sa.Column("reason", sa.Text), sa.Column("capital_usd", sa.Double),
        sa.Column("attempts", sa.Integer), sa.Column("n_orders", sa.Integer), sa.Column("n_fills", sa.Integer),
        sa.Column("dagster_run_id", sa.String(64)), sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.PrimaryKeyConstraint("rebalance_id", name="pk_rebalances"),
    )
    op.create_index("ix_rebalances_started_at", "rebalances", ["started_at"])
    op.create_table(
        "orders",
        sa.Column("cloid", sa.String(64)), sa.Column("rebalance_id", sa.String(128)), sa.Column("coin", sa.String(32)),
        sa.Column("leg", sa.String(16)), sa.Column("attempt", sa.Integer), sa.Column("side", sa.String(8)),
        sa.Column("sz", sa.Double), sa.Column("limit_px", sa.Double), sa.Column("mid_px", sa.Double),
        sa.Column("reduce_only", sa.Boolean), sa.Column("tif", sa.String(8)), sa.Column("notional_usd", sa.Double),
        sa.Column("status", sa.String(16)), sa.Column("oid", sa.BigInteger), sa.Column("filled_sz", sa.Double),
        sa.Column("avg_px", sa.Double), sa.Column("error", sa.Text), sa.Column("created_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
        sa.PrimaryKeyConstraint("cloid", name="pk_orders"),
    )
    op.create_index("ix_orders_rebalance_id", "orders", ["rebalance_id"])
    op.create_index("ix_orders_oid", "orders", ["oid"])
    op.create_table(
        "fills",
        sa.Column("tid", sa.BigInteger, autoincrement=False), sa.Column("oid", sa.BigInteger),
        sa.Column("cloid", sa.String(64)), sa.Column("rebalance_id", sa.String(128)), sa.Column("coin", sa.String(32)),
        sa.Column("side", sa.String(8)), sa.Column("px", sa.Double), sa.Column("sz", sa.Double),
        sa.Column("notional_usd", sa.Double), sa.Column("fee_usd", sa.Double), sa.Column("fee_token", sa.String(16)),
        sa.Column("liquidity", sa.String(8)), sa.Column("closed_pnl_usd", sa.Double), sa.Column("dir", sa.String(32)),
        sa.Column("time", sa.DateTime), sa.Column("hash", sa.String(80)), sa.Column("ingested_at", sa.DateTime),
        sa.PrimaryKeyConstraint("tid", name="pk_fills"),
    )
    op.create_index("ix_fills_rebalance_id", "fills", ["rebalance_id"])
    op.create_index("ix_fills_time", "fills", ["time"])
    op.create_table(
        "positions",
        sa.Column("ts", sa.DateTime), sa.Column("source", sa.String(32)), sa.Column("coin", sa.String(32)),
        sa.Column("rebalance_id", sa.String(128)), sa.Column("szi", sa.Double), sa.Column("entry_px", sa.Double),
        sa.Column("position_value_usd", sa.Double), sa.Column("unrealized_pnl_usd", sa.Double),
        sa.Column("weight", sa.Double), sa.Column("target_weight", sa.Double),
        sa.PrimaryKeyConstraint("ts", "source", "coin", name="pk_positions"),
    )
    op.create_table(
        "equity",
        sa.Column("ts", sa.DateTime), sa.Column("source", sa.String(32)), sa.Column("rebalance_id", sa.String(128)),
        sa.Column("account_value_usd", sa.Double), sa.Column("total_ntl_pos_usd", sa.Double),
        sa.Column("gross_exposure_usd", sa.Double), sa.Column("net_exposure_usd", sa.Double),
        sa.Column("n_positions", sa.Integer),
        sa.PrimaryKeyConstraint("ts", "source", name="pk_equity"),
    )
    op.create_table(
        "high_water_mark",
        sa.Column("name", sa.String(32)), sa.Column("hwm_usd", sa.Double, nullable=False),
        sa.Column("hwm_ts", sa.DateTime, nullable=False), sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_high_water_mark"),
    )
    op.create_table(
        "halt_state",
        sa.Column("id", sa.Integer, autoincrement=True), sa.Column("changed_at", sa.DateTime, nullable=False),
        sa.Column("halted", sa.Boolean, nullable=False), sa.Column("reason", sa.Text, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_halt_state"),
    )
    op.create_table(
        "alerts_state",
        sa.Column("key", sa.String(200)), sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False), sa.Column("raised_at", sa.DateTime),
        sa.Column("last_sent_at", sa.DateTime), sa.Column("cleared_at", sa.DateTime),
        sa.Column("sent_count", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("key", name="pk_alerts_state"),
    )
    op.create_table(
        "alerts_sent",
        sa.Column("id", sa.Integer, autoincrement=True), sa.Column("sent_at", sa.DateTime, nullable=False),
        sa.Column("key", sa.String(200), nullable=False), sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False), sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False), sa.Column("status", sa.String(16), nullable=False),
        sa.Column("destinations", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts_sent"),
    )
    op.create_index("ix_alerts_sent_kind_sent_at", "alerts_sent", ["kind", "sent_at"])


def downgrade() -> None:
    for table in ("alerts_sent", "alerts_state", "halt_state", "high_water_mark", "equity", "positions", "fills",
                  "orders", "rebalances"):
        op.drop_table(table)
