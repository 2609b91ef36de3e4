"""`gradient-pipeline drawdown-drill`: rehearse the drawdown stop offline, end to end, before trusting it.

Nothing leaves 127.0.0.1. The drill:
1. starts the local exchange on the bundled real-data extract, funds a paper account (keys generated in this
   process, never shown) and starts a local webhook that prints every alert it receives (apprise ``json://``;
   your own `GRADIENT_ALERT_URLS`, if set, receive them too — a way to check your Telegram/e-mail routing);
2. opens a market-neutral book with IOC orders through the SDK;
3. runs the real Dagster pieces in the project instance (DAGSTER_HOME): `monitor_job` (equity snapshot),
   then injects a crash at the exchange in two steps (longs −60 %: past the warning level; shorts +70 %: past
   the stop level), snapshots after each and lets `drawdown_sensor` decide: it launches `drawdown_warning_job`,
   then `emergency_stop_job`, exactly as the daemon would;
4. shows the flatten, the alerts, the halt (`status`) and that a rebalance is refused while halted; a last
   `monitor_job` puts the flat book on the dashboard assets (live_positions and live_exposure show 0).
The drill's ledger and configuration live in `<workdir>` (default `.drill`), never in your live DuckDB file.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from gradient_pipeline import runtags

DRILL_START = "2025-04-20 00:05"
LONGS = {"BTC": 700.0, "SOL": 600.0, "AVAX": 500.0}
SHORTS = {"ETH": -700.0, "DOGE": -600.0, "ADA": -500.0}


def _say(msg: str = "") -> None:
    print(msg, flush=True)


class _Receiver:
    """A local JSON webhook: prints each alert as it arrives and keeps it."""

    def __init__(self):
        self.received: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                outer.received.append(body)
                _say(f"\n>>> ALERT received by the local webhook [{body.get('type')}]\n    title: {body.get('title')}")
                for line in str(body.get("message", "")).splitlines():
                    _say(f"    | {line}")
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/gradient-drill"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


DRILL_HEARTBEAT = "drawdown_drill_passed"  # `preflight` asks for a drill passed in the last 30 days


def run_drill(workdir: str = ".drill", capital: float = 10_000.0) -> int:
    """Run the drill (see the module docstring); when it passes, record that in this host's operations book (the
    configured one, not the drill's own) as the `drawdown_drill_passed` heartbeat for `preflight`."""
    code = _run_drill(workdir, capital)
    if code == 0:
        try:
            from gradient_pipeline import book
            from gradient_pipeline.book.heartbeats import beat

            with book.connect() as conn:
                beat(conn, DRILL_HEARTBEAT, "drill ended flat and halted; a rebalance while halted was refused")
        except Exception as err:  # noqa: BLE001 - the drill passed; only its record for preflight is missing
            _say(f"(drill passed, but not recorded in the operations book: {type(err).__name__}: {err})")
    return code


def _run_drill(workdir: str = ".drill", capital: float = 10_000.0) -> int:
    import dagster as dg
    import eth_account

    from gradient_pipeline.app.dagster_home import ensure_dagster_home
    from gradient_pipeline.demo_data import FUTURES_DIR
    from gradient_pipeline.venue.model import OrderRequest, client_order_id
    from gradient_pipeline.localexchange.server import run_in_background

    from gradient_pipeline.app.warmup import quiet_dagster

    quiet_dagster(0)  # Dagster's beta notices are for developers; the drill's story is the console
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # DEBUG/INFO stay in the instance
    home = ensure_dagster_home()
    work = Path(workdir).resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    master, agent = eth_account.Account.create(), eth_account.Account.create()
    coins = sorted({*LONGS, *SHORTS})
    ex = run_in_background(FUTURES_DIR, DRILL_START, coins=coins, accounts={master.address: capital},
                           agents={agent.address: master.address})
    receiver = _Receiver()
    saved_env = {k: os.environ.get(k) for k in ("GRADIENT_CONFIG", "GRADIENT_DUCKDB_PATH", "GRADIENT_ACCOUNT_ADDRESS",
                                                "GRADIENT_PRIVATE_KEY", "GRADIENT_ALERT_URLS", "GRADIENT_BOOK_URL")}
    try:
        db = work / "gradient_drill.duckdb"
        cfg_path = work / "gradient_drill.json"
        cfg_path.write_text(json.dumps({"mode": "paper", "capital_usd": capital, "exchange_base_url": ex.base_url,
                                        "duckdb_path": str(db), "alerts": {"min_interval_s": 0}}, indent=2))
        urls = " ".join(u for u in (receiver.url, os.environ.get("GRADIENT_ALERT_URLS", "")) if u)
        os.environ.update({"GRADIENT_CONFIG": str(cfg_path), "GRADIENT_DUCKDB_PATH": str(db),
                           "GRADIENT_ACCOUNT_ADDRESS": master.address, "GRADIENT_PRIVATE_KEY": agent.key.hex(),
                           "GRADIENT_ALERT_URLS": urls})
        os.environ.pop("GRADIENT_BOOK_URL", None)  # the drill's halt and ledger go to its own book, never the live one
        del agent

        from gradient_pipeline.config import load_config
        from gradient_pipeline.defs.monitoring.sensors import drawdown_decision
        from gradient_pipeline.defs.resources import GradientResource
        from gradient_pipeline.definitions import defs
        from gradient_pipeline.monitoring.account import open_trading
        from gradient_pipeline.monitoring.status import gather_status, render

        cfg = load_config(cfg_path)
        gradient = GradientResource(config_path=str(cfg_path), duckdb_path=str(db))
        trading = open_trading(cfg, signer=True)
        _say(f"drill: local exchange {ex.base_url} (replay {DRILL_START}), paper account {master.address}, "
             f"${capital:,.0f}; DAGSTER_HOME={home}")

        mids, instruments = trading.all_mids(), trading.instruments()
        orders = []
        for coin, usd in sorted({**LONGS, **SHORTS}.items()):
            buy, spec = usd > 0, instruments[coin]
            orders.append(OrderRequest(coin, buy, spec.round_size(abs(usd) / mids[coin]),
                                       spec.round_price(mids[coin] * (1.01 if buy else 0.99), buy), False,
                                       client_order_id("drill", coin, "open", 0)))
        outcomes = trading.bulk_orders(orders)
        _say("opened: " + ", ".join(f"{o.coin} {'+' if o.is_buy else '-'}{r.filled_sz:g}" for o, r in zip(orders, outcomes)))

        instance = dg.DagsterInstance.get()

        def run(name: str, run_config: dict | None = None, tags: dict | None = None):
            job = defs.resolve_job_def(name)
            res = job.execute_in_process(run_config={**(run_config or {}), **quiet}, instance=instance,
                                         raise_on_error=False,
                                         tags={**(tags or {}), runtags.DRILL: "true"})
            _say(f"  run {name} {res.run_id[:8]}: {'success' if res.success else 'FAILED'}")
            return res

        def snapshot_and_sense(label: str) -> None:
            res = run("monitor_job")
            md = res.asset_materializations_for_node("equity_snapshot")[0].metadata
            _say(f"{label}: account ${md['account_value_usd'].value:,.2f}, high-water "
                 f"${md['high_water_mark_usd'].value:,.2f}, drawdown {md['drawdown_pct'].value:.2f}%")
            # evaluate the sensor tick by tick, the way the daemon does, until two ticks in a row launch nothing
            # (a stop needs risk.drawdown_stop_ticks consecutive breaching ticks)
            quiet = 0
            while quiet < 2:
                decision = drawdown_decision(gradient, instance)
                if isinstance(decision, dg.SkipReason):
                    _say(f"  drawdown_sensor tick: skip — {decision.skip_message}")
                    quiet += 1
                    continue
                quiet = 0
                _say(f"  drawdown_sensor tick: launch {decision.job_name} (run_key {decision.run_key})")
                run(decision.job_name, decision.run_config, decision.tags)

        snapshot_and_sense("before the crash")
        _say("\n*** injecting a crash at the exchange, step 1: the longs fall 60 % ***")
        for coin in LONGS:
            ex.price_shock(0.4, coin)
        snapshot_and_sense("after step 1")
        _say("\n*** step 2: the shorts squeeze +70 % ***")
        for coin in SHORTS:
            ex.price_shock(1.7, coin)
        snapshot_and_sense("after step 2")

        from gradient_pipeline.execution.runner import Rebalancer
        from gradient_pipeline.venue.registry import open_venue as trading_client

        client = trading_client(cfg)
        window = client.server_time().floor("4h") - __import__("pandas").Timedelta(hours=4)
        result = Rebalancer(cfg, client, str(db)).run(window, {"BTC": 0.1, "ETH": -0.1}, {"BTC": 1e9, "ETH": 1e9})
        _say(f"\na rebalance while halted: {result.status} — {result.reason}")
        # the dashboard assets read the book's newest snapshot: one more monitor run after the flatten, so the UI's
        # live_positions / live_exposure show the flat account (0 positions), not the pre-stop book
        res = run("monitor_job")
        pos = res.asset_materializations_for_node("live_positions")[0].metadata
        exp = res.asset_materializations_for_node("live_exposure")[0].metadata
        _say(f"dashboard after the stop: live_positions {pos['n_positions'].value} positions, live_exposure gross "
             f"${exp['gross_usd'].value:,.2f}")
        _say("\nstatus after the stop:")
        _say(render(gather_status(cfg, str(db), trading=trading)))
        _say(f"\nalerts received: {len(receiver.received)}; the drill's ledger is {db}")
        flat = not trading.account_state().positions
        return 0 if flat and result.status == "refused" else 1
    finally:
        receiver.stop()
        ex.stop()
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
