"""One typed model for `config/gradient_live.json`.

The file is chosen by the `GRADIENT_CONFIG` environment variable (default `config/gradient_live.json`).
Strategy keys sit at the top level (as the strategy's design card names them); the pipeline's own settings
live in named sections. Unknown keys, wrong types and out-of-range values fail with a message that names the
key and the rule. Secrets never live in this file: the private key and the master account address come only
from the environment (`GRADIENT_PRIVATE_KEY`, `GRADIENT_ACCOUNT_ADDRESS`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CONFIG_ENV_VAR = "GRADIENT_CONFIG"
DEFAULT_CONFIG_PATH = "config/gradient_live.json"
PRIVATE_KEY_ENV_VAR = "GRADIENT_PRIVATE_KEY"
ACCOUNT_ADDRESS_ENV_VAR = "GRADIENT_ACCOUNT_ADDRESS"

MAINNET_API_URL = "https://api.hyperliquid.xyz"
TESTNET_API_URL = "https://api.hyperliquid-testnet.xyz"
LOCAL_API_URL = "http://127.0.0.1:8731"

Mode = Literal["paper", "dry_run", "testnet", "mainnet"]
Network = Literal["local", "testnet", "mainnet"]


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or breaks a rule; the message names the key and the rule."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VolTargetConfig(_Section):
    """Optional portfolio-level scaler: shrink the book when forecast portfolio vol exceeds the target."""

    enabled: bool = False
    target_annual_vol_pct: float = Field(20.0, gt=0, description="target annualised portfolio volatility, percent")
    max_scale: float = Field(1.0, gt=0, le=10, description="never scale the book up by more than this")


class CostConfig(_Section):
    """Cost model shared by the backtest, the sweep and the live slippage alerts."""

    taker_fee_bps: float = Field(4.5, ge=0)
    maker_fee_bps: float = Field(1.5, ge=-1)
    slippage_base_bps: float = Field(1.0, ge=0, description="half-spread paid on every trade, bp")
    # Square-root law: impact ≈ Y · σ_daily · sqrt(Q / ADV). With Y ≈ 0.5 and a typical perp's daily σ ≈ 4%,
    # Y · σ ≈ 0.02; 0.1 (the first guess) charged ~13 bp on a $70 trade in a $400k-ADV coin, far above what
    # the exchange's books show for orders that small.
    slippage_impact_coef: float = Field(
        0.02, ge=0, description="impact bp = coef * 1e4 * sqrt(trade_usd / ADV_usd)  (square-root law, coef ≈ Y·σ_daily)"
    )


class BacktestConfig(_Section):
    """How the as-live backtest (`research.live_backtest`) models what the live rebalance would have done."""

    drawdown_stop: bool = Field(True, description="apply emergency_stop_drawdown_pct: flatten and stay halted")
    participation_cap_pct: float = Field(
        5.0, gt=0, le=100, description="an order fills at most this % of the coin's USD volume in the bar; rest unfilled")
    impact_y: float = Field(
        0.5, ge=0, description="impact bp = Y · σ_daily(coin) · 1e4 · sqrt(order / ADV) on top of slippage_base_bps")
    passive_wait_hours: int = Field(
        1, ge=1, le=4, description="passive_first: hours a post-only order at the touch may wait for a trade-through")


class DataConfig(_Section):
    """Where market data comes from and which history the partitions cover."""

    source: Literal["hyperliquid", "freqtrade"] = "hyperliquid"
    freqtrade_dir: str | None = Field(None, description="freqtrade data directory (…/futures) for source=freqtrade")
    partitions_start: str = Field("2023-01-01-00:00", description="first 4h partition key, UTC, %Y-%m-%d-%H:%M")
    partitions_end: str | None = Field(
        None, description="optional end of the 4h partitions (exclusive, UTC, %Y-%m-%d-%H:%M): bounds the UI's "
        "partition range to a finite history such as the demo's; None: up to now")
    funding_lookback_hours: int = Field(8, gt=0, description="hours of funding re-fetched by each 4h update")


class MarketDataValidationConfig(_Section):
    """Plausibility bounds on market data, checked before anything is written (docs/TABLES.md, "Validation").

    A value outside a bound is refused with the coin, time and rule named; the window is not written.
    """

    max_funding_per_hour: float = Field(
        0.04, gt=0, le=1, description="|funding rate| per hour of its interval (venue cap 4%/h; 8h records: ×8)"
    )
    # 20, not 10: the real OM crash (2025-04-13 16:00 UTC) traded down to 0.062 × the previous close in one bar.
    max_bar_move_ratio: float = Field(
        20.0, gt=1, description="refuse a bar whose high > ratio × or low < 1/ratio × the previous close"
    )
    mark_oracle_band_pct: float = Field(
        10.0, gt=0, le=100, description="live mark and oracle price within this % of the mid (where a mid is known)"
    )
    ohlc_repair_max_pct: float = Field(
        10.0, ge=0, le=50,
        description="widen high/low to cover open/close only when they fall short by at most this % (0 = never)",
    )


class RateLimitConfig(_Section):
    """Client-side weight budget for the exchange's per-IP limit (defaults: Hyperliquid's documented weights)."""

    budget_per_minute: int = Field(1200, gt=0)
    safety_fraction: float = Field(0.9, gt=0, le=1, description="spend at most this share of the budget")
    background_fraction: float = Field(
        0.6, gt=0, le=1, description="background work (the funding refresh after each window) is admitted only while "
        "the shared window holds at most this share of the budget, so the trading cycle always finds headroom")
    default_info_weight: int = Field(20, gt=0)
    info_weights: dict[str, int] = Field(
        default_factory=lambda: {
            "l2Book": 2, "allMids": 2, "clearinghouseState": 2, "orderStatus": 2,
            "spotClearinghouseState": 2, "exchangeStatus": 2, "userRole": 60,
        }
    )
    candle_items_per_extra_weight: int = Field(60, gt=0)
    items_per_extra_weight: int = Field(20, gt=0)
    request_timeout_s: float = Field(
        10.0, gt=0, description="seconds before any exchange request (read, order batch, cancel) times out; an order "
        "batch that times out is ambiguous and looked up by client id")
    max_retries: int = Field(6, ge=0)
    backoff_base_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    shared_ledger: bool = Field(
        True, description="share one budget per exchange host across every process on this machine (a rolling "
        "ledger in a small SQLite file); false: each process keeps its own budget (it then cannot see the others)")
    ledger_path: str | None = Field(
        None, description="SQLite file of the shared budget; default `exchange_rate.sqlite` beside the DuckDB file "
        "(`GRADIENT_RATE_LEDGER` overrides)")


class ExecutionConfig(_Section):
    """How target weights become orders."""

    style: Literal["taker", "passive_first"] = "taker"
    slippage_cap_bps: float = Field(50.0, gt=0, le=500, description="IOC limit = mid ± this; SDK default 5% is too wide")
    passive_timeout_s: float = Field(20.0, ge=0, description="passive_first: seconds a post-only order may rest")
    max_attempts: int = Field(3, ge=1, le=10, description="IOC attempts per coin (residual re-priced each time)")
    min_order_usd: float = Field(10.0, gt=0, description="exchange minimum order value")
    min_order_buffer_usd: float = Field(1.0, ge=0, description="skip opening deltas below min_order_usd + buffer")
    batch_size: int = Field(40, ge=1, description="orders per signed batch (exchange weight 1 + n/40)")
    target_max_age_hours: float = Field(4.0, gt=0, description="targets older than one window are stale")
    leverage: int = Field(3, ge=1, le=50, description="per-coin cross leverage set before trading")
    expires_after_s: float | None = Field(
        30.0, gt=0, le=3600, description="signed actions carry expiresAfter = now + this; a late one is refused "
        "by the venue (null: no expiry)")
    dead_man_s: float | None = Field(
        120.0, ge=10, le=86_400, description="during a rebalance the venue cancels all open orders this many "
        "seconds after the last order round unless re-armed (scheduleCancel; null: off)")


class ScheduleConfig(_Section):
    """When `trading_cycle_schedule` ticks. Which window it runs is always the exchange's newest complete window
    (asked from the exchange clock), so the cron only decides *when to ask*."""

    cron: str | None = Field(
        None, description="cron (UTC) of the trading schedule; default: every 4h at `offset_minutes` past the hour")
    offset_minutes: int = Field(
        0, ge=0, le=59, description="minutes after each 4h close (the exchange serves a closed candle at the close)")
    clock_grace_s: float = Field(
        20.0, ge=0, le=50, description="a tick that finds the exchange clock this close before a close waits for it "
        "(host/exchange clock skew) instead of skipping the window")

    @property
    def cron_schedule(self) -> str:
        return self.cron or f"{self.offset_minutes} */4 * * *"

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, cron: str | None) -> str | None:
        if cron is not None and len(cron.split()) != 5:
            raise ValueError("must be a 5-field cron expression, e.g. '0 */4 * * *'")
        return cron


class RiskConfig(_Section):
    """Pre-trade limits (refuse or scale) and drawdown handling."""

    breach_action: Literal["refuse", "scale"] = "refuse"
    max_order_notional_usd: float = Field(2500.0, gt=0)
    min_account_value_usd: float = Field(100.0, ge=0)
    net_exposure_band_pct: float = Field(5.0, ge=0, description="|net| / account value must stay within this")
    max_order_adv_pct: float = Field(2.5, gt=0, description="an order may be at most this % of the coin's ADV")
    drawdown_warn_pct: float = Field(10.0, gt=0, lt=100)
    equity_sensor_interval_s: int = Field(300, ge=30)
    flatten_max_attempts: int = Field(5, ge=1, description="kept for old files: the flatten no longer stops after N "
                                      "rounds, it retries until flat (see flatten_deadline_s)")
    flatten_deadline_s: float = Field(60.0, gt=0, description="after this the emergency stop alerts STILL OPEN (and "
                                      "keeps trying)")
    flatten_still_open_alert_interval_s: float = Field(300.0, gt=0, description="STILL OPEN alert repeat interval")
    flatten_backoff_initial_s: float = Field(0.5, gt=0, description="first retry delay of a failed flatten step")
    flatten_backoff_max_s: float = Field(30.0, gt=0, description="cap of the flatten's exponential backoff")
    drawdown_stop_ticks: int = Field(2, ge=1, description="consecutive breaching drawdown ticks before the stop fires")
    drawdown_unreachable_max_s: float = Field(600.0, gt=0, description="exchange unreachable longer than this: the "
                                              "drawdown check cannot evaluate (red + alert)")
    drawdown_max_equity_age_s: float = Field(900.0, gt=0, description="last equity reading older than this: cannot "
                                             "evaluate (red + alert)")
    watchdog_max_age_s: float = Field(900.0, gt=0, description="watchdog alerts when the last drawdown evaluation "
                                      "is older than this")


class AlertsConfig(_Section):
    """Alert routing through apprise; destination URLs come from the environment, never from this file."""

    urls_env_var: str = "GRADIENT_ALERT_URLS"
    min_interval_s: int = Field(300, ge=0, description="same alert kind at most once per this many seconds")
    retry_backoff_initial_s: float = Field(60.0, gt=0, description="a destination that failed is retried after "
                                           "this long, doubling per failure (on later ticks that deliver alerts)")
    retry_backoff_max_s: float = Field(3600.0, gt=0, description="cap of the per-destination retry backoff")
    retry_give_up_after_s: float = Field(86_400.0, gt=0, description="stop retrying a destination this long after "
                                         "the alert's first attempt (shown as gave_up in status)")
    slippage_alert_pct: float = Field(0.5, gt=0)
    drift_alert_pct: float = Field(3.0, gt=0, description="position drift vs target, % of account value")
    underperformance_sigma: float = Field(2.0, gt=0)
    daily_summary_hour_utc: int = Field(0, ge=0, le=23)


class GradientConfig(BaseModel):
    """Everything the pipeline reads from the config file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- strategy (names and defaults from the strategy's design card) ---
    capital_usd: float = Field(5000.0, gt=0)
    max_position_pct: float = Field(10.0, gt=0, le=100)
    max_total_leverage: float = Field(2.0, gt=0, le=20)
    concentration_pct: float = Field(35.0, gt=0, le=50)
    rebalance_freq_hours: int = Field(4, gt=0)
    weight_scheme: Literal["inverse_vol", "equal"] = "inverse_vol"
    lookback_spans: list[int] = Field(default_factory=lambda: [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], min_length=1)
    vol_span: int = Field(24, ge=2)
    liquidity_threshold_usd: float = Field(10000.0, gt=0)
    liquidity_impact_pct: float = Field(2.5, gt=0, le=100)
    emergency_stop_drawdown_pct: float = Field(20.0, gt=0, lt=100)
    # --- strategy extensions (documented in README) ---
    signal_combination: Literal["sum", "mean", "sign_sum"] = "sum"
    side_gross_pct: float = Field(35.0, gt=0, le=500, description="gross exposure per side, % of capital")
    adv_bars: int = Field(6, ge=1, description="bars in the trailing ADV (6 × 4h = 24h)")
    no_trade_band_pct: float = Field(0.0, ge=0, description="leave a position alone if |Δweight| < this, % of capital")
    weight_smoothing: float = Field(1.0, gt=0, le=1, description="w = a·target + (1−a)·w_prev; 1 = off")
    vol_target: VolTargetConfig = Field(default_factory=VolTargetConfig)

    # --- pipeline ---
    mode: Mode = "paper"
    dry_run_network: Network = Field("local", description="network whose market data and account dry_run reads")
    allow_mainnet: bool = Field(False, description="must be true (and mode mainnet) before a real order is sent")
    exchange_base_url: str | None = Field(None, description="override the URL the mode implies (no trailing slash)")
    duckdb_path: str = "data/gradient.duckdb"
    data: DataConfig = Field(default_factory=DataConfig)
    validation: MarketDataValidationConfig = Field(default_factory=MarketDataValidationConfig)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    costs: CostConfig = Field(default_factory=CostConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    backtest: BacktestConfig = Field(default_factory=BacktestConfig)

    @model_validator(mode="before")
    @classmethod
    def _one_request_timeout(cls, data):
        """`execution.request_timeout_s` (older configs) is an alias of `rate_limit.request_timeout_s`, the one
        timeout every exchange client uses; both set to different values is an error, not a silent choice."""
        if not isinstance(data, dict) or not isinstance(data.get("execution"), dict):
            return data
        if "request_timeout_s" not in data["execution"]:
            return data
        execution = dict(data["execution"])
        legacy = execution.pop("request_timeout_s")
        rate = dict(data.get("rate_limit") or {})
        if "request_timeout_s" in rate and rate["request_timeout_s"] != legacy:
            raise ValueError(f"execution.request_timeout_s ({legacy}) and rate_limit.request_timeout_s "
                             f"({rate['request_timeout_s']}) differ; keep only rate_limit.request_timeout_s")
        rate["request_timeout_s"] = legacy
        return {**data, "execution": execution, "rate_limit": rate}

    @field_validator("lookback_spans")
    @classmethod
    def _spans_positive_unique(cls, spans: list[int]) -> list[int]:
        if any(s <= 0 for s in spans):
            raise ValueError("every span must be a positive integer number of 4h bars")
        if len(set(spans)) != len(spans):
            raise ValueError("spans must be unique")
        return sorted(spans)

    @field_validator("rebalance_freq_hours")
    @classmethod
    def _multiple_of_four(cls, hours: int) -> int:
        if hours % 4:
            raise ValueError("must be a multiple of 4 (the candle interval)")
        return hours

    @field_validator("exchange_base_url")
    @classmethod
    def _no_trailing_slash(cls, url: str | None) -> str | None:
        if url is not None and (url.endswith("/") or not url.startswith(("http://", "https://"))):
            raise ValueError("must be an http(s) URL without a trailing slash")
        return url

    @model_validator(mode="after")
    def _consistent(self) -> "GradientConfig":
        if self.max_position_pct / 100 > self.max_total_leverage:
            raise ValueError("max_position_pct cannot exceed max_total_leverage")
        if 2 * self.side_gross_pct / 100 > self.max_total_leverage + 1e-12:
            raise ValueError("side_gross_pct: 2 × side gross exceeds max_total_leverage")
        if self.risk.drawdown_warn_pct >= self.emergency_stop_drawdown_pct:
            raise ValueError("risk.drawdown_warn_pct must be below emergency_stop_drawdown_pct")
        if self.mode == "mainnet" and not self.allow_mainnet:
            raise ValueError("mode: mainnet needs allow_mainnet: true in the configuration")
        if self.exchange_base_url == MAINNET_API_URL and self.mode not in ("mainnet", "dry_run"):
            raise ValueError("exchange_base_url points at mainnet but mode is not mainnet")
        return self

    # --- derived ---
    @property
    def network(self) -> Network:
        """Which network this configuration talks to."""
        if self.mode == "paper":
            return "local"
        if self.mode == "dry_run":
            return self.dry_run_network
        return self.mode  # testnet | mainnet

    @property
    def base_url(self) -> str:
        if self.exchange_base_url:
            return self.exchange_base_url
        return {"local": LOCAL_API_URL, "testnet": TESTNET_API_URL, "mainnet": MAINNET_API_URL}[self.network]

    @property
    def sends_orders(self) -> bool:
        """Only paper (local exchange), testnet and mainnet send orders; dry_run never does."""
        return self.mode != "dry_run"

    @property
    def resolved_duckdb_path(self) -> Path:
        return Path(self.duckdb_path).expanduser()

    @property
    def tracking_error_path(self) -> Path:
        """The latest paper-vs-backtest tracking summary, ``tracking_error.json`` beside the DuckDB file: written by
        `gradient-pipeline research track`, read by the underperformance check and the performance report."""
        return self.resolved_duckdb_path.parent / "tracking_error.json"


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not part of the configuration model)"
        lines.append(f"  - {key}: {msg} (got {e.get('input')!r})" if e["type"] != "missing" else f"  - {key}: {msg}")
    return "\n".join(lines)


def parse_config(data: dict, source: str = "<dict>") -> GradientConfig:
    """Validate a mapping; raise ConfigError naming each bad key and its rule."""
    if not isinstance(data, dict):
        raise ConfigError(f"invalid configuration in {source}: the top level must be a JSON object")
    try:
        return GradientConfig.model_validate(data, strict=True)  # strict: "5000" is not a number
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)


def load_config(path: str | os.PathLike | None = None) -> GradientConfig:
    """Load and validate the configuration file (default: `$GRADIENT_CONFIG` or `config/gradient_live.json`)."""
    p = Path(path) if path is not None else config_path()
    try:
        text = p.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read configuration file {p}: {err.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"configuration file {p} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}") from None
    return parse_config(data, str(p))
