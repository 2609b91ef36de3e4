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

Per-destination retry: an alert counts as sent when one destination took it. A destination that failed is
retried with capped exponential backoff (`alerts.retry_backoff_initial_s`, doubling, at most
`alerts.retry_backoff_max_s`) on later ticks that deliver alerts (`retry_due`, run by `raise_alert` and by the
cron `watchdog`), never resending to destinations that already have it, and given up after
`alerts.retry_give_up_after_s`. `gradient-pipeline status` lists destinations still missing an alert by position,
scheme and hash (`undelivered`).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from gradient_pipeline.backoff import Backoff
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


def retry_delay_s(attempts: int, cfg: GradientConfig | None) -> float:
    """Capped exponential backoff for a destination after `attempts` failed tries: initial × 2^(attempts−1), at most
    `alerts.retry_backoff_max_s`."""
    a = cfg.alerts if cfg is not None else None
    initial = a.retry_backoff_initial_s if a else 60.0
    cap = a.retry_backoff_max_s if a else 3600.0
    return Backoff(initial, cap).delay(max(1, attempts))


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


def _deliver(conn: Connection | None, key: str, urls: list[str], title: str, body: str, severity: str,
             cfg: GradientConfig | None = None) -> bool:
    """Send to every destination that still needs it; record one `alert_deliveries` row per destination (by
    hash). A destination that already received this alert is not sent it again; one that failed is tried again
    only once its backoff (`next_attempt_at`) has passed, and given up `alerts.retry_give_up_after_s` after its
    first try. True if at least one destination has the alert."""
    prior = {d["destination_id"]: d for d in store.deliveries(conn, key)} if conn is not None else {}
    now = utcnow()
    give_up_s = cfg.alerts.retry_give_up_after_s if cfg is not None else 86_400.0
    any_ok = False
    for i, url in enumerate(urls, start=1):
        before = prior.get(store.destination_id(url))
        if before is not None:
            if before["status"] == "sent":
                any_ok = True
                continue
            if before["status"] == "gave_up" or (before["next_attempt_at"] is not None
                                                 and before["next_attempt_at"] > now):
                continue
        ok, error = _deliver_one(url, title, body, severity)
        attempts = (before["attempts"] if before is not None else 0) + 1
        if not ok:
            log.error("ALERT NOT DELIVERED to destination #%d of %d (alert %s, try %d): %s; the others are tried",
                      i, len(urls), key, attempts, error)
        any_ok = any_ok or ok
        if conn is not None:
            first = before["created_at"] if before is not None else now
            gave_up = not ok and (now - first).total_seconds() >= give_up_s
            store.record_delivery(conn, key, url, ok, scrub(error or "", urls) or None,
                                  None if ok else retry_delay_s(attempts, cfg), gave_up=gave_up)
    return any_ok


def destination_label(destination_id: str, urls: list[str]) -> str:
    """How `status` names a destination: its position and scheme in the configured list and its hash — never the
    URL (it holds tokens)."""
    for i, url in enumerate(urls, start=1):
        if store.destination_id(url) == destination_id:
            scheme = url.split("://", 1)[0] if "://" in url else "?"
            return f"destination #{i} of {len(urls)} ({scheme}://…, id {destination_id})"
    return f"destination id {destination_id} (no longer configured)"


def retry_due(conn: Connection, cfg: GradientConfig, limit: int = 10) -> list[tuple[str, str, bool]]:
    """Retry the failed deliveries whose backoff has passed (at most `limit`), each to its own destination only,
    with the alert's recorded (scrubbed) title and body. An alert that reached no destination before and reaches
    one now is marked sent (deduplicated from then on). Called on every tick that delivers alerts (`raise_alert`:
    sensors, jobs, CLI; the cron `watchdog`). Returns (alert key, destination label, delivered) per try."""
    urls = alert_urls(cfg)
    by_id = {store.destination_id(u): u for u in urls}
    out = []
    for row in store.due_deliveries(conn)[:limit]:
        url = by_id.get(row["destination_id"])
        last = store.last_attempt(conn, row["alert_key"])
        if url is None or last is None:  # destination removed from the configuration: status shows it
            continue
        ok = _deliver(conn, row["alert_key"], [url], last["title"], last["body"], last["severity"], cfg)
        if ok and not store.is_active(conn, row["alert_key"]):
            store.mark_sent(conn, row["alert_key"], last["kind"])
            _log(conn, Alert(last["kind"], row["alert_key"], last["severity"], last["title"], last["body"]),
                 last["title"], last["body"], "sent", 1)
        out.append((row["alert_key"], destination_label(row["destination_id"], urls), ok))
    return out


def undelivered(conn: Connection, cfg: GradientConfig) -> list[dict]:
    """Destinations still missing an alert (failed with a retry scheduled, or gave_up), labelled for `status`."""
    urls = alert_urls(cfg)
    return [{**row, "destination": destination_label(row["destination_id"], urls)} for row in store.undelivered(conn)]


def deliver_unrecorded(alert: Alert, cfg: GradientConfig) -> bool:
    """Deliver `alert` now, without dedupe or a record (for when the alert store is unavailable, e.g. its lock
    held past the wait while an emergency stop must still say STILL OPEN). Scrubbed like every alert."""
    urls = alert_urls(cfg)
    if not urls:
        log.error("alert %s not delivered: %s is empty", alert.key, cfg.alerts.urls_env_var)
        return False
    return _deliver(None, alert.key, urls, scrub(alert.title, urls), scrub(alert.body, urls), alert.severity, cfg)


def _log(conn, alert: Alert, title: str, body: str, status: str, n: int) -> None:
    store.log_attempt(conn, alert.key, alert.kind, alert.severity, title, body, status, n)


def _rate_limited(conn, alert: Alert, cfg: GradientConfig) -> bool:
    if alert.severity == "failure" or cfg.alerts.min_interval_s <= 0:
        return False
    last = store.last_sent_at(conn, alert.kind)
    return last is not None and (utcnow() - last).total_seconds() < cfg.alerts.min_interval_s


def raise_alert(conn: Connection, alert: Alert, cfg: GradientConfig) -> Delivery:
    """Send `alert` unless its key is already active (dedupe) or its kind is rate-limited. Never raises on delivery.
    Due retries of earlier alerts to destinations that failed go out first (`retry_due`)."""
    try:
        retry_due(conn, cfg)
    except Exception as err:  # noqa: BLE001 - a retry problem must not stop this alert
        log.error("alert delivery retries failed: %s: %s", type(err).__name__, err)
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
    ok = _deliver(conn, alert.key, urls, title, body, alert.severity, cfg)
    status = "sent" if ok else "failed"
    _log(conn, alert, title, body, status, len(urls))
    if ok:
        store.mark_sent(conn, alert.key, alert.kind)
    return Delivery(alert.key, status, title, body)


DEAD_MAN_KEY = "dead_man_not_armed"


def dead_man_condition(conn: Connection, cfg: GradientConfig, result) -> Delivery | None:
    """Alert when a rebalance could not arm the venue's dead-man switch (`scheduleCancel` refused — e.g. the 10 per
    UTC day limit or the volume gate — or the request failed): once, deduplicated in the book, until a later
    rebalance arms it again (which clears the condition). `result` is an `execution.runner.RebalanceResult`."""
    failures = list(getattr(result, "dead_man_failures", None) or [])
    if not failures:
        if getattr(result, "dead_man_armed", False):
            clear_alert(conn, DEAD_MAN_KEY)
        return None
    body = (f"Rebalance {result.rebalance_id} ({result.status}) ran WITHOUT the exchange's dead-man switch: "
            f"{failures[0]}" + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else "") + ".\n"
            "If the trading process dies mid-rebalance, resting orders stay on the book until cancelled by hand "
            "(`gradient-pipeline emergency-stop`). IOC orders are unaffected. Check the venue's scheduleCancel "
            "limits (10 triggers per UTC day; on mainnet $1M traded volume first).")
    return raise_alert(conn, Alert("dead_man", DEAD_MAN_KEY, "warning",
                                   "[gradient] dead-man switch NOT ARMED during a rebalance", body), cfg)
