"""Run one function in several threads released at the same instant (races that need real contention)."""

from __future__ import annotations

import threading
from collections.abc import Callable


def all_at_once(n: int, fn: Callable[[], object], timeout_s: float = 60.0) -> list[BaseException]:
    """Call `fn` in `n` threads that start together (a barrier); return what they raised, empty if nothing."""
    start = threading.Barrier(n)
    errors: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 — returned to the test, which asserts on it
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout_s)
    return errors
