"""The channel-layer conformance suite of channels-testing, against both Redis layers."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_testing.conformance import ChannelLayerConformance, LayerFactory


class _RedisConformance(ChannelLayerConformance):
    """The suite against :attr:`layer_class`, on one server or two shards."""

    layer_class: ClassVar[type[RedisChannelLayer | RedisPubSubChannelLayer]]
    sharded: ClassVar[bool] = False
    # Deadlines are kept in milliseconds, so an expired message is gone at once.
    expiry_wait = 1.5

    @pytest.fixture
    def make_channel_layer(self, request: pytest.FixtureRequest) -> LayerFactory:
        hosts: list[str] = (
            request.getfixturevalue("shard_urls")
            if self.sharded
            else [request.getfixturevalue("redis_url")]
        )

        def make(**options: Any) -> RedisChannelLayer | RedisPubSubChannelLayer:
            return self.layer_class(hosts=hosts, **options)

        return make


class TestRedisChannelLayerConformance(_RedisConformance):
    layer_class = RedisChannelLayer


class TestShardedRedisChannelLayerConformance(_RedisConformance):
    layer_class = RedisChannelLayer
    sharded = True


class TestRedisPubSubChannelLayerConformance(_RedisConformance):
    layer_class = RedisPubSubChannelLayer


class TestShardedRedisPubSubChannelLayerConformance(_RedisConformance):
    layer_class = RedisPubSubChannelLayer
    sharded = True
    # The channel and the group live on different shards, so a direct send and
    # a group_send arrive over two subscriber connections in either order.
    direct_then_group_ordered = False
