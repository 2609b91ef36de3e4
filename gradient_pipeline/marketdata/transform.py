"""Pure steps between a source's raw frames and the validated table rows (no I/O, no Dagster)."""

from __future__ import annotations

import pandas as pd

from gradient_pipeline.marketdata.schemas import OHLC_REPAIR_MAX_FRACTION, repair_ohlc
from gradient_pipeline.marketdata.tables import CANDLES_COLUMNS, FUNDING_COLUMNS, REPAIRS_COLUMNS, UNIVERSE_COLUMNS
from gradient_pipeline.timegrid import BAR_HOURS

DAY_BARS = 24 // BAR_HOURS


def prepare_candles(
    raw: pd.DataFrame,
    source: str,
    ingested_at: pd.Timestamp,
    max_repair_fraction: float = OHLC_REPAIR_MAX_FRACTION,
    dropped: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Raw OHLCV -> `candles` rows: notional, source, ingested_at, and the OHLC repair policy (docs/TABLES.md).

    Returns the rows and a report `{"ohlc_repaired_rows": n, "ohlc_repaired_coins": {coin: n}, "repairs": frame}`;
    `repairs` lists every repaired row, and every row in `dropped` (the source's pre-first-trade rows), in the
    columns of table `market_data_repairs`.
    """
    frame = raw.copy()
    frame["ohlc_repaired"] = False
    frame, repaired = repair_ohlc(frame, max_repair_fraction)
    frame["notional_usd"] = frame["volume"] * frame["close"]
    frame["source"] = source
    frame["ingested_at"] = pd.Timestamp(ingested_at).as_unit("ns")
    frame["ingested_at"] = frame["ingested_at"].astype("datetime64[ns]")
    counts = frame.loc[repaired, "coin"].value_counts().sort_index()
    report = {
        "ohlc_repaired_rows": int(repaired.sum()),
        "ohlc_repaired_coins": {k: int(v) for k, v in counts.items()},
        "repairs": repair_records(raw[repaired.to_numpy()], frame[repaired], dropped, source),
    }
    return frame[CANDLES_COLUMNS].reset_index(drop=True), report


def repair_records(before: pd.DataFrame, after: pd.DataFrame, dropped: pd.DataFrame | None, source: str) -> pd.DataFrame:
    """Rows of `market_data_repairs`: one per repaired candle (high/low before and after) and per dropped row."""
    parts = []
    if len(before):
        widened = []
        for b_hi, a_hi, b_lo, a_lo in zip(before["high"], after["high"], before["low"], after["low"]):
            what = ([f"high raised {b_hi:.10g} -> {a_hi:.10g}"] if a_hi != b_hi else []) + (
                [f"low lowered {b_lo:.10g} -> {a_lo:.10g}"] if a_lo != b_lo else [])
            widened.append("; ".join(what) + " to cover open/close")
        parts.append(pd.DataFrame({
            "coin": before["coin"].to_numpy(), "ts": before["ts"].to_numpy(), "action": "repaired",
            "rule": "ohlc_widened_to_cover_open_close", "open": before["open"].to_numpy(),
            "high_before": before["high"].to_numpy(), "low_before": before["low"].to_numpy(),
            "close": before["close"].to_numpy(), "volume": before["volume"].to_numpy(),
            "high_after": after["high"].to_numpy(), "low_after": after["low"].to_numpy(), "detail": widened,
        }))
    if dropped is not None and len(dropped):
        defect = (dropped["high"] < dropped[["open", "close"]].max(axis=1)) | (
            dropped["low"] > dropped[["open", "close"]].min(axis=1))
        parts.append(pd.DataFrame({
            "coin": dropped["coin"].to_numpy(), "ts": dropped["ts"].to_numpy(), "action": "dropped",
            "rule": "before_first_trade", "open": dropped["open"].to_numpy(),
            "high_before": dropped["high"].to_numpy(), "low_before": dropped["low"].to_numpy(),
            "close": dropped["close"].to_numpy(), "volume": dropped["volume"].to_numpy(),
            "high_after": float("nan"), "low_after": float("nan"),
            "detail": defect.map({True: "exchange back-fill before the first traded candle; high/low disagree "
                                        "with open/close",
                                  False: "exchange back-fill before the first traded candle"}).to_numpy(),
        }))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=REPAIRS_COLUMNS)
    out["table_name"] = "candles"
    out["source"] = source
    out = out[REPAIRS_COLUMNS].astype({c: float for c in ("open", "high_before", "low_before", "close", "volume",
                                                           "high_after", "low_after")})
    out["ts"] = pd.to_datetime(out["ts"]).astype("datetime64[ns]")
    return out.sort_values(["coin", "ts"], kind="stable").reset_index(drop=True)


def prepare_funding(raw: pd.DataFrame) -> pd.DataFrame:
    frame = raw.copy()
    if "premium" not in frame:
        frame["premium"] = float("nan")
    return frame[FUNDING_COLUMNS].astype({"rate": float, "premium": float}).reset_index(drop=True)


def build_universe(
    windows: pd.DatetimeIndex,
    candles: pd.DataFrame,
    funding: pd.DataFrame,
    coin_info: pd.DataFrame,
    delisted: pd.DataFrame,
    live: pd.DataFrame | None = None,
    live_window: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """One row per (window, coin) known in that window.

    * listed (`is_delisted` false): the coin has a stored candle in the window;
    * delisted: pairs in `delisted` (`ts, coin`) – the source says the coin stopped trading;
    * `day_ntl_vlm`: Σ notional of the coin's candles opening in (t − 24h, t], i.e. the 24h ending at the window's
      close (needs `candles` from t − 20h on); `funding`: the last hourly rate inside the window;
    * static columns from `coin_info`; with `live` (asset contexts fetched now) for `live_window`, that window takes
      the exchange's own delisted flag, 24h volume, mark/oracle price, open interest and funding.
    """
    lo, hi = windows.min(), windows.max()
    listed = candles.loc[(candles["ts"] >= lo) & (candles["ts"] <= hi), ["ts", "coin"]].copy()
    listed["is_delisted"] = False
    if len(candles):
        c = candles.sort_values(["coin", "ts"])
        vol = (
            c.set_index("ts").groupby("coin")["notional_usd"].rolling("24h").sum().rename("day_ntl_vlm").reset_index()
        )
        listed = listed.merge(vol, on=["coin", "ts"], how="left")
    else:
        listed["day_ntl_vlm"] = pd.Series(dtype=float)
    gone = delisted.loc[delisted["ts"].isin(windows), ["ts", "coin"]].copy()
    gone = gone.merge(listed[["ts", "coin"]], on=["ts", "coin"], how="left", indicator=True)
    gone = gone[gone["_merge"] == "left_only"].drop(columns="_merge")
    gone["is_delisted"] = True
    gone["day_ntl_vlm"] = float("nan")
    rows = pd.concat([x for x in (listed, gone) if len(x)], ignore_index=True) if len(gone) else listed

    if len(funding):
        f = funding.assign(window=funding["ts"].dt.floor(f"{BAR_HOURS}h")).sort_values("ts")
        last = f.groupby(["window", "coin"], as_index=False)["rate"].last()
        last = last.rename(columns={"window": "ts", "rate": "funding"})
        rows = rows.merge(last, on=["ts", "coin"], how="left")
    else:
        rows["funding"] = float("nan")
    rows["mark_px"] = float("nan")
    rows["oracle_px"] = float("nan")
    rows["open_interest"] = float("nan")
    rows = rows.merge(coin_info, on="coin", how="left")

    if live is not None and live_window is not None:
        sel = rows["ts"] == live_window
        ctx = live.set_index("coin")
        known = rows.loc[sel, "coin"]
        for col in ("day_ntl_vlm", "mark_px", "oracle_px", "open_interest", "funding"):
            rows.loc[sel, col] = known.map(ctx[col]).astype(float).fillna(rows.loc[sel, col]).to_numpy()
        rows.loc[sel, "is_delisted"] = known.map(ctx["is_delisted"]).fillna(False).astype(bool).to_numpy()

    out = rows.reindex(columns=UNIVERSE_COLUMNS)
    out["ts"] = out["ts"].astype("datetime64[ns]")
    out["coin"] = out["coin"].astype(object)
    for c in ("asset_index", "sz_decimals", "max_leverage"):
        out[c] = pd.array(out[c], dtype="Int64")
    out["only_isolated"] = pd.array(out["only_isolated"], dtype="boolean")
    out["is_delisted"] = out["is_delisted"].astype(bool)
    for c in ("day_ntl_vlm", "mark_px", "oracle_px", "open_interest", "funding"):
        out[c] = out[c].astype(float)
    return out.sort_values(["ts", "coin"]).reset_index(drop=True)
