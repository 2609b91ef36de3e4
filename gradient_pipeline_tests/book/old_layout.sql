-- The operational tables as DuckDB held them before the operations book (commit 6d18a46), for the migration test.

CREATE TABLE IF NOT EXISTS rebalances (
    rebalance_id VARCHAR PRIMARY KEY,
    window_ts TIMESTAMP,
    rebalance_time TIMESTAMP,
    mode VARCHAR,
    network VARCHAR,
    account VARCHAR,
    status VARCHAR,
    reason VARCHAR,
    capital_usd DOUBLE,
    attempts INTEGER,
    n_orders INTEGER,
    n_fills INTEGER,
    dagster_run_id VARCHAR,
    started_at TIMESTAMP,
    finished_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS orders (
    cloid VARCHAR PRIMARY KEY,
    rebalance_id VARCHAR,
    coin VARCHAR,
    leg VARCHAR,
    attempt INTEGER,
    side VARCHAR,
    sz DOUBLE,
    limit_px DOUBLE,
    mid_px DOUBLE,
    reduce_only BOOLEAN,
    tif VARCHAR,
    notional_usd DOUBLE,
    status VARCHAR,
    oid BIGINT,
    filled_sz DOUBLE,
    avg_px DOUBLE,
    error VARCHAR,
    created_at TIMESTAMP,
    updated_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS fills (
    tid BIGINT PRIMARY KEY,
    oid BIGINT,
    cloid VARCHAR,
    rebalance_id VARCHAR,
    coin VARCHAR,
    side VARCHAR,
    px DOUBLE,
    sz DOUBLE,
    notional_usd DOUBLE,
    fee_usd DOUBLE,
    fee_token VARCHAR,
    liquidity VARCHAR,
    closed_pnl_usd DOUBLE,
    dir VARCHAR,
    time TIMESTAMP,
    hash VARCHAR,
    ingested_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS positions (
    ts TIMESTAMP,
    source VARCHAR,
    rebalance_id VARCHAR,
    coin VARCHAR,
    szi DOUBLE,
    entry_px DOUBLE,
    position_value_usd DOUBLE,
    unrealized_pnl_usd DOUBLE,
    weight DOUBLE,
    target_weight DOUBLE,
    PRIMARY KEY (ts, source, coin)
);
CREATE TABLE IF NOT EXISTS equity (
    ts TIMESTAMP,
    source VARCHAR,
    rebalance_id VARCHAR,
    account_value_usd DOUBLE,
    total_ntl_pos_usd DOUBLE,
    gross_exposure_usd DOUBLE,
    net_exposure_usd DOUBLE,
    n_positions INTEGER,
    PRIMARY KEY (ts, source)
);

CREATE TABLE IF NOT EXISTS halt_state (
    changed_at TIMESTAMP NOT NULL,
    halted     BOOLEAN   NOT NULL,
    reason     VARCHAR   NOT NULL,
    source     VARCHAR   NOT NULL
);

CREATE TABLE IF NOT EXISTS high_water_mark (
    name       VARCHAR PRIMARY KEY,
    hwm_usd    DOUBLE NOT NULL,
    hwm_ts     TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    reason     VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS alerts_state (
    key          VARCHAR PRIMARY KEY,
    kind         VARCHAR NOT NULL,
    active       BOOLEAN NOT NULL,
    raised_at    TIMESTAMP,
    last_sent_at TIMESTAMP,
    cleared_at   TIMESTAMP,
    sent_count   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS alerts_sent (
    sent_at      TIMESTAMP NOT NULL,
    key          VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,
    severity     VARCHAR NOT NULL,
    title        VARCHAR NOT NULL,
    body         VARCHAR NOT NULL,
    status       VARCHAR NOT NULL,
    destinations INTEGER NOT NULL
);
