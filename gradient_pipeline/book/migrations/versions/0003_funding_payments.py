"""The account's funding payments (`funding_payments`), ingested from the venue's `userFunding`; `equity.recorded_at`
(when a snapshot was written: several snapshots can share one exchange time — a replay clock, a stop right after a
monitor run — and the newest must win).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "funding_payments",
        sa.Column("account", sa.String(64)), sa.Column("coin", sa.String(32)), sa.Column("time", sa.DateTime),
        sa.Column("usdc", sa.Double, nullable=False), sa.Column("szi", sa.Double),
        sa.Column("funding_rate", sa.Double), sa.Column("hash", sa.String(80)),
        sa.Column("ingested_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("account", "coin", "time", name="pk_funding_payments"),
    )
    op.create_index("ix_funding_payments_time", "funding_payments", ["time"])
    op.add_column("equity", sa.Column("recorded_at", sa.DateTime))


def downgrade() -> None:
    with op.batch_alter_table("equity") as batch:
        batch.drop_column("recorded_at")
    op.drop_index("ix_funding_payments_time", table_name="funding_payments")
    op.drop_table("funding_payments")
