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

State lives in the operations book (`gradient_pipeline/book/alerts.py`; `conn` is a book connection):
- ``alerts_state(key, kind, active, raised_at, last_sent_at, cleared_at, sent_count)`` — dedupe;
- ``alerts_sent(sent_at, key, kind, severity, title, body, status, destinations)`` — everything attempted,
  status ``sent | failed | rate_limited | no_destination``;
- ``alert_deliveries(alert_key, destination_id, status, attempts, next_attempt_at, last_error)`` — one row per
  alert and destination; the destination is a hash of its URL, never the URL.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from gradient_pipeline.book import alerts as store
from gradient_pipeline.book.alerts import clear_alert, is_active  # noqa: F401 - re-exported
from gradient_pipeline.book.halt import utcnow
from gradient_pipeline.config import PRIVATE_KEY_ENV_VAR, GradientConfig

log = logging.getLogger(__name__)

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


RETRY_AFTER_S = 60.0  # a failed destination may be retried after this long (next_attempt_at)


def _deliver_one(url: str, title: str, body: str, severity: str) -> tuple[bool, str | None]:
    """Send to one destination through apprise; never raises (notification trouble must not break a trading or
    monitoring run). Returns (delivered, error text without the URL)."""
    try:
        import apprise

        app = apprise.Apprise()
        if not app.add(url):
            return False, "not a valid apprise URL (value not shown)"
        ok = bool(app.notify(title=title, body=body, notify_type=apprise.NotifyType(_APPRISE_TYPE[severity])))
        return ok, None if ok else "apprise could not deliver"
    except Exception as err:  # noqa: BLE001 - alerts are best effort; the failure is recorded
        return False, f"apprise raised {type(err).__name__}"


def _deliver(conn: Connection | None, key: str, urls: list[str], title: str, body: str, severity: str) -> bool:
    """Send to every destination; record one `alert_deliveries` row per destination (by hash). True if at least
    one destination received it."""
    any_ok = False
    for i, url in enumerate(urls, start=1):
        ok, error = _deliver_one(url, title, body, severity)
        if not ok:
            log.error("ALERT NOT DELIVERED to destination #%d of %d (alert %s): %s; the others are tried", i,
                      len(urls), key, error)
        any_ok = any_ok or ok
        if conn is not None:
            store.record_delivery(conn, key, url, ok, scrub(error or "", urls) or None,
                                  None if ok else RETRY_AFTER_S)
    return any_ok


def deliver_unrecorded(alert: Alert, cfg: GradientConfig) -> bool:
    """Deliver `alert` now, without dedupe or a record (for when the alert store is unavailable, e.g. its lock
    held past the wait while an emergency stop must still say STILL OPEN). Scrubbed like every alert."""
    urls = alert_urls(cfg)
    if not urls:
        log.error("alert %s not delivered: %s is empty", alert.key, cfg.alerts.urls_env_var)
        return False
    return _deliver(None, alert.key, urls, scrub(alert.title, urls), scrub(alert.body, urls), alert.severity)


def _log(conn, alert: Alert, title: str, body: str, status: str, n: int) -> None:
    store.log_attempt(conn, alert.key, alert.kind, alert.severity, title, body, status, n)


def _rate_limited(conn, alert: Alert, cfg: GradientConfig) -> bool:
    if alert.severity == "failure" or cfg.alerts.min_interval_s <= 0:
        return False
    last = store.last_sent_at(conn, alert.kind)
    return last is not None and (utcnow() - last).total_seconds() < cfg.alerts.min_interval_s


def raise_alert(conn: Connection, alert: Alert, cfg: GradientConfig) -> Delivery:
    """Send `alert` unless its key is already active (dedupe) or its kind is rate-limited. Never raises on delivery."""
    if store.is_active(conn, alert.key):
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
    ok = _deliver(conn, alert.key, urls, title, body, alert.severity)
    status = "sent" if ok else "failed"
    _log(conn, alert, title, body, status, len(urls))
    if ok:
        store.mark_sent(conn, alert.key, alert.kind)
    return Delivery(alert.key, status, title, body)

