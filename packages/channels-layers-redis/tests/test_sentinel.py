"""Both layers with a master found through Redis Sentinel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from channels_redis.core import RedisChannelLayer
from channels_redis.errors import RedisConnectionError
from channels_redis.pubsub import RedisPubSubChannelLayer


def sentinel_hosts(setup: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "sentinels": setup["sentinels"],
            "master_name": setup["master_name"],
            "sentinel_kwargs": {"socket_timeout": 2},
            "socket_timeout": 5,
        }
    ]


@pytest.mark.parametrize("layer_class", [RedisChannelLayer, RedisPubSubChannelLayer])
@pytest.mark.asyncio
async def test_channels_and_groups_through_sentinel(
    sentinel_setup: dict[str, Any],
    layer_class: type[Any],
    check_channels_and_groups: Callable[[Any, str], Awaitable[None]],
) -> None:
    prefix = f"sentinel-{layer_class.__name__}"
    layer = layer_class(hosts=sentinel_hosts(sentinel_setup), prefix=prefix)
    try:
        await check_channels_and_groups(layer, "sentinel")
        if layer_class is RedisChannelLayer:
            # The group lives on the master, and reaches the replica.
            group_key = f"sentinel-{layer_class.__name__}:gr:sentinel-group"
            assert group_key in sentinel_setup["master"].cli("--scan", "--pattern", "sentinel-*")
            for _ in range(50):
                if group_key in sentinel_setup["replica"].cli("--scan", "--pattern", "sentinel-*"):
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the group never reached the replica")
        await layer.flush()
    finally:
        await layer.close_pools()


@pytest.mark.asyncio
async def test_failover_to_the_replica(own_sentinel_setup: dict[str, Any]) -> None:
    setup = own_sentinel_setup
    layer = RedisChannelLayer(hosts=sentinel_hosts(setup))
    try:
        channel = await layer.new_channel()
        received: list[dict[str, Any]] = []

        async def consume() -> None:
            while True:
                received.append(await layer.receive(channel))

        consumer = asyncio.ensure_future(consume())
        await layer.send(channel, {"type": "before"})
        await asyncio.sleep(0.2)
        assert received == [{"type": "before"}]

        setup["master"].kill()
        deadline = time.monotonic() + 30
        while True:
            try:
                await layer.send(channel, {"type": "after"})
                break
            except RedisConnectionError:
                assert time.monotonic() < deadline, "no new master within 30 s"
                await asyncio.sleep(0.2)
        while len(received) < 2:
            assert time.monotonic() < deadline, received
            await asyncio.sleep(0.05)
        assert received[-1] == {"type": "after"}
        # The replica is the master now.
        assert "role:master" in setup["replica"].cli("INFO", "replication")
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
    finally:
        await layer.close_pools()
