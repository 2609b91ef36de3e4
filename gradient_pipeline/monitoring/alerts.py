"""Operator alerts through apprise: deduplicated, rate-limited, scrubbed of secrets, never in the trading path.

Destinations are apprise URLs read from the environment variable named by `alerts.urls_env_var`
(default `GRADIENT_ALERT_URLS`; several URLs separated by spaces or commas), e.g. ``tgram://BOT_TOKEN/CHAT_ID``,
``mailtos://user:pass@example.com``, ``slack://…``, ``discord://…`` or ``json://127.0.0.1:8099/alerts``.

Two kinds of keys decide "once":
- a **condition** (``drawdown_warn``, ``drawdown_stop``, ``position_drift``, ``underperformance``) alerts once when
  raised and stays silent while it persists; `clear()` re-arms it (the next raise alerts again);
- an **event** (``run_failure:<run id>``, ``daily_summary:<date>``, ``slippage:<rebalance id>``) has a unique key,
  so it alerts exactly once, ever.

Rate limit: at most one alert of the same *kind* per `alerts.min_interval_s`. A rate-limited or undelivered alert
is logged as such and NOT marked sent, so it goes out at the next evaluation after the interval. Failures
(`severity == "failure"`: run failures, the drawdown stop) are never rate-limited.

Every title and body is scrubbed before it leaves: the private key and every environment value whose name looks
secret are replaced by ``[redacted]``, as is anything shaped like a 32-byte hex key.

State (DuckDB, written only by runs and CLI commands, never by sensors):
- ``alerts_state(key, kind, active, raised_at, last_sent_at, cleared_at, sent_count)`` — dedupe;
- ``alerts_sent(sent_at, key, kind, severity, title, body, status, destinations)`` — everything attempted,
  status ``sent | failed | rate_limited | no_destination``.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

import duckdb

from gradient_pipeline.config import PRIVATE_KEY_ENV_VAR, GradientConfig
from gradient_pipeline.monitoring.halt import utcnow

log = logging.getLogger(__name__)

ALERTS_DDL = """
CREATE TABLE IF NOT EXISTS alerts_state (
    key          VARCHAR PRIMARY KEY,
    kind         VARCHAR NOT NULL,
    active       BOOLEAN NOT NULL,    -- raised and already alerted; silent until cleared
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
    status       VARCHAR NOT NULL,    -- sent | failed | rate_limited | no_destination
    destinations INTEGER NOT NULL
);
"""

SEVERITIES = ("info", "warning", "failure")
_APPRISE_TYPE = {"info": "info", "warning": "warning", "failure": "failure"}
_SECRET_NAME = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE)", re.I)
_HEX_KEY = re.compile(r"(?<![0-9a-fA-F])(0x)?[0-9a-fA-F]{64}(?![0-9a-fA-F])")
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Alert:
    """One message. `key` decides deduplication (see module docstring); `kind` decides rate limiting."""

    kind: str
    key: str
    severity: str
    title: str
    body: str

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"alert severity must be one of {SEVERITIES}, got {self.severity!r}")


@dataclass(frozen=True)
class Delivery:
    key: str
    status: str  # sent | failed | rate_limited | no_destination | duplicate
    title: str = ""
    body: str = ""

    @property
    def sent(self) -> bool:
        return self.status == "sent"


# --------------------------------------------------------------------------------------------------- scrubbing


def _secret_values() -> list[str]:
    values = []
    for name, value in os.environ.items():
        if name == PRIVATE_KEY_ENV_VAR or _SECRET_NAME.search(name):
            v = value.strip()
            if len(v) >= 6:
                values.append(v)
                if v.lower().startswith("0x"):
                    values.append(v[2:])
    return sorted(set(values), key=len, reverse=True)


def _url_parts(urls) -> list[str]:
    """Token-like pieces of alert URLs (bot tokens, webhook ids, passwords): long and containing a digit."""
    parts = []
    for url in urls:
        parts.append(url)
        parts.extend(p for p in re.split(r"[/:@?&=#,]+", url) if len(p) >= 12 and re.search(r"\d", p))
    return parts


def scrub(text: str, extra_secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Replace every secret-looking value in `text` by [redacted]: env secrets, alert URLs and the token-like
    pieces inside them, and anything shaped like a 32-byte hex key."""
    out = str(text)
    for secret in sorted({*_url_parts(extra_secrets), *_secret_values()}, key=len, reverse=True):
        if secret:
            out = out.replace(secret, REDACTED)
    return _HEX_KEY.sub(REDACTED, out)


# --------------------------------------------------------------------------------------------------- delivery


def alert_urls(cfg: GradientConfig) -> list[str]:
    raw = os.environ.get(cfg.alerts.urls_env_var, "")
    return [u for u in re.split(r"[\s,]+", raw) if u]


def ensure_alert_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(ALERTS_DDL)


def _deliver(urls: list[str], title: str, body: str, severity: str) -> bool:
    """Send through apprise, one destination at a time; True when at least one destination accepted it.

    Never raises (notification trouble must not break a trading or monitoring run). A dead destination beside a
    working one is logged loudly but does not make the alert count as undelivered: otherwise the working
    destinations would receive the same alert again at every evaluation (per-destination retry is the alert
    store's job)."""
    try:
        import apprise
    except Exception as err:  # noqa: BLE001 - alerts are best effort; the failure is recorded
        log.error("alert delivery unavailable: %s", type(err).__name__)
        return False
    delivered = 0
    for i, url in enumerate(urls, start=1):
        try:
            app = apprise.Apprise()
            if not app.add(url):
                log.error("alert destination #%d is not a valid apprise URL (value not shown)", i)
                continue
            if app.notify(title=title, body=body, notify_type=apprise.NotifyType(_APPRISE_TYPE[severity])):
                delivered += 1
            else:
                log.error("ALERT NOT DELIVERED to destination #%d of %d (%r); the other destinations are tried",
                          i, len(urls), title[:80])
        except Exception as err:  # noqa: BLE001
            log.error("alert delivery to destination #%d raised %s", i, type(err).__name__)
    return delivered > 0


def deliver_unrecorded(alert: Alert, cfg: GradientConfig) -> bool:
    """Deliver `alert` now, without dedupe or a record (for when the alert store is unavailable, e.g. locked by a
    writer while an emergency stop must still say STILL OPEN). Scrubbed like every alert."""
    urls = alert_urls(cfg)
    if not urls:
        log.error("alert %s not delivered: %s is empty", alert.key, cfg.alerts.urls_env_var)
        return False
    return _deliver(urls, scrub(alert.title, urls), scrub(alert.body, urls), alert.severity)


def _log(conn, alert: Alert, title: str, body: str, status: str, n: int) -> None:
    conn.execute(
        "INSERT INTO alerts_sent VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [utcnow(), alert.key, alert.kind, alert.severity, title, body, status, n],
    )


def _rate_limited(conn, alert: Alert, cfg: GradientConfig) -> bool:
    if alert.severity == "failure" or cfg.alerts.min_interval_s <= 0:
        return False
    row = conn.execute(
        "SELECT max(sent_at) FROM alerts_sent WHERE kind = ? AND status = 'sent'", [alert.kind]
    ).fetchone()
    last = row[0] if row else None
    return last is not None and (utcnow() - last).total_seconds() < cfg.alerts.min_interval_s


def raise_alert(conn: duckdb.DuckDBPyConnection, alert: Alert, cfg: GradientConfig) -> Delivery:
    """Send `alert` unless its key is already active (dedupe) or its kind is rate-limited. Never raises on delivery."""
    ensure_alert_tables(conn)
    state = conn.execute("SELECT active FROM alerts_state WHERE key = ?", [alert.key]).fetchone()
    if state is not None and state[0]:
        return Delivery(alert.key, "duplicate")
    urls = alert_urls(cfg)
    title = scrub(alert.title, urls)
    body = scrub(alert.body, urls)
    if _rate_limited(conn, alert, cfg):
        _log(conn, alert, title, body, "rate_limited", len(urls))
        return Delivery(alert.key, "rate_limited", title, body)
    if not urls:
        log.warning("alert %s not delivered: %s is empty", alert.key, cfg.alerts.urls_env_var)
        _log(conn, alert, title, body, "no_destination", 0)
        return Delivery(alert.key, "no_destination", title, body)
    ok = _deliver(urls, title, body, alert.severity)
    status = "sent" if ok else "failed"
    _log(conn, alert, title, body, status, len(urls))
    if ok:
        now = utcnow()
        conn.execute(
            """
            INSERT INTO alerts_state (key, kind, active, raised_at, last_sent_at, sent_count)
            VALUES (?, ?, TRUE, ?, ?, 1)
            ON CONFLICT (key) DO UPDATE SET active = TRUE, raised_at = excluded.raised_at,
                last_sent_at = excluded.last_sent_at, sent_count = alerts_state.sent_count + 1
            """,
            [alert.key, alert.kind, now, now],
        )
    return Delivery(alert.key, status, title, body)


def clear_alert(conn: duckdb.DuckDBPyConnection, key: str) -> bool:
    """The condition behind `key` has cleared: the next raise alerts again. True if it was active."""
    ensure_alert_tables(conn)
    row = conn.execute("SELECT active FROM alerts_state WHERE key = ?", [key]).fetchone()
    if not row or not row[0]:
        return False
    conn.execute("UPDATE alerts_state SET active = FALSE, cleared_at = ? WHERE key = ?", [utcnow(), key])
    return True


def is_active(conn: duckdb.DuckDBPyConnection, key: str) -> bool:
    """Read-only friendly: whether the condition `key` has alerted and not cleared."""
    from gradient_pipeline.storage.db import table_exists

    if not table_exists(conn, "alerts_state"):
        return False
    row = conn.execute("SELECT active FROM alerts_state WHERE key = ?", [key]).fetchone()
    return bool(row and row[0])


def set_condition(conn: duckdb.DuckDBPyConnection, alert: Alert, active: bool, cfg: GradientConfig) -> Delivery | None:
    """Raise `alert` when the condition holds, clear its key when it does not (the usual evaluator call)."""
    if active:
        return raise_alert(conn, alert, cfg)
    clear_alert(conn, alert.key)
    return None
