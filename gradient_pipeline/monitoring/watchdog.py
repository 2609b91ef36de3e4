"""`gradient-pipeline watchdog`: is the drawdown check still running? Run it from cron, outside Dagster.

The drawdown sensor runs inside the Dagster daemon, and so do the run-failure alerts: if the daemon dies, nothing
in it can say so. The watchdog reads the check's heartbeat (`monitoring/heartbeat.py`) and:

- if the last *successful* drawdown evaluation is older than `risk.watchdog_max_age_s` (or there never was one),
  it alerts "drawdown check STALE" (once until it recovers; delivered even if the alert store is locked) and exits 1;
- otherwise it clears that alert, pings the optional dead-man URL (healthchecks.io-style: a plain GET to
  `--ping-url` or `$GRADIENT_DEADMAN_URL`; if the pings stop, that service alerts — e.g. when the whole machine
  is down), and exits 0.

    */5 * * * * cd /srv/gradient && uv run gradient-pipeline watchdog >> logs/watchdog.log 2>&1
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass

from gradient_pipeline.config import GradientConfig
from gradient_pipeline.monitoring.heartbeat import read_heartbeat

log = logging.getLogger(__name__)

DEADMAN_URL_ENV_VAR = "GRADIENT_DEADMAN_URL"
ALERT_KEY = "watchdog_stale"


@dataclass
class WatchdogResult:
    ok: bool
    message: str
    age_s: float | None = None
    pinged: bool | None = None  # None: no dead-man URL configured
    alert_status: str | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def staleness(last_ok_at: dt.datetime | None, now: dt.datetime, max_age_s: float) -> tuple[bool, float | None]:
    """(fresh?, age in seconds) of the last successful evaluation (pure)."""
    if last_ok_at is None:
        return False, None
    age = (now - last_ok_at).total_seconds()
    return age <= max_age_s, age


def ping(url: str, timeout_s: float = 10.0) -> bool:
    """GET the dead-man URL; True on HTTP 2xx. Never raises (the URL is not logged: it is a secret of sorts)."""
    import requests

    try:
        return requests.get(url, timeout=timeout_s).ok
    except requests.RequestException as err:
        log.error("dead-man ping failed: %s", type(err).__name__)
        return False


def _alert(cfg: GradientConfig, db_path: str, stale: bool, message: str) -> str | None:
    from gradient_pipeline.monitoring.alerts import Alert, clear_alert, deliver_unrecorded, raise_alert
    from gradient_pipeline.book import connect

    alert = Alert(ALERT_KEY, ALERT_KEY, "failure", "[gradient] drawdown check STALE — the stop may be blind",
                  message + "\nIs the Dagster daemon running (`gradient-pipeline ui` / the service)? Until the check "
                  "runs again a drawdown would NOT flatten the book.")
    try:
        with connect(db_path) as conn:
            if stale:
                return raise_alert(conn, alert, cfg).status
            clear_alert(conn, ALERT_KEY)
            return None
    except Exception as err:  # noqa: BLE001 - the book is unreachable: the alert matters more than its record
        log.error("watchdog alert not recorded (%s)", type(err).__name__)
        if stale:  # the alert matters more than its bookkeeping
            return "sent (unrecorded)" if deliver_unrecorded(alert, cfg) else "failed (unrecorded)"
        return None


def _retry_alert_deliveries(cfg: GradientConfig, db_path: str) -> None:
    """Each cron tick retries alert destinations whose backoff has passed (monitoring/alerts.py `retry_due`), so a
    dead destination is retried even when nothing else raises an alert."""
    from gradient_pipeline.book import connect
    from gradient_pipeline.monitoring.alerts import retry_due

    try:
        with connect(db_path) as conn:
            for key, where, ok in retry_due(conn, cfg):
                log.warning("alert %s retried to %s: %s", key, where, "delivered" if ok else "failed again")
    except Exception as err:  # noqa: BLE001 - the staleness check below matters more
        log.error("alert delivery retries not run: %s: %s", type(err).__name__, err)


def run_watchdog(cfg: GradientConfig, db_path: str, max_age_s: float | None = None, ping_url: str | None = None,
                 now: dt.datetime | None = None) -> WatchdogResult:
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    _retry_alert_deliveries(cfg, db_path)
    max_age_s = cfg.risk.watchdog_max_age_s if max_age_s is None else max_age_s
    ping_url = ping_url or os.environ.get(DEADMAN_URL_ENV_VAR) or None
    try:
        hb = read_heartbeat(db_path)
    except Exception as err:  # noqa: BLE001 - corrupt record or book unreachable: stale
        hb, note = None, f" ({err})"
    else:
        note = ""
    fresh, age = staleness(hb.last_ok_at if hb else None, now, max_age_s)
    if not fresh:
        if hb is None:
            msg = f"the drawdown check has never evaluated (no heartbeat beside {db_path}){note}"
        elif hb.last_ok_at is None:
            msg = f"the drawdown check has never evaluated successfully; last attempt {hb.evaluated_at} UTC: {hb.reason}"
        else:
            msg = (f"last successful drawdown evaluation {age:.0f}s ago at {hb.last_ok_at} UTC (limit {max_age_s:g}s)"
                   + (f"; last attempt {hb.evaluated_at} UTC: {hb.level}: {hb.reason}" if hb.level == "cannot_evaluate"
                      else ""))
        status = _alert(cfg, db_path, True, msg)
        return WatchdogResult(False, "STALE: " + msg, age, None, status)
    _alert(cfg, db_path, False, "")
    pinged = ping(ping_url) if ping_url else None
    msg = f"ok: last drawdown evaluation {age:.0f}s ago ({hb.level}: {hb.reason})"
    if pinged is False:
        msg += "; dead-man ping FAILED"
    return WatchdogResult(True, msg, age, pinged)
