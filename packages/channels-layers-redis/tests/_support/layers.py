"""What the tests do with channel layers beside the one under test."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio

L = TypeVar("L")


class MadeLayers:
    """Makes layers on *hosts* (unless a call gives its own) and closes them all.

    ``made(RedisChannelLayer, capacity=5)`` makes a layer; :meth:`close` (at
    the end of the test) closes every one made, each within 10 seconds.
    """

    def __init__(self, hosts: Sequence[Any]) -> None:
        self.hosts = list(hosts)
        self.made: list[Any] = []

    def __call__(self, layer_class: Callable[..., L], **options: Any) -> L:
        options.setdefault("hosts", self.hosts)
        layer = layer_class(**options)
        self.made.append(layer)
        return layer

    async def close(self) -> None:
        for layer in self.made:
            # Never raises, whatever the test left in Redis.
            await asyncio.wait_for(layer.close_pools(), 10)


async def check_channels_and_groups(layer: Any, name: str) -> None:
    """A group message to a new channel, and a message to the channel
    ``<name>.plain``, both arrive (the group is ``<name>-group``)."""
    channel = await layer.new_channel()
    await layer.group_add(f"{name}-group", channel)
    await layer.group_send(f"{name}-group", {"type": f"via.{name}"})
    assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": f"via.{name}"}
    await layer.send(f"{name}.plain", {"type": "plain"})
    assert await asyncio.wait_for(layer.receive(f"{name}.plain"), 5) == {"type": "plain"}


async def close_clients(clients: Sequence[redis.asyncio.Redis]) -> None:
    for client in clients:
        await client.aclose()


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
