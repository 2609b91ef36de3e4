"""Pure steps between a source's raw frames and the validated table rows (no I/O, no Dagster)."""

from __future__ import annotations

import pandas as pd

from gradient_pipeline.marketdata.schemas import repair_ohlc
from gradient_pipeline.marketdata.tables import CANDLES_COLUMNS, FUNDING_COLUMNS, UNIVERSE_COLUMNS
from gradient_pipeline.timegrid import BAR_HOURS

DAY_BARS = 24 // BAR_HOURS


def prepare_candles(raw: pd.DataFrame, source: str, ingested_at: pd.Timestamp) -> tuple[pd.DataFrame, dict]:
    """Raw OHLCV -> `candles` rows: notional, source, ingested_at, and the OHLC repair policy (docs/TABLES.md).

    Returns the rows and a report `{"ohlc_repaired_rows": n, "ohlc_repaired_coins": {coin: n}}`.
    """
    frame = raw.copy()
    frame["ohlc_repaired"] = False
    frame, repaired = repair_ohlc(frame)
    frame["notional_usd"] = frame["volume"] * frame["close"]
    frame["source"] = source
    frame["ingested_at"] = pd.Timestamp(ingested_at).as_unit("ns")
    frame["ingested_at"] = frame["ingested_at"].astype("datetime64[ns]")
    counts = frame.loc[repaired, "coin"].value_counts().sort_index()
    report = {"ohlc_repaired_rows": int(repaired.sum()), "ohlc_repaired_coins": {k: int(v) for k, v in counts.items()}}
    return frame[CANDLES_COLUMNS].reset_index(drop=True), report


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
