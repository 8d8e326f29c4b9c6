"""channels_redis.utils: the helpers of channels_redis 4, for code that imports them."""

from __future__ import annotations

import asyncio
import binascii
from fractions import Fraction
from typing import Any

import pytest
import redis.asyncio
from redis.asyncio import ConnectionPool
from redis.asyncio.sentinel import SentinelConnectionPool

from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.utils import (
    _close_redis,
    _consistent_hash,
    _wrap_close,
    create_pool,
    decode_hosts,
)

# -- _consistent_hash -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ring_size", "index"),
    [
        # The values channels_redis's own tests pin down.
        ("key_one", 1, 0),
        ("key_two", 1, 0),
        ("key_one", 2, 1),
        ("key_two", 2, 0),
        ("key_one", 10, 6),
        ("key_two", 10, 4),
        (b"key_one", 10, 6),
        (b"key_two", 10, 4),
    ],
)
def test_consistent_hash_gives_channels_redis_shards(
    value: str | bytes, ring_size: int, index: int
) -> None:
    assert _consistent_hash(value, ring_size) == index


def test_consistent_hash_cuts_crc_positions_into_equal_slices() -> None:
    # Away from slice boundaries the float arithmetic cannot matter: the
    # index is the slice of 0-4095 that the low twelve bits of CRC-32 fall in.
    for ring_size in (2, 3, 5, 7, 16, 100):
        for number in range(500):
            name = f"chat.room-{number}"
            position = binascii.crc32(name.encode()) & 0xFFF
            exact = Fraction(position * ring_size, 4096)
            if exact.denominator == 1:
                continue  # on a boundary
            assert _consistent_hash(name, ring_size) == int(exact), (name, ring_size)
            assert _consistent_hash(name, ring_size) == _consistent_hash(name.encode(), ring_size)


def test_layers_consistent_hash_is_the_same(redis_url: str) -> None:
    hosts = [redis_url] * 3
    for layer_class in (RedisChannelLayer, RedisPubSubChannelLayer):
        layer = layer_class(hosts=hosts)
        assert layer.ring_size == 3
        for name in ("key_one", "key_two", "chat", "specific.ab12!"):
            assert layer.consistent_hash(name) == _consistent_hash(name, 3)


# -- decode_hosts -------------------------------------------------------------------


def test_decode_hosts_forms() -> None:
    assert decode_hosts(None) == [{"address": "redis://localhost:6379"}]
    assert decode_hosts([]) == [{"address": "redis://localhost:6379"}]
    options = {"address": "redis://r:6379/1", "password": "x"}
    decoded = decode_hosts(["redis://a:1/0", ("b", 2), ["c", 3], options, "unix:///tmp/redis.sock"])
    assert decoded == [
        {"address": "redis://a:1/0"},
        {"host": "b", "port": 2},
        {"host": "c", "port": 3},
        options,
        {"address": "unix:///tmp/redis.sock"},
    ]
    assert decoded[3] is options


@pytest.mark.parametrize("hosts", ["redis://localhost", b"redis://localhost"])
def test_decode_hosts_refuses_a_single_string(hosts: Any) -> None:
    with pytest.raises(ValueError, match="list"):
        decode_hosts(hosts)


def test_layers_expose_hosts_decoded(redis_url: str) -> None:
    for layer_class in (RedisChannelLayer, RedisPubSubChannelLayer):
        secret_url = redis_url.replace("redis://", "redis://:hunter2@")
        layer = layer_class(hosts=[secret_url, ("127.0.0.1", 1)])
        assert layer.hosts == [{"address": secret_url}, {"host": "127.0.0.1", "port": 1}]
        assert str(layer) == (
            f"{layer_class.__name__}(hosts=['{redis_url}', 'redis://127.0.0.1:1/0'])"
        )


# -- create_pool ----------------------------------------------------------------------


def test_create_pool_forms_without_layer_defaults() -> None:
    host = {"address": "redis://h:7000/2", "max_connections": 5}
    pool = create_pool(host)
    assert host == {"address": "redis://h:7000/2", "max_connections": 5}  # not modified
    assert pool.max_connections == 5
    kwargs = pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("h", 7000, 2)
    # Only the entry's options: none of the layers' timeouts.
    assert "socket_timeout" not in kwargs

    pool = create_pool({"host": "h", "port": 7001})
    assert (pool.connection_kwargs["host"], pool.connection_kwargs["port"]) == ("h", 7001)
    pool = create_pool({"address": ("h", 7002)})
    assert pool.connection_kwargs["port"] == 7002

    sentinel_pool = create_pool(
        {"sentinels": [("s", 26379)], "master_name": "mymaster", "sentinel_kwargs": {}}
    )
    assert isinstance(sentinel_pool, SentinelConnectionPool)
    assert sentinel_pool.service_name == "mymaster"


@pytest.mark.asyncio
async def test_create_pool_connects(redis_url: str) -> None:
    for host in decode_hosts([redis_url]):
        client = redis.asyncio.Redis(connection_pool=create_pool(host))
        await client.set("utils:test", b"1")
        assert await client.get("utils:test") == b"1"
        connections = list(client.connection_pool._available_connections)
        assert connections
        assert all(connection.is_connected for connection in connections)
        await _close_redis(client)
        # The pool was closed with the client.
        assert not any(connection.is_connected for connection in connections)


def test_layer_create_pool(redis_url: str) -> None:
    layer = RedisChannelLayer(hosts=[redis_url, {"host": "127.0.0.1", "port": 9}])
    assert isinstance(layer.create_pool(1), ConnectionPool)
    assert layer.create_pool(1).connection_kwargs["port"] == 9


# -- _wrap_close ------------------------------------------------------------------------


def test_wrap_close_flushes_the_loops_layer_once() -> None:
    flushed: list[str] = []

    class Inner:
        async def flush(self) -> None:
            flushed.append("flushed")

    class Proxy:
        def __init__(self) -> None:
            self._layers: dict[asyncio.AbstractEventLoop, Inner] = {}

    proxy = Proxy()
    loop = asyncio.new_event_loop()
    proxy._layers[loop] = Inner()
    original_close = loop.close
    _wrap_close(proxy, loop)
    loop.close()
    assert flushed == ["flushed"]
    assert proxy._layers == {}
    assert loop.is_closed()
    # The loop's own close() is back.
    assert loop.close == original_close
