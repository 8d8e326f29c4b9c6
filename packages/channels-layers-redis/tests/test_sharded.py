"""RedisChannelLayer sharded over two Redis servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio

from channels_redis.core import RedisChannelLayer
from channels_redis.sharding import shard_index
from channels_redis.wire import queue_name


@pytest.fixture
def shard_clients(shard_urls: list[str], clients_of: Any) -> list[redis.asyncio.Redis]:
    clients: list[redis.asyncio.Redis] = clients_of(shard_urls)
    return clients


@pytest_asyncio.fixture
async def layer(shard_urls: list[str]) -> AsyncIterator[RedisChannelLayer]:
    layer = RedisChannelLayer(hosts=shard_urls)
    yield layer
    await layer.close_pools()


async def keys_of(client: redis.asyncio.Redis) -> set[str]:
    return {key.decode() async for key in client.scan_iter("*")}


@pytest.mark.asyncio
async def test_channels_spread_over_the_shards_by_consistent_hash(
    layer: RedisChannelLayer, shard_clients: list[redis.asyncio.Redis]
) -> None:
    names = [f"spread.{number}" for number in range(40)]
    for name in names:
        await layer.send(name, {"type": "s"})
    stored = [await keys_of(client) for client in shard_clients]
    assert all(stored), "every shard holds some channels"
    for name in names:
        assert f"asgi:ch:{name}" in stored[shard_index(name, 2)]
    for name in names:
        assert await asyncio.wait_for(layer.receive(name), 5) == {"type": "s"}


@pytest.mark.asyncio
async def test_group_members_live_with_their_queues(
    layer: RedisChannelLayer, shard_clients: list[redis.asyncio.Redis]
) -> None:
    members = [f"member.{number}" for number in range(20)]
    specific = [await layer.new_channel() for _ in range(3)]
    for member in [*members, *specific]:
        await layer.group_add("spread-group", member)
    for member in members:
        client = shard_clients[shard_index(member, 2)]
        assert await client.zscore("asgi:gr:spread-group", member) is not None
    process_shard = shard_index(queue_name(specific[0]), 2)
    assert await shard_clients[process_shard].zcard("asgi:gr:spread-group") >= 3

    for client in shard_clients:
        await client.config_resetstat()
    await layer.group_send("spread-group", {"type": "everyone"})
    for client in shard_clients:
        stats: dict[str, Any] = await client.info("commandstats")
        # One script per shard, with every member of the shard in it.
        assert stats["cmdstat_evalsha"]["calls"] == 1
    for member in [*members, *specific]:
        assert await asyncio.wait_for(layer.receive(member), 5) == {"type": "everyone"}


@pytest.mark.asyncio
async def test_process_queue_and_its_counts_share_a_shard(
    layer: RedisChannelLayer, shard_clients: list[redis.asyncio.Redis]
) -> None:
    channels = [await layer.new_channel() for _ in range(10)]
    for channel in channels:
        await layer.send(channel, {"type": "p"})
    process = queue_name(channels[0])
    assert all(queue_name(channel) == process for channel in channels)
    client = shard_clients[shard_index(process, 2)]
    assert await client.llen(f"asgi:ch:{process}") == 10
    assert await client.hlen(f"asgi:cnt:{process}") == 10
    other = shard_clients[1 - shard_index(process, 2)]
    assert not await other.exists(f"asgi:ch:{process}")


@pytest.mark.asyncio
async def test_flush_empties_every_shard(
    layer: RedisChannelLayer, shard_clients: list[redis.asyncio.Redis]
) -> None:
    for number in range(20):
        await layer.send(f"flushed.{number}", {"type": "f"})
    await layer.flush()
    for client in shard_clients:
        assert await keys_of(client) == set()
