"""The operations book's schema: one SQLAlchemy Core `MetaData` for every operational table.

This module is the single definition of the book's tables; the Alembic migrations in `book/migrations/versions/`
create exactly this (a test compares them). Times are naive UTC (`DateTime` without time zone) like everywhere in
the project; money is USD as double precision. Columns, units and keys are documented in docs/TABLES.md
("Operations book").

Tables
- execution ledger: `rebalances`, `orders`, `fills`, `positions`, `equity`, `rebalance_targets`;
- safety state: `halt_state` (append-only history, the newest row is the state), `high_water_mark`;
- alerts: `alerts_state` (dedupe), `alerts_sent` (every attempt), `alert_deliveries` (per destination; the
  destination is identified by a hash of its URL, never the URL, which holds tokens);
- funding: `funding_payments` (the account's hourly funding, from the venue's `userFunding`);
- liveness and timing: `heartbeats` (e.g. the last drawdown evaluation, for a watchdog), `cycle_latency`.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(naming_convention={
    "pk": "pk_%(table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
})

TS = sa.DateTime  # naive UTC
USD = sa.Double

rebalances = sa.Table(
    "rebalances", metadata,
    sa.Column("rebalance_id", sa.String(128), primary_key=True),
    sa.Column("window_ts", TS),            # open time of the 4h window whose targets are traded
    sa.Column("rebalance_time", TS),       # window_ts + 4h: when the targets became valid
    sa.Column("mode", sa.String(16)),      # paper | dry_run | testnet | mainnet
    sa.Column("network", sa.String(16)),   # local | testnet | mainnet
    sa.Column("account", sa.String(64)),   # master account address (public)
    sa.Column("status", sa.String(16)),    # running | complete | partial | refused | failed
    sa.Column("reason", sa.Text),
    sa.Column("capital_usd", USD),         # account value the plan was sized from (frozen at first start)
    sa.Column("attempts", sa.Integer),
    sa.Column("n_orders", sa.Integer),
    sa.Column("n_fills", sa.Integer),
    sa.Column("dagster_run_id", sa.String(64)),
    sa.Column("started_at", TS),
    sa.Column("finished_at", TS),
)
sa.Index("ix_rebalances_started_at", rebalances.c.started_at)

orders = sa.Table(
    "orders", metadata,
    sa.Column("cloid", sa.String(64), primary_key=True),  # deterministic client order id
    sa.Column("rebalance_id", sa.String(128)),            # a rebalance or an emergency stop id
    sa.Column("coin", sa.String(32)),
    sa.Column("leg", sa.String(16)),                      # close | reduce | open
    sa.Column("attempt", sa.Integer),
    sa.Column("side", sa.String(8)),                      # buy | sell
    sa.Column("sz", sa.Double),
    sa.Column("limit_px", sa.Double),
    sa.Column("mid_px", sa.Double),
    sa.Column("reduce_only", sa.Boolean),
    sa.Column("tif", sa.String(8)),                       # Ioc | Alo | Gtc
    sa.Column("notional_usd", USD),
    sa.Column("status", sa.String(16)),
    sa.Column("oid", sa.BigInteger),                      # exchange order id
    sa.Column("filled_sz", sa.Double),
    sa.Column("avg_px", sa.Double),
    sa.Column("error", sa.Text),
    sa.Column("created_at", TS),
    sa.Column("updated_at", TS),                          # changes only when this order's row changes
)
sa.Index("ix_orders_rebalance_id", orders.c.rebalance_id)
sa.Index("ix_orders_oid", orders.c.oid)

fills = sa.Table(
    "fills", metadata,
    sa.Column("tid", sa.BigInteger, primary_key=True, autoincrement=False),  # exchange trade id
    sa.Column("oid", sa.BigInteger),
    sa.Column("cloid", sa.String(64)),
    sa.Column("rebalance_id", sa.String(128)),
    sa.Column("coin", sa.String(32)),
    sa.Column("side", sa.String(8)),
    sa.Column("px", sa.Double),
    sa.Column("sz", sa.Double),
    sa.Column("notional_usd", USD),
    sa.Column("fee_usd", USD),
    sa.Column("fee_token", sa.String(16)),
    sa.Column("liquidity", sa.String(8)),                 # maker | taker
    sa.Column("closed_pnl_usd", USD),
    sa.Column("dir", sa.String(32)),
    sa.Column("time", TS),
    sa.Column("hash", sa.String(80)),
    sa.Column("ingested_at", TS),
)
sa.Index("ix_fills_rebalance_id", fills.c.rebalance_id)
sa.Index("ix_fills_time", fills.c.time)

positions = sa.Table(
    "positions", metadata,
    sa.Column("ts", TS, primary_key=True),                # exchange clock at the snapshot
    sa.Column("source", sa.String(32), primary_key=True), # rebalance_start | rebalance_end | monitor | …
    sa.Column("coin", sa.String(32), primary_key=True),
    sa.Column("rebalance_id", sa.String(128)),
    sa.Column("szi", sa.Double),
    sa.Column("entry_px", sa.Double),
    sa.Column("position_value_usd", USD),
    sa.Column("unrealized_pnl_usd", USD),
    sa.Column("weight", sa.Double),
    sa.Column("target_weight", sa.Double),
)

equity = sa.Table(
    "equity", metadata,
    sa.Column("ts", TS, primary_key=True),
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("rebalance_id", sa.String(128)),
    sa.Column("account_value_usd", USD),
    sa.Column("total_ntl_pos_usd", USD),
    sa.Column("gross_exposure_usd", USD),
    sa.Column("net_exposure_usd", USD),
    sa.Column("n_positions", sa.Integer),
    sa.Column("recorded_at", TS),  # wall clock of the write (revision 0003): orders snapshots at one exchange time
)

high_water_mark = sa.Table(
    "high_water_mark", metadata,
    sa.Column("name", sa.String(32), primary_key=True),   # always 'account'
    sa.Column("hwm_usd", USD, nullable=False),
    sa.Column("hwm_ts", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),          # new_high | rebase: <why>
)

halt_state = sa.Table(
    "halt_state", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),  # append order (ties in changed_at)
    sa.Column("changed_at", TS, nullable=False),
    sa.Column("halted", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
)

alerts_state = sa.Table(
    "alerts_state", metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("raised_at", TS),
    sa.Column("last_sent_at", TS),
    sa.Column("cleared_at", TS),
    sa.Column("sent_count", sa.Integer, nullable=False, server_default="0"),
)

alerts_sent = sa.Table(
    "alerts_sent", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sent_at", TS, nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),   # sent | failed | rate_limited | no_destination
    sa.Column("destinations", sa.Integer, nullable=False),
)
sa.Index("ix_alerts_sent_kind_sent_at", alerts_sent.c.kind, alerts_sent.c.sent_at)

# ---------------------------------------------------------------------------------------------- revision 0002
rebalance_targets = sa.Table(
    "rebalance_targets", metadata,
    sa.Column("rebalance_id", sa.String(128), primary_key=True),
    sa.Column("coin", sa.String(32), primary_key=True),
    sa.Column("weight", sa.Double, nullable=False),        # signed target weight the rebalance traded to
)

alert_deliveries = sa.Table(
    "alert_deliveries", metadata,
    sa.Column("alert_key", sa.String(200), primary_key=True),
    sa.Column("destination_id", sa.String(16), primary_key=True),  # sha256(url)[:16]: never the URL itself
    sa.Column("status", sa.String(16), nullable=False),   # pending | sent | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", TS),                      # when a retry may go out (NULL: no retry due)
    sa.Column("last_error", sa.Text),                      # scrubbed
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)
sa.Index("ix_alert_deliveries_status_next", alert_deliveries.c.status, alert_deliveries.c.next_attempt_at)

heartbeats = sa.Table(
    "heartbeats", metadata,
    sa.Column("name", sa.String(64), primary_key=True),   # e.g. drawdown_evaluation
    sa.Column("ts", TS, nullable=False),                  # wall clock, naive UTC
    sa.Column("detail", sa.Text),
)

cycle_latency = sa.Table(
    "cycle_latency", metadata,
    sa.Column("window_ts", TS, primary_key=True),         # the 4h window the cycle traded
    sa.Column("stage", sa.String(64), primary_key=True),  # e.g. candles, target_weights, rebalance
    sa.Column("seconds", sa.Double, nullable=False),
    sa.Column("recorded_at", TS, nullable=False),
)

# ---------------------------------------------------------------------------------------------- revision 0003
funding_payments = sa.Table(
    "funding_payments", metadata,
    sa.Column("account", sa.String(64), primary_key=True),  # master account address (public), lower case
    sa.Column("coin", sa.String(32), primary_key=True),
    sa.Column("time", TS, primary_key=True),               # exchange clock of the funding interval (hourly)
    sa.Column("usdc", USD, nullable=False),                # + received, − paid (the venue's `delta.usdc`)
    sa.Column("szi", sa.Double),                           # signed position size the payment was on
    sa.Column("funding_rate", sa.Double),                  # the interval's rate (+: longs pay shorts)
    sa.Column("hash", sa.String(80)),
    sa.Column("ingested_at", TS, nullable=False),
)
sa.Index("ix_funding_payments_time", funding_payments.c.time)

OPERATIONAL_TABLES = [t.name for t in metadata.sorted_tables]
