"""What can go wrong when talking to Hyperliquid, as a few typed errors, and how raw failures are classified.

The SDK surfaces failures as `hyperliquid.utils.error.ClientError` (HTTP 4xx; a 429 arrives with body `null`),
`ServerError` (5xx) and `requests` exceptions (timeouts, refused connections). `classify` maps those onto
`ErrorKind`, which decides the retry policy in `client.py`:

- RATE_LIMITED (429): the exchange refused the request before acting on it, so retrying is always safe.
- TRANSIENT (timeout, connection error, 5xx): retried for reads (`/info`) only. A write (`/exchange`) may have been
  applied even though no answer came back, so the caller must check (e.g. `orderStatus` by cloid) instead.
- CLIENT (other 4xx): the request itself is wrong; retrying cannot help.
- OTHER: anything else (a bug, a KeyError in the SDK, …) propagates unchanged.

Every error raised to callers derives from `ExchangeError` and says what was asked (request type, coin) and why.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import requests
from hyperliquid.utils.error import ClientError, ServerError

from gradient_pipeline.venue.errors import ActionRefusedError, VenueError  # noqa: F401 - re-exported


class ExchangeError(VenueError):
    """Base class for every failure of the exchange adapter."""


class ExchangeRequestError(ExchangeError):
    """The exchange rejected the request (HTTP 4xx other than 429): fix the request, don't retry it."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


class RateLimitedError(ExchangeError):
    """HTTP 429 kept coming back after every retry the configuration allows."""


class ExchangeUnavailableError(ExchangeError):
    """Timeout, connection failure or HTTP 5xx (after retries, for reads).

    `may_have_executed` is True for writes (`/exchange`): the action may have reached the matching engine even
    though no answer came back, so look it up before sending it again.
    """

    def __init__(self, message: str, may_have_executed: bool = False):
        super().__init__(message)
        self.may_have_executed = may_have_executed


# ActionRefusedError is venue-neutral (venue/errors.py): re-exported here for the adapter's callers.


class WireFormatError(ExchangeError, ValueError):
    """A response does not have the shape the wire parser expects; the message names the request, item and field."""


class UnknownCoinError(ExchangeError, KeyError):
    """The coin is not in the exchange's perp universe (names are case-sensitive, e.g. `kPEPE`)."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


# A connection dropped mid-body surfaces as ChunkedEncodingError, which is not a requests ConnectionError.
_NETWORK_ERRORS = (
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
)


class ErrorKind(enum.Enum):
    RATE_LIMITED = "rate_limited"
    TRANSIENT = "transient"
    CLIENT = "client"
    OTHER = "other"


def classify(exc: BaseException) -> ErrorKind:
    """Which retry policy applies to a raw failure raised while sending a request."""
    if isinstance(exc, ClientError):
        return ErrorKind.RATE_LIMITED if exc.status_code == 429 else ErrorKind.CLIENT
    if isinstance(exc, ServerError):
        return ErrorKind.TRANSIENT
    if isinstance(exc, _NETWORK_ERRORS):
        return ErrorKind.TRANSIENT
    return ErrorKind.OTHER


def retry_after_s(exc: BaseException) -> float | None:
    """The server's `Retry-After` (seconds) on a 429, if it sent one.

    The SDK stores response headers in `header` for JSON error bodies but in `error_data` when the body is
    `null` or plain text (its constructor arguments are shifted in that branch), so look in both.
    """
    if not isinstance(exc, ClientError):
        return None
    for candidate in (exc.header, exc.error_data):
        if isinstance(candidate, Mapping) or hasattr(candidate, "get"):
            try:
                value = candidate.get("Retry-After") or candidate.get("retry-after")
            except Exception:  # noqa: BLE001 - odd header containers are simply ignored
                value = None
            if value is not None:
                try:
                    return max(0.0, float(value))
                except (TypeError, ValueError):
                    return None
    return None


def describe_failure(exc: BaseException) -> str:
    """A one-line, secret-free description of a raw failure (status and server message)."""
    if isinstance(exc, ClientError):
        return f"HTTP {exc.status_code}: {exc.error_message!s}"[:500]
    if isinstance(exc, ServerError):
        return f"HTTP {exc.status_code}: {exc.message!s}"[:500]
    if isinstance(exc, requests.exceptions.Timeout):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        return f"connection failed ({type(exc).__name__}: {str(exc)[:200]})"
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def describe_request(url_path: str, body: Any) -> str:
    """Name a request for error messages without echoing signatures or other payload details."""
    if not isinstance(body, Mapping):
        return url_path
    if url_path == "/exchange":
        action = body.get("action")
        kind = action.get("type") if isinstance(action, Mapping) else None
        return f"/exchange {kind or '?'}"
    kind = body.get("type", "?")
    req = body.get("req") if isinstance(body.get("req"), Mapping) else body
    parts = [f"/info {kind}"]
    if isinstance(req, Mapping):
        if req.get("coin") is not None:
            parts.append(f"coin={req['coin']}")
        if req.get("interval") is not None:
            parts.append(f"interval={req['interval']}")
    return " ".join(parts)
