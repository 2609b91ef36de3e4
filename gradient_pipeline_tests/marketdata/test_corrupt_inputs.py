"""`gradient-pipeline backfill` over a DuckDB that already holds the clean window, with one input corrupted at a time.

Each case copies a few real files from the shared recording, corrupts one, runs the real command (the CLI's `main`
in-process, Dagster run recorded in a temporary DAGSTER_HOME) and asserts: the exit code, the message printed
(coin, time or field, and rule), and that every stored table is byte-identical before and after (row counts and a
hash of the ordered content).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from gradient_pipeline.cli import main
from gradient_pipeline.marketdata import freqtrade as ft
from gradient_pipeline_tests.marketdata.conftest import write_candle_file

COINS = ("BTC", "ETH", "AI")
START, END = "2025-04-01", "2025-04-03"  # 12 windows, 2025-04-01 00:00 … 2025-04-02 20:00
BAD_TS = pd.Timestamp("2025-04-02 08:00")
WINDOW = "2025-04-01-00:00 … 2025-04-02-20:00"


def run_cli(args: list[str], home: Path, db: Path, config: dict) -> tuple[int, str]:
    """Run `gradient-pipeline <args>` in-process with its own DAGSTER_HOME, DuckDB file and config; (code, stdout+err)."""
    cfg = home.parent / f"{home.name}.json"
    cfg.write_text(json.dumps(config))
    env = {"DAGSTER_HOME": str(home), "GRADIENT_DUCKDB_PATH": str(db), "GRADIENT_CONFIG": str(cfg)}
    saved = {k: os.environ.get(k) for k in env}
    out = io.StringIO()
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(args)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, out.getvalue()


def snapshot(db: Path) -> dict[str, tuple[int, str]]:
    """Every table: (row count, sha256 of its rows in a canonical order)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        out = {}
        for t in names:
            df = con.execute(f"SELECT * FROM {t} ORDER BY ALL").df()
            out[t] = (len(df), hashlib.sha256(df.to_csv(index=False).encode()).hexdigest())
        return out
    finally:
        con.close()


def _copy_coins(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for coin in COINS:
        for p in (ft.candle_path(src, coin), ft.funding_path(src, coin)):
            shutil.copyfile(p, dst / p.name)
    return dst


@pytest.fixture(scope="module")
def clean(tmp_path_factory, freqtrade_dir):
    """A freqtrade directory (3 real coins) and a DuckDB file holding the clean backfill of the window."""
    root = tmp_path_factory.mktemp("clean")
    src = _copy_coins(freqtrade_dir, root / "futures")
    db = root / "clean.duckdb"
    code, out = run_cli(["backfill", "--start", START, "--end", END, "--source", "freqtrade", "--path", str(src)],
                        root / "home", db, {})
    assert code == 0, out
    return src, db, out


@pytest.fixture
def case(clean, tmp_path):
    """(directory to corrupt, DuckDB copy holding the clean window, run(args) -> (code, output))."""
    src, db, _ = clean
    d = _copy_coins(src, tmp_path / "futures")
    work_db = tmp_path / "t.duckdb"
    shutil.copyfile(db, work_db)

    def run(*extra: str) -> tuple[int, str]:
        return run_cli(["backfill", "--start", START, "--end", END, "--source", "freqtrade", "--path", str(d), *extra],
                       tmp_path / "home", work_db, {})

    return d, work_db, run


def test_clean_backfill_passes_and_repeating_it_changes_nothing(clean, case):
    _, _, first_output = clean
    assert "success" in first_output and "FAILED" not in first_output
    for check in ("candles_inputs_complete", "funding_inputs_complete", "candles_fresh", "candles_no_gaps"):
        assert f"check {check}: passed" in first_output
    _, db, run = case
    before = snapshot(db)
    assert before["candles"][0] == 3 * 12 and before["funding"][0] == 3 * 48 and before["universe"][0] == 3 * 12
    code, out = run()
    assert code == 0, out
    assert snapshot(db) == before  # same input, same bytes (ingested_at kept for unchanged rows)


def test_missing_funding_file_keeps_the_rows_and_fails(case):
    d, db, run = case
    before = snapshot(db)
    ft.funding_path(d, "ETH").unlink()
    code, out = run()
    assert code == 1, out
    assert (f"check funding_inputs_complete: FAILED: funding: no input at source freqtrade for 1 coin(s) with stored "
            f"rows in window {WINDOW}: ETH (48 stored rows kept)") in out
    assert "funding: MISSING input, stored rows kept: ETH (48 rows)" in out
    assert snapshot(db) == before


def test_missing_candle_file_keeps_the_rows_and_fails(case):
    d, db, run = case
    before = snapshot(db)
    ft.candle_path(d, "ETH").unlink()
    code, out = run()
    assert code == 1, out
    assert (f"check candles_inputs_complete: FAILED: candles: no input at source freqtrade for 1 coin(s) with stored "
            f"rows in window {WINDOW}: ETH (12 stored rows kept)") in out
    assert "not run (an upstream step or blocking check failed): universe" in out
    assert snapshot(db) == before


def _edit_eth_bar(d: Path, edit) -> dict:
    eth = ft.read_candle_file(d, "ETH")
    i = int(eth.index[eth["ts"] == BAD_TS][0])
    original = eth.loc[i].to_dict()
    eth = edit(eth, i)
    write_candle_file(d, "ETH", eth)
    return original


def test_one_missing_4h_row_is_refused_unless_pruned_and_then_the_gap_fails(case):
    d, db, run = case
    before = snapshot(db)
    _edit_eth_bar(d, lambda f, i: f.drop(index=i))
    code, out = run()
    assert code == 1, out
    assert (f"step candles failed: Failure: candles: the source has fewer rows than stored for window {WINDOW}: "
            "1 stored row(s) would be deleted (ETH 1); rule 'source keeps every stored row' failed") in out
    assert "  - coin ETH at 2025-04-02 08:00:00" in out
    assert snapshot(db) == before
    # Asked for explicitly, the row goes; the gap check then names coin and time, and the command still fails.
    code, out = run("--prune")
    assert code == 1, out
    assert ("check candles_no_gaps: FAILED: candles_no_gaps: 1 gap(s) in window "
            f"{WINDOW}: coin ETH missing 1 bar(s) at 2025-04-02 08:00:00") in out
    after = snapshot(db)
    assert after["candles"][0] == before["candles"][0] - 1


def test_high_below_low_on_a_real_bar_is_refused_not_narrowed(case):
    d, db, run = case
    before = snapshot(db)
    bar = _edit_eth_bar(d, lambda f, i: f.assign(high=f["high"].where(f.index != i, f.at[i, "low"]),
                                                 low=f["low"].where(f.index != i, f.at[i, "high"])))
    code, out = run()
    assert code == 1, out
    assert "step candles failed: Failure: candles: 3 validation failure(s); nothing was written:\n" in out
    assert (f"  - coin ETH at 2025-04-02 08:00:00: rule 'high >= low' failed (open={bar['open']:.10g}, "
            f"high={bar['low']:.10g}, low={bar['high']:.10g}, close={bar['close']:.10g})") in out
    assert "rule 'high >= max(open, close)' failed" in out and "rule 'low <= min(open, close)' failed" in out
    assert snapshot(db) == before


def test_funding_rate_of_5_is_refused(case):
    d, db, run = case
    before = snapshot(db)
    path = ft.funding_path(d, "ETH")
    f = feather.read_table(path).to_pandas()
    hit = f["date"].dt.tz_convert("UTC").dt.floor("h") == pd.Timestamp("2025-04-02 09:00", tz="UTC")
    assert hit.sum() == 1
    f.loc[hit, "open"] = 5.0
    feather.write_feather(pa.Table.from_pandas(f, preserve_index=False), path)
    code, out = run()
    assert code == 1, out
    assert ("step funding failed: Failure: funding: 1 implausible value(s); nothing was written:\n"
            "  - coin ETH at 2025-04-02 09:00:00: rule '|rate| <= 0.04 per hour (0.04 per 1h record)' failed "
            "(rate=5)") in out
    # the universe is built from candles alone (funding is off the window run's critical path), so only funding
    # is refused — the universe still runs; the stored funding (and everything else) is untouched
    assert "step universe failed" not in out and "failed): universe" not in out, out
    assert snapshot(db) == before


def test_a_1000x_price_spike_is_refused(case):
    d, db, run = case
    before = snapshot(db)

    def spike(f, i):
        for c in ("open", "high", "low", "close"):
            f.loc[i, c] *= 1000
        return f

    bar = _edit_eth_bar(d, spike)
    code, out = run()
    assert code == 1, out
    assert "step candles failed: Failure: candles: 2 implausible value(s); nothing was written:" in out
    assert (f"  - coin ETH at 2025-04-02 08:00:00: rule 'price within 20x of the previous close' failed "
            f"(previous close=") in out
    assert f"high={bar['high'] * 1000:.10g}" in out
    assert "  - coin ETH at 2025-04-02 12:00:00: rule 'price within 20x of the previous close' failed" in out
    assert snapshot(db) == before


# ---- hyperliquid source: a response without markPx --------------------------------------------------------------


class _CorruptingProxy:
    """HTTP proxy to a real local exchange; with `drop` = (coin, field) it deletes that field from the coin's asset
    context in `metaAndAssetCtxs` responses (a venue response that changed shape). Everything else passes through."""

    def __init__(self, upstream: str):
        self.upstream, self.drop = upstream, None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                req = urllib.request.Request(proxy.upstream + self.path, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=30) as resp:
                    status, payload = resp.status, resp.read()
                if proxy.drop and json.loads(body or b"{}").get("type") == "metaAndAssetCtxs":
                    meta, ctxs = json.loads(payload)
                    coin, field = proxy.drop
                    i = [u["name"] for u in meta["universe"]].index(coin)
                    del ctxs[i][field]
                    payload = json.dumps([meta, ctxs]).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_missing_mark_px_fails_naming_coin_and_field(local_exchange_factory, tmp_path):
    ex = local_exchange_factory(start_time="2025-04-10 10:30", coins=list(COINS))
    proxy = _CorruptingProxy(ex.base_url)
    try:
        config = {"mode": "paper", "exchange_base_url": proxy.url, "data": {"source": "hyperliquid"}}
        db = tmp_path / "hl.duckdb"
        args = ["backfill", "--start", "2025-04-09", "--source", "hyperliquid"]
        code, out = run_cli(args, tmp_path / "home", db, config)
        assert code == 0, out
        before = snapshot(db)
        assert before["universe"][0] == 3 * 8
        proxy.drop = ("ETH", "markPx")
        code, out = run_cli(args, tmp_path / "home", db, config)
    finally:
        proxy.close()
    assert code == 1, out
    assert ("step candles failed: Failure: candles from source hyperliquid: metaAndAssetCtxs ctx[1] (coin ETH): "
            "field 'markPx' is missing") in out
    assert "Error occurred while executing" not in out
    assert snapshot(db) == before
