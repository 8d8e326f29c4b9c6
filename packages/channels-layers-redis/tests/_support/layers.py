"""What the tests do with channel layers beside the one under test."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any


def send_from_another_thread(
    layer_class: Callable[..., Any], url: str, channel: str, count: int
) -> None:
    """Send *count* messages to *channel* from another thread, with a layer of
    its own, and wait for it: the calling thread's event loop is held meanwhile."""

    async def send_all() -> None:
        sender = layer_class(hosts=[url], capacity=10_000)
        old = [{"type": "old", "n": n} for n in range(count)]
        await asyncio.gather(*(sender.send(channel, message) for message in old))
        await sender.close_pools()

    thread = threading.Thread(target=asyncio.run, args=(send_all(),))
    thread.start()
    thread.join()


def logged_errors(records: list[logging.LogRecord]) -> str:
    """The errors channels_redis logged among *records*, one after another ("" if none)."""
    return "\n".join(
        f"{record.getMessage()}\n{record.exc_text or ''}"
        for record in records
        if record.name.startswith("channels_redis") and record.levelno >= logging.ERROR
    )
