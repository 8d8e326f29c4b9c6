"""RedisChannelLayer on a three-master Redis Cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from redis.crc import key_slot

from channels_redis.core import RedisChannelLayer
from channels_redis.errors import InvalidConfiguration
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.topology import CLUSTER_BUCKETS
from channels_testing.conformance import ChannelLayerConformance, LayerFactory


class TestClusterConformance(ChannelLayerConformance):
    expiry_wait = 1.5

    @pytest.fixture
    def make_channel_layer(self, cluster_urls: list[str]) -> LayerFactory:
        return lambda **options: RedisChannelLayer(hosts=cluster_urls, **options)


@pytest_asyncio.fixture
async def layer(cluster_urls: list[str]) -> AsyncIterator[RedisChannelLayer]:
    layer = RedisChannelLayer(hosts=cluster_urls)
    yield layer
    await layer.close_pools()


def node_keys(nodes: list[Any]) -> list[list[str]]:
    return [node.cli("--scan").split() for node in nodes]


@pytest.mark.asyncio
async def test_cluster_is_detected_from_one_node(cluster_nodes: list[Any]) -> None:
    # One node is enough: the others are discovered.
    layer = RedisChannelLayer(hosts=[cluster_nodes[1].url])
    try:
        await layer.send("cluster.detected", {"type": "c"})
        assert await asyncio.wait_for(layer.receive("cluster.detected"), 5) == {"type": "c"}
        assert layer._topology is not None
        assert layer._topology.cluster
        assert len(layer._topology.shards) == CLUSTER_BUCKETS
    finally:
        await layer.flush()
        await layer.close_pools()


@pytest.mark.asyncio
async def test_every_key_has_a_hash_tag_and_keys_spread_over_the_nodes(
    layer: RedisChannelLayer, cluster_nodes: list[Any]
) -> None:
    channels = [await layer.new_channel() for _ in range(3)]
    for number in range(60):
        await layer.send(f"spread.{number}", {"type": "s"})
        await layer.group_add("spread-group", f"spread.{number}")
    for channel in channels:
        await layer.send(channel, {"type": "p"})
    stored = node_keys(cluster_nodes)
    assert all(stored), f"some node holds nothing: {stored}"
    for keys in stored:
        for key in keys:
            assert key.startswith("asgi:{"), key
            assert "}:" in key, key
    # A process's queue and its counts share a slot (one script touches both).
    process_keys = [key for keys in stored for key in keys if key.endswith("!")]
    assert {key_slot(key.encode()) for key in process_keys} == {key_slot(process_keys[0].encode())}
    assert len(process_keys) == 2  # ch: and cnt:


@pytest.mark.asyncio
async def test_group_send_is_one_round_trip_per_node(
    layer: RedisChannelLayer, cluster_nodes: list[Any]
) -> None:
    members = [f"member.{number}" for number in range(40)] + [
        await layer.new_channel() for _ in range(5)
    ]
    for member in members:
        await layer.group_add("cluster-room", member)
    for node in cluster_nodes:
        node.cli("CONFIG", "RESETSTAT")
    await layer.group_send("cluster-room", {"type": "everyone"})
    calls = []
    for node in cluster_nodes:
        stats = node.cli("INFO", "commandstats")
        line = next((row for row in stats.splitlines() if row.startswith("cmdstat_evalsha:")), "")
        calls.append(int(line.split("calls=")[1].split(",")[0]) if line else 0)
    # One script per bucket, the buckets of a node sent to it together.
    assert sum(calls) == CLUSTER_BUCKETS
    assert all(calls), calls
    received = await asyncio.gather(
        *(asyncio.wait_for(layer.receive(member), 5) for member in members)
    )
    assert received == [{"type": "everyone"}] * len(members)


@pytest.mark.asyncio
async def test_flush_empties_every_node(layer: RedisChannelLayer, cluster_nodes: list[Any]) -> None:
    for number in range(30):
        await layer.send(f"flushed.{number}", {"type": "f"})
    await layer.flush()
    assert node_keys(cluster_nodes) == [[], [], []]


@pytest.mark.asyncio
async def test_pubsub_layer_refuses_a_cluster(cluster_urls: list[str]) -> None:
    layer = RedisPubSubChannelLayer(hosts=cluster_urls)
    with pytest.raises(InvalidConfiguration, match="does not support Redis Cluster"):
        await layer.send("x", {"type": "x"})


def test_mixing_cluster_and_plain_hosts_is_refused(cluster_urls: list[str]) -> None:
    from asgiref.sync import async_to_sync

    layer = RedisChannelLayer(
        hosts=[cluster_urls[0], {"address": "redis://127.0.0.1:1", "cluster": False}]
    )
    with pytest.raises(InvalidConfiguration, match="every entry of hosts must be a node"):
        async_to_sync(layer.send)("x", {"type": "x"})
