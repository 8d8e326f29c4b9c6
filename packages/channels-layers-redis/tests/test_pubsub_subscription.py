"""The Pub/Sub layer's subscribed connection (pubsub._Subscription) over real Redis."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from channels_redis.pubsub import RedisPubSubChannelLayer

LayerMaker = Callable[..., RedisPubSubChannelLayer]


@pytest.fixture
def make_layer(made_layers: Any) -> LayerMaker:
    """Layers on the session server, closed after the test."""
    return functools.partial(made_layers, RedisPubSubChannelLayer)


async def receive(layer: RedisPubSubChannelLayer, channel: str, timeout: float = 5) -> Any:
    return await asyncio.wait_for(layer.receive(channel), timeout)


@pytest.mark.asyncio
@pytest.mark.parametrize("protocol", [2, 3])
async def test_every_reply_kind_in_both_protocols(
    make_layer: LayerMaker, redis_url: str, protocol: int
) -> None:
    # RESP3 delivers messages and confirmations as pushes, and answers the
    # flush barrier's PING with the bare token rather than a "pong" array.
    layer = make_layer(hosts=[{"address": redis_url, "protocol": protocol}])
    await layer.send("later.worker", {"type": "backlogged"})
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    await layer.send(channel, {"type": "direct"})
    assert await receive(layer, channel) == {"type": "direct"}
    await layer.group_send("room", {"type": "grouped"})
    assert await receive(layer, channel) == {"type": "grouped"}
    assert await receive(layer, "later.worker") == {"type": "backlogged"}
    await layer.send(channel, {"type": "dropped by the flush"})
    started = time.monotonic()
    await layer.flush()
    # The barrier got its answer: it did not wait out its 10 s timeout.
    assert time.monotonic() - started < 2
    await layer.send(channel, {"type": "after"})
    assert await receive(layer, channel) == {"type": "after"}


@pytest.mark.asyncio
async def test_a_long_backlog_comes_before_what_is_published_while_it_is_read(
    make_layer: LayerMaker, redis_url: str
) -> None:
    # More than one DRAIN call's worth of backlog, and a sender in another
    # thread (another event loop) publishing all along: its messages reach
    # the subscribed socket while the backlog is still being read.
    backlog, later = 2500, 500
    backlogged, go = threading.Event(), threading.Event()

    async def send_all() -> None:
        sender = RedisPubSubChannelLayer(hosts=[redis_url], capacity=10_000)
        try:
            await asyncio.gather(
                *(sender.send("big.queue", {"type": "n", "n": n}) for n in range(backlog))
            )
            backlogged.set()
            go.wait(10)
            for n in range(backlog, backlog + later):
                await sender.send("big.queue", {"type": "n", "n": n})
        finally:
            await sender.close_pools()

    thread = threading.Thread(target=asyncio.run, args=(send_all(),))
    thread.start()
    try:
        receiver = make_layer(capacity=10_000)
        assert await asyncio.to_thread(backlogged.wait, 10)
        first = asyncio.ensure_future(receive(receiver, "big.queue"))
        go.set()
        numbers = [(await first)["n"]]
        while len(numbers) < backlog + later:
            numbers.append((await receive(receiver, "big.queue"))["n"])
    finally:
        go.set()
        await asyncio.to_thread(thread.join, 20)
    assert numbers == list(range(backlog + later))
