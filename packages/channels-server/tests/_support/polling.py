"""Waiting on a condition from synchronous test code (real processes, files, sockets)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["TIMEOUT", "wait_for"]

#: Long enough for a worker process to start on a loaded two-core CI machine.
TIMEOUT = 30


def wait_for(condition: Callable[[], Any], timeout: float = TIMEOUT, what: str = "") -> Any:
    """Poll *condition* every 20 ms until it returns something true; that value.

    Raises :class:`TimeoutError` naming *what* (or the condition) after *timeout*.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what or condition}")
        time.sleep(0.02)
