"""`gradient-pipeline preflight`: the go-live checklist as a command, for any mode.

Each check returns one `CheckResult` (PASS / WARN / FAIL, what was found, what to do). The command prints one line
per check and exits 0 when all pass, 1 with warnings, 2 with any failure, so it can gate a deployment script.
Nothing here sends an order; the only writes are one test message to each alert destination (skippable).

Checks, in order: configuration, mode and network, signing key is an approved agent of the account (and when the
approval expires), account abstraction mode, no builder field on orders, exchange clock vs local clock, rate-limit
headroom for the universe, alert destinations, drawdown drill passed recently, the active configuration's backtest
over the last 6 months.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
EXIT_CODES = {PASS: 0, WARN: 1, FAIL: 2}

from gradient_pipeline.app.drill import DRILL_HEARTBEAT  # recorded by a drill that ends flat and halted
DRILL_MAX_AGE = dt.timedelta(days=30)
AGENT_EXPIRY_WARN = dt.timedelta(days=14)
CLOCK_WARN_S, CLOCK_FAIL_S = 2.0, 10.0
BACKTEST_MONTHS = 6
# A 4h refresh that takes longer than this eats the latency budget (window close → first order ≤ 5 min).
REFRESH_WARN_S = 240.0


@dataclass(frozen=True)
class CheckResult:
    item: str
    status: str
    found: str
    todo: str = ""

    def line(self) -> str:
        text = f"{self.status}  {self.item}: {self.found}"
        return text + (f" → {self.todo}" if self.todo and self.status != PASS else "")


@dataclass
class PreflightContext:
    """What the checks share: the configuration and, once opened, the trading client (read-only unless a key is
    configured; the key itself is never read here beyond deriving its public address)."""

    config_path: str | None = None
    send_test_alerts: bool = True
    cfg: object | None = None
    client: object | None = None
    signer_address: str | None = None
    notes: dict = field(default_factory=dict)


def _fmt_ts(ts: dt.datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M UTC")


def check_config(ctx: PreflightContext) -> CheckResult:
    from gradient_pipeline.config import load_config

    try:
        ctx.cfg = load_config(ctx.config_path)
    except Exception as err:  # noqa: BLE001 - a config error is the finding
        return CheckResult("configuration", FAIL, str(err), "fix the named key in the configuration file")
    src = ctx.config_path or os.environ.get("GRADIENT_CONFIG") or "embedded defaults"
    return CheckResult("configuration", PASS, f"valid ({src})")


def check_mode(ctx: PreflightContext) -> CheckResult:
    cfg = ctx.cfg
    found = f"mode {cfg.mode}, network {cfg.network}, {cfg.base_url}"
    if cfg.mode == "mainnet" and not cfg.allow_mainnet:
        return CheckResult("mode and network", FAIL, found + "; allow_mainnet is false",
                           "set allow_mainnet: true only when you mean to trade real money")
    if cfg.mode == "dry_run":
        return CheckResult("mode and network", WARN, found + "; dry_run never sends an order",
                           "switch to paper/testnet/mainnet when ready")
    if cfg.network == "mainnet":
        return CheckResult("mode and network", WARN, found + " — REAL MONEY", "make sure this is intended")
    return CheckResult("mode and network", PASS, found)


def _open_client(ctx: PreflightContext):
    if ctx.client is None:
        from gradient_pipeline.venue.registry import open_venue, signer_address

        ctx.signer_address = signer_address() if ctx.cfg.sends_orders else None
        # Read-only: preflight never signs (the one factory, signer=False); the key gives its public address only.
        ctx.client = open_venue(ctx.cfg, signer=False)
    return ctx.client


def check_agent(ctx: PreflightContext) -> CheckResult:
    item = "signing key is an approved agent"
    if not ctx.cfg.sends_orders:
        return CheckResult(item, PASS, f"{ctx.cfg.mode} signs nothing")
    try:
        client = _open_client(ctx)
    except Exception as err:  # noqa: BLE001
        return CheckResult(item, FAIL, f"cannot open the account: {err}",
                           "set GRADIENT_PRIVATE_KEY and GRADIENT_ACCOUNT_ADDRESS (environment only)")
    signer, master = ctx.signer_address, client.account_address
    if signer is not None and signer.lower() == master.lower():
        return CheckResult(item, WARN, f"the key is the master account {master} itself",
                           "trade with an API wallet approved by the master (app.hyperliquid.xyz → API)")
    try:
        agents = client.approved_agents()
    except Exception as err:  # noqa: BLE001
        return CheckResult(item, FAIL, f"could not read the approved agents of {master}: {err}",
                           "check the exchange URL and the account address")
    match = next((a for a in agents if str(a.get("address", "")).lower() == str(signer).lower()), None)
    if match is None:
        return CheckResult(item, FAIL, f"agent {signer} is NOT approved by account {master}",
                           "approve this API wallet from the master account, or set the key of an approved one")
    until = match.get("validUntil")
    name = match.get("name") or "unnamed"
    if until:
        expiry = dt.datetime.fromtimestamp(int(until) / 1000, dt.UTC).replace(tzinfo=None)
        left = expiry - dt.datetime.now(dt.UTC).replace(tzinfo=None)
        if left <= dt.timedelta(0):
            return CheckResult(item, FAIL, f"agent {signer} ({name}) expired {_fmt_ts(expiry)}",
                               "approve a new API wallet")
        if left < AGENT_EXPIRY_WARN:
            return CheckResult(item, WARN, f"agent {signer} ({name}) expires {_fmt_ts(expiry)}",
                               "renew the approval before it lapses")
        return CheckResult(item, PASS, f"agent {signer} ({name}) approved until {_fmt_ts(expiry)}")
    return CheckResult(item, PASS, f"agent {signer} ({name}) approved, no expiry")


def check_abstraction(ctx: PreflightContext) -> CheckResult:
    item = "account mode"
    try:
        client = _open_client(ctx)
        mode = client.account_mode(refresh=True)
        equity = client.account_equity()
    except Exception as err:  # noqa: BLE001
        return CheckResult(item, FAIL, f"cannot read the account: {err}", "check the exchange URL and the address")
    found = f"{mode}; equity ${equity.equity:,.2f} (read the way this mode keeps it)"
    if not equity.equity > 0:
        return CheckResult(item, FAIL, found, "fund the account before trading")
    return CheckResult(item, PASS, found)


def check_builder(ctx: PreflightContext) -> CheckResult:
    """Orders must carry no builder field: an unapproved builder is refused by the venue and an approved one is a
    fee on every trade. The adapter is the only code that builds order actions."""
    import inspect

    from gradient_pipeline.exchange.hyperliquid import trading

    source = inspect.getsource(trading.TradingClient.bulk_orders)
    if "builder=" in source.replace(" ", "") and "builder=None" not in source.replace(" ", ""):
        return CheckResult("no builder fee on orders", FAIL, "the adapter sets a builder on orders",
                           "remove the builder from exchange/hyperliquid/trading.py")
    return CheckResult("no builder fee on orders", PASS, "orders are sent without a builder field")


def check_clock(ctx: PreflightContext) -> CheckResult:
    item = "exchange clock vs local clock"
    try:
        server = _open_client(ctx).server_time()
    except Exception as err:  # noqa: BLE001
        return CheckResult(item, FAIL, f"exchange unreachable: {err}", "check the exchange URL / network")
    local = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    skew = (server.to_pydatetime() - local).total_seconds()
    if ctx.cfg.network == "local" and abs(skew) > 3600:
        return CheckResult(item, PASS, f"local exchange replaying {server:%Y-%m-%d %H:%M} UTC (replay clock; "
                           "nonces and expiresAfter use the venue's wall clock)")
    found = f"exchange {server:%H:%M:%S} UTC, local {local:%H:%M:%S} UTC, skew {skew:+.1f} s"
    if abs(skew) > CLOCK_FAIL_S:
        return CheckResult(item, FAIL, found, "sync this host's clock (chrony/ntpd): nonces and expiresAfter need it")
    if abs(skew) > CLOCK_WARN_S:
        return CheckResult(item, WARN, found, "sync this host's clock (chrony/ntpd)")
    return CheckResult(item, PASS, found)


def refresh_weight(n_coins: int, cfg) -> int:
    """Σ request weight of one 4h window run's market-data refresh (the critical path), priced by the client's own
    limiter (`WeightLimiter`): per coin one candleSnapshot (the closed and the forming candle), plus the universe
    snapshot. Funding is refreshed after the rebalance is launched, at low priority, so it is not counted."""
    from gradient_pipeline.exchange.hyperliquid.ratelimit import WeightLimiter

    limiter = WeightLimiter(cfg.rate_limit)

    def weight(body: dict, n_items: int) -> int:
        return limiter.base_weight("/info", body) + limiter.extra_weight("/info", body, [None] * n_items)

    per_coin = weight({"type": "candleSnapshot"}, 2)
    return n_coins * per_coin + weight({"type": "metaAndAssetCtxs"}, 0)


def check_rate_budget(ctx: PreflightContext) -> CheckResult:
    item = "rate-limit headroom"
    try:
        n = len([a for a in _open_client(ctx).meta["universe"] if not a.get("isDelisted")])
    except Exception as err:  # noqa: BLE001
        return CheckResult(item, FAIL, f"cannot read the universe: {err}", "check the exchange URL")
    weight = refresh_weight(n, ctx.cfg)
    per_min = ctx.cfg.rate_limit.budget_per_minute * ctx.cfg.rate_limit.safety_fraction
    seconds = 60.0 * weight / per_min
    found = f"{n} coins → {weight:,} weight per 4h refresh at {per_min:,.0f}/min ≈ {seconds / 60:.1f} min"
    if seconds > REFRESH_WARN_S:
        return CheckResult(item, WARN, found, "the refresh alone eats most of the 5-minute latency budget")
    return CheckResult(item, PASS, found)


def check_alerts(ctx: PreflightContext) -> CheckResult:
    from gradient_pipeline.monitoring.alerts import alert_urls

    item = "alert destinations"
    urls = alert_urls(ctx.cfg)
    if not urls:
        return CheckResult(item, FAIL if ctx.cfg.network == "mainnet" else WARN,
                           f"none configured (${ctx.cfg.alerts.urls_env_var} is empty)",
                           "set at least one apprise URL; the drawdown stop reports through it")
    if not ctx.send_test_alerts:
        return CheckResult(item, WARN, f"{len(urls)} configured, not tested (--no-test-alerts)",
                           "run preflight without --no-test-alerts")
    import apprise

    failed = []
    for i, url in enumerate(urls, start=1):
        app = apprise.Apprise()
        ok = app.add(url) and app.notify(title="[gradient] preflight test message",
                                         body="gradient-pipeline preflight: this destination receives alerts.")
        if not ok:
            failed.append(f"#{i} ({url.split(':', 1)[0]})")  # never the URL: it holds tokens
    if failed:
        return CheckResult(item, FAIL, f"{len(failed)} of {len(urls)} did not take the test message: "
                           + ", ".join(failed), "fix or remove those URLs")
    return CheckResult(item, PASS, f"{len(urls)} reached by a test message")


def check_drill(ctx: PreflightContext) -> CheckResult:
    from gradient_pipeline.book import connect
    from gradient_pipeline.book.heartbeats import last_beat

    item = "drawdown drill"
    try:
        with connect() as conn:
            beat = last_beat(conn, DRILL_HEARTBEAT)
    except Exception as err:  # noqa: BLE001
        return CheckResult(item, FAIL, f"cannot read the operations book: {err}", "check GRADIENT_BOOK_URL")
    if beat is None:
        return CheckResult(item, WARN, "never run on this host", "run `gradient-pipeline drawdown-drill`")
    age = dt.datetime.now(dt.UTC).replace(tzinfo=None) - beat[0]
    if age > DRILL_MAX_AGE:
        return CheckResult(item, WARN, f"last passed {_fmt_ts(beat[0])} ({age.days} days ago)",
                           "run `gradient-pipeline drawdown-drill` again")
    return CheckResult(item, PASS, f"passed {_fmt_ts(beat[0])}")


def check_backtest(ctx: PreflightContext) -> CheckResult:
    """The active configuration over the last 6 months of stored market data, net of costs."""
    import pandas as pd

    from gradient_pipeline.research.data import load_panel_duckdb
    from gradient_pipeline.research.runner import backtest
    from gradient_pipeline.storage import db

    item = f"backtest, last {BACKTEST_MONTHS} months"
    path = ctx.cfg.resolved_duckdb_path
    try:
        with db.connect(path, read_only=True) as conn:
            panel = load_panel_duckdb(conn)
    except Exception as err:  # noqa: BLE001
        return CheckResult(item, WARN, f"no market data to test on ({type(err).__name__}: {err})",
                           "run `gradient-pipeline warm-up` first")
    end = pd.Timestamp(panel.times[-1]) if len(panel.times) else None
    if end is None:
        return CheckResult(item, WARN, "no market data stored", "run `gradient-pipeline warm-up` first")
    start = end - pd.DateOffset(months=BACKTEST_MONTHS)
    run = backtest(panel, ctx.cfg, start=start, end=end)
    sharpe = float(run.result.metrics["sharpe"])
    found = f"{start:%Y-%m-%d} → {end:%Y-%m-%d}: net Sharpe {sharpe:+.2f}"
    if not sharpe > 0:
        return CheckResult(item, WARN, found + " — THIS CONFIGURATION LOST MONEY NET OF COSTS",
                           "see the README's research section; consider maker execution or turnover control")
    return CheckResult(item, PASS, found)


CHECKS: list[Callable[[PreflightContext], CheckResult]] = [
    check_config, check_mode, check_agent, check_abstraction, check_builder, check_clock, check_rate_budget,
    check_alerts, check_drill, check_backtest,
]


def run_preflight(ctx: PreflightContext, say: Callable[[str], None] = print) -> int:
    """Run every check (stop after a configuration failure: nothing else can be judged), print one line each and
    return the exit code: 0 all pass, 1 any warning, 2 any failure."""
    results = []
    for check in CHECKS:
        try:
            result = check(ctx)
        except Exception as err:  # noqa: BLE001 - a crashing check is a failed check, named
            result = CheckResult(check.__name__.removeprefix("check_"), FAIL, f"{type(err).__name__}: {err}")
        results.append(result)
        say(result.line())
        if check is check_config and result.status == FAIL:
            break
    worst = max((EXIT_CODES[r.status] for r in results), default=2)
    counts = {s: sum(r.status == s for r in results) for s in (PASS, WARN, FAIL)}
    say(f"preflight: {counts[PASS]} pass, {counts[WARN]} warn, {counts[FAIL]} fail")
    return worst
