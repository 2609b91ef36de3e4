"""Fault injection: make the next N matching API requests fail the way real networks and exchanges fail.

Kinds (`FAULT_KINDS`):

| kind | request processed? | what the client sees |
|---|---|---|
| `429` | no | HTTP 429, body `null` (SDK: `ClientError(429, None, 'null', ...)`) |
| `500`, `502` | no | HTTP 500 / 502 with a plain-text body (SDK: `ServerError`) |
| `timeout` | no | nothing for `hang_seconds` (longer than the client's timeout), then the connection drops |
| `drop` | no | the connection closes after the status line, before the body (requests: `ConnectionError`/`ChunkedEncodingError`) |
| `lost_response` | **yes** | HTTP 502 — e.g. the order *was* accepted but the client cannot know |
| `lost_response_drop` | **yes** | connection drop after processing |
| `lost_response_timeout` | **yes** | hang, then drop, after processing |

A fault matches every API request unless narrowed by `endpoint` (`"info"`/`"exchange"`), `info_type` (an /info
`type`) or `action_type` (an /exchange `action.type`). Faults are consumed in the order they were injected; the
operator endpoints under `/_local` are never faulted.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from dataclasses import asdict, dataclass

from starlette.responses import PlainTextResponse, Response

FAULT_KINDS = ("429", "500", "502", "timeout", "drop", "lost_response", "lost_response_drop", "lost_response_timeout")
DEFAULT_HANG_SECONDS = 10.0
_FAILURE = {"lost_response": "502", "lost_response_drop": "drop", "lost_response_timeout": "timeout"}


@dataclass
class Fault:
    id: int
    kind: str
    remaining: int
    endpoint: str | None = None
    info_type: str | None = None
    action_type: str | None = None
    hang_seconds: float = DEFAULT_HANG_SECONDS

    @property
    def processed_first(self) -> bool:
        """Lost-response faults run the real handler (state changes happen) before failing the response."""
        return self.kind.startswith("lost_response")

    @property
    def failure(self) -> str:
        return _FAILURE.get(self.kind, self.kind)

    def matches(self, endpoint: str, info_type: str | None, action_type: str | None) -> bool:
        if self.endpoint is not None and self.endpoint != endpoint:
            return False
        if self.info_type is not None and (endpoint != "info" or self.info_type != info_type):
            return False
        if self.action_type is not None and (endpoint != "exchange" or self.action_type != action_type):
            return False
        return True

    def as_dict(self) -> dict:
        return asdict(self)


class FaultInjector:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def inject(self, kind: str, count: int = 1, *, endpoint: str | None = None, info_type: str | None = None,
               action_type: str | None = None, hang_seconds: float | None = None) -> Fault:
        kind = str(kind)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if int(count) < 1:
            raise ValueError(f"fault count must be >= 1, got {count}")
        if endpoint not in (None, "info", "exchange"):
            raise ValueError(f"fault endpoint must be 'info' or 'exchange', got {endpoint!r}")
        if info_type is not None and action_type is not None:
            raise ValueError("a fault matches either an info_type or an action_type, not both")
        hang = DEFAULT_HANG_SECONDS if hang_seconds is None else float(hang_seconds)
        if hang < 0:
            raise ValueError(f"hang_seconds must be >= 0, got {hang}")
        fault = Fault(next(self._ids), kind, int(count), endpoint, info_type, action_type, hang)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, endpoint: str, info_type: str | None, action_type: str | None) -> Fault | None:
        """The first pending fault matching this request, with one use consumed; None if none matches."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(endpoint, info_type, action_type):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> list[dict]:
        with self._lock:
            return [f.as_dict() for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


class DroppedConnection(Response):
    """Sends the status line and headers (announcing a body) and then ends without the body; uvicorn closes the
    connection ("ASGI callable returned without completing response"), so the client sees a broken connection."""

    def __init__(self, delay_seconds: float = 0.0):
        super().__init__(status_code=200, media_type="application/json")
        self.delay_seconds = delay_seconds

    async def __call__(self, scope, receive, send) -> None:
        if self.delay_seconds:
            # Hang until the client gives up (its timeout closes the connection) or the hang ends; a server
            # shutdown cancels the hang quietly.
            try:
                await asyncio.wait_for(_until_disconnect(receive), self.delay_seconds)
                return
            except TimeoutError:
                pass
            except asyncio.CancelledError:
                return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"1024")]})


async def _until_disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class QuietIntentionalDrops(logging.Filter):
    """uvicorn logs every response that ends early as an error; here that only happens on purpose (a drop fault),
    so the message is noise. Installed on `uvicorn.error` by `server.py`."""

    MESSAGE = "ASGI callable returned without completing response."

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.MESSAGE


def install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, QuietIntentionalDrops) for f in logger.filters):
        logger.addFilter(QuietIntentionalDrops())


def failure_response(fault: Fault) -> Response:
    failure = fault.failure
    if failure == "429":
        return Response("null", status_code=429, media_type="application/json")
    if failure == "500":
        return PlainTextResponse("Internal Server Error", status_code=500)
    if failure == "502":
        return PlainTextResponse("Bad Gateway", status_code=502)
    if failure == "timeout":
        return DroppedConnection(delay_seconds=fault.hang_seconds)
    return DroppedConnection()
