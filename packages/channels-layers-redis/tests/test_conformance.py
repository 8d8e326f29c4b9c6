"""The channel-layer conformance suite of channels-testing, against both Redis layers."""

from __future__ import annotations

from typing import Any

import pytest

from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_testing.conformance import ChannelLayerConformance, LayerFactory


class TestRedisChannelLayerConformance(ChannelLayerConformance):
    # Deadlines are kept in milliseconds, so an expired message is gone at once.
    expiry_wait = 1.5

    @pytest.fixture
    def make_channel_layer(self, redis_url: str) -> LayerFactory:
        return lambda **options: RedisChannelLayer(hosts=[redis_url], **options)


class TestShardedRedisChannelLayerConformance(ChannelLayerConformance):
    expiry_wait = 1.5

    @pytest.fixture
    def make_channel_layer(self, shard_urls: list[str]) -> LayerFactory:
        def make(**options: Any) -> RedisChannelLayer:
            return RedisChannelLayer(hosts=shard_urls, **options)

        return make


class TestRedisPubSubChannelLayerConformance(ChannelLayerConformance):
    expiry_wait = 1.5

    @pytest.fixture
    def make_channel_layer(self, redis_url: str) -> LayerFactory:
        return lambda **options: RedisPubSubChannelLayer(hosts=[redis_url], **options)


class TestShardedRedisPubSubChannelLayerConformance(ChannelLayerConformance):
    expiry_wait = 1.5
    # The channel and the group live on different shards, so a direct send and
    # a group_send arrive over two subscriber connections in either order.
    direct_then_group_ordered = False

    @pytest.fixture
    def make_channel_layer(self, shard_urls: list[str]) -> LayerFactory:
        return lambda **options: RedisPubSubChannelLayer(hosts=shard_urls, **options)
