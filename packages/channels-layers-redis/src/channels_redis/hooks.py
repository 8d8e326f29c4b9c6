"""``on_disconnect`` and ``on_reconnect``: how both layers report an outage.

Each is ``None``, a message type, or a callable. A message type is sent as
``{"type": <type>}`` to every channel being received in the event loop (a
consumer handles it like any message); a callable is called with no
arguments, and awaited if it returns an awaitable. Both layers call them
once per server: ``on_disconnect`` when its connection is lost,
``on_reconnect`` once it is back and what the layer keeps there is restored
(subscriptions, or group memberships after a restart that lost them).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from .errors import InvalidConfiguration
from .local_buffer import LocalBuffer
from .wire import now_ms

__all__ = ["ConnectionCallback", "announce", "check_callbacks"]

logger = logging.getLogger("channels_redis")

#: on_disconnect / on_reconnect: a message type, or a callable.
ConnectionCallback = str | Callable[[], Any] | None


def check_callbacks(on_disconnect: ConnectionCallback, on_reconnect: ConnectionCallback) -> None:
    """Raise :class:`~channels_redis.errors.InvalidConfiguration` for a bad callback."""
    for name, callback in (("on_disconnect", on_disconnect), ("on_reconnect", on_reconnect)):
        if callback is not None and not isinstance(callback, str) and not callable(callback):
            raise InvalidConfiguration(
                f"{name} must be a message type (str) or a callable, not {callback!r}"
            )


def announce(
    callback: ConnectionCallback,
    buffer: LocalBuffer,
    expiry_ms: int,
    loop: asyncio.AbstractEventLoop,
    tasks: set[asyncio.Task[None]],
) -> None:
    """Run *callback*: a message to every channel received in *buffer*, or a call.

    An awaitable a callable returns is awaited in a task added to *tasks*
    (whose owner cancels it when closing).
    """
    if callback is None:
        return
    if isinstance(callback, str):
        deadline = now_ms() + expiry_ms
        for channel, box in list(buffer.mailboxes.items()):
            if box.waiters or box.messages:
                buffer.put(channel, deadline, {"type": callback})
        return
    try:
        result = callback()
    except Exception:
        logger.exception("The on_disconnect/on_reconnect callback failed")
        return
    if inspect.isawaitable(result):
        task = loop.create_task(_await_callback(result))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def _await_callback(result: Any) -> None:
    try:
        await result
    except Exception:
        logger.exception("The on_disconnect/on_reconnect callback failed")
