"""The market-data assets with the hyperliquid source, against the project's local exchange (real HTTP, replay clock)."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from gradient_pipeline.defs.market_data.assets import candles, funding, universe
from gradient_pipeline.defs.market_data.checks import candles_fresh, candles_no_gaps
from gradient_pipeline.marketdata import freqtrade as ft
from gradient_pipeline_tests.marketdata.conftest import read_table

COINS = ["BTC", "ETH", "AI"]
NOW = "2025-04-10 10:30"  # replay clock: the 04:00 candle is complete, the 08:00 one is forming


@pytest.fixture
def exchange_resources(local_exchange_factory, make_resources):
    ex = local_exchange_factory(start_time=NOW, coins=COINS)
    return make_resources(mode="paper", exchange_base_url=ex.base_url, data={"source": "hyperliquid"})


def test_newest_complete_window_matches_the_recorded_data(exchange_resources, freqtrade_dir):
    res = exchange_resources
    result = dg.materialize([candles, funding, universe, candles_fresh, candles_no_gaps], resources=res,
                            tags={"dagster/asset_partition_range_start": "2025-04-09-00:00",
                                  "dagster/asset_partition_range_end": "2025-04-10-04:00"})
    assert result.success
    got = read_table(res, "candles")
    assert got["ts"].max() == pd.Timestamp("2025-04-10 04:00")
    assert set(got["source"]) == {"hyperliquid"}
    want = ft.load_candles(freqtrade_dir, COINS, "2025-04-09", "2025-04-10 08:00")
    merged = want.merge(got, on=["coin", "ts"], suffixes=("_ft", ""))
    assert len(merged) == len(want) == len(got) == 3 * 8
    for col in ("open", "high", "low", "close", "volume"):
        assert merged[col].to_numpy() == pytest.approx(merged[f"{col}_ft"].to_numpy(), rel=1e-9)
    fund = read_table(res, "funding")
    assert fund["ts"].max() <= pd.Timestamp(NOW) and fund["ts"].min() == pd.Timestamp("2025-04-09 00:00")
    assert fund["premium"].notna().all()
    u = read_table(res, "universe")
    newest = u[u["ts"] == pd.Timestamp("2025-04-10 04:00")].set_index("coin")
    assert newest["mark_px"].notna().all() and newest["sz_decimals"].notna().all()  # live contexts + meta
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["candles_fresh"].passed
    assert checks["candles_fresh"].metadata["last_window_asked"].value == "2025-04-10-04:00"
    assert checks["candles_fresh"].metadata["source_newest_complete_window"].value == "2025-04-10-04:00"


def test_forming_candle_is_never_stored(exchange_resources):
    res = exchange_resources
    result = dg.materialize([candles], resources=res, partition_key="2025-04-10-08:00", raise_on_error=False)
    assert not result.success
    msg = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message
    assert "not complete at source hyperliquid" in msg
    assert read_table(res, "candles").empty
    assert dg.materialize([candles], resources=res, partition_key="2025-04-10-04:00").success
    assert set(read_table(res, "candles")["ts"]) == {pd.Timestamp("2025-04-10 04:00")}


def test_the_funding_refresh_run_catches_up_at_low_priority(exchange_resources):
    """What `rebalance_after_window` requests after the rebalance, executed: one range run of `funding_refresh_job` for every window since
    the last one with funding stored, spending the shared budget as a background client."""
    from gradient_pipeline.definitions import defs
    from gradient_pipeline.defs.execution.schedule import funding_run_request
    from gradient_pipeline.marketdata.sources import open_source

    res = exchange_resources
    cfg = res["gradient"].config
    assert open_source(cfg, background=True).market.client.limiter.capacity == int(
        cfg.rate_limit.budget_per_minute * cfg.rate_limit.background_fraction)
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization("funding", partition="2025-04-09-20:00"))
        req = funding_run_request(instance, "2025-04-10-04:00", "window-run", partitions_start="2025-01-01-00:00")
        result = defs.resolve_job_def("funding_refresh_job").execute_in_process(
            instance=instance, run_config=req.run_config, tags=req.tags, partition_key=req.partition_key,
            resources=res)
        assert result.success
        done = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("funding"),
                                  asset_partitions=["2025-04-10-00:00", "2025-04-10-04:00"]), limit=5).records
        assert {r.partition_key for r in done} == {"2025-04-10-00:00", "2025-04-10-04:00"}
    fund = read_table(res, "funding")
    assert fund["ts"].min() == pd.Timestamp("2025-04-10 00:00") and fund["ts"].max() == pd.Timestamp("2025-04-10 07:00")
    assert set(fund["coin"]) == set(COINS) and len(fund) == 3 * 8
