"""The public names of the package, in __all__ and sorted."""

from __future__ import annotations

import importlib
import importlib.metadata

import pytest

import channels_redis

MODULES = [
    "channels_redis",
    "channels_redis.batching",
    "channels_redis.commands",
    "channels_redis.core",
    "channels_redis.errors",
    "channels_redis.hosts",
    "channels_redis.layer_base",
    "channels_redis.link_pool",
    "channels_redis.local_buffer",
    "channels_redis.per_loop",
    "channels_redis.pubsub",
    "channels_redis.redis_clients",
    "channels_redis.scripts",
    "channels_redis.serializers",
    "channels_redis.sharding",
    "channels_redis.topology",
    "channels_redis.utils",
    "channels_redis.wire",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_complete(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported, key=str.casefold) or exported == sorted(exported)
    for member in exported:
        assert hasattr(module, member), f"{name}.{member} is in __all__ but missing"


def test_package_exports_every_public_member() -> None:
    public = {
        member
        for member in dir(channels_redis)
        if not member.startswith("_")
        and member != "annotations"  # from __future__ import annotations
        and not isinstance(getattr(channels_redis, member), type(channels_redis))
    }
    assert public <= set(channels_redis.__all__), public - set(channels_redis.__all__)
    # The version the code says is the one the distribution was installed as.
    assert channels_redis.__version__ == importlib.metadata.version("channels-layers-redis")


def test_import_paths_of_channels_redis_4_keep_working() -> None:
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer
    from channels_redis.serializers import BaseMessageSerializer, registry

    assert RedisChannelLayer.extensions == ["groups", "flush"]
    assert RedisPubSubChannelLayer.extensions == ["groups", "flush"]
    assert callable(registry.register_serializer)
    assert issubclass(registry.get_serializer("msgpack").__class__, BaseMessageSerializer)
    from channels_redis.serializers import SerializerDoesNotExist
    from channels_redis.utils import (  # noqa: F401
        _close_redis,
        _consistent_hash,
        _wrap_close,
        create_pool,
        decode_hosts,
    )

    assert issubclass(SerializerDoesNotExist, KeyError)
