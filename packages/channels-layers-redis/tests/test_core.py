"""RedisChannelLayer against a real Redis: its arguments and what it stores."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
import redis.asyncio
from asgiref.sync import async_to_sync

from channels.exceptions import ChannelFull
from channels.exceptions import MessageTooLarge as ChannelsMessageTooLarge
from channels_redis.core import DEFAULT_MAX_MESSAGE_SIZE, RedisChannelLayer
from channels_redis.errors import InvalidConfiguration, MessageTooLarge
from channels_redis.serializers import BaseMessageSerializer, registry

LayerMaker = Callable[..., RedisChannelLayer]


@pytest.fixture
def make_layer(made_layers: Any) -> LayerMaker:
    """Layers on the session server, closed after the test."""
    return functools.partial(made_layers, RedisChannelLayer)


async def receive(layer: RedisChannelLayer, channel: str, timeout: float = 5) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def command_calls(client: redis.asyncio.Redis) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT."""
    stats = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


# -- arguments -----------------------------------------------------------------


def test_defaults() -> None:
    layer = RedisChannelLayer()
    assert layer.prefix == "asgi"
    assert layer.expiry == 60
    assert layer.group_expiry == 86400
    assert layer.capacity == 100
    assert layer.random_prefix_length == 12
    assert len(layer.client_prefix) == 12
    assert re.fullmatch("[0-9a-f]+", layer.client_prefix)
    assert layer.serializer_format == "msgpack"
    assert layer.max_message_size == DEFAULT_MAX_MESSAGE_SIZE
    assert layer.extensions == ["groups", "flush"]
    # hosts as channels_redis decodes it.
    assert layer.hosts == [{"address": "redis://localhost:6379"}]
    assert layer.ring_size == 1


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"hosts": "redis://localhost"}, ValueError, "wrap it in a list"),
        ({"group_expiry": 0}, ValueError, "group_expiry must be a positive"),
        ({"expiry": -1}, ValueError, "expiry must be a positive"),
        ({"capacity": 0}, ValueError, "capacity must be at least 1"),
        ({"capacity": 1.5}, TypeError, "capacity must be an integer"),
        ({"group_expiry": "1"}, TypeError, "group_expiry must be a number"),
        ({"prefix": ""}, InvalidConfiguration, "prefix must be a non-empty string"),
        ({"prefix": "a{b}"}, InvalidConfiguration, "without braces"),
        ({"random_prefix_length": 2}, InvalidConfiguration, "between 4 and 40"),
        ({"random_prefix_length": "8"}, InvalidConfiguration, "must be an integer"),
        ({"max_message_size": 0}, InvalidConfiguration, "max_message_size must be a positive"),
        ({"serializer_format": "yaml"}, InvalidConfiguration, "Unknown serializer_format 'yaml'"),
        (
            {"channel_capacity": {"x.*": 0}},
            ValueError,
            r"channel_capacity\[.x\.\*.\] must be at least 1",
        ),
        ({"symmetric_encryption_keys": "secret"}, InvalidConfiguration, "not a single key"),
    ],
)
def test_invalid_arguments(options: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        RedisChannelLayer(**options)


def test_configured_by_import_path(redis_url: str) -> None:
    from django.utils.module_loading import import_string

    backend = import_string("channels_redis.core.RedisChannelLayer")
    assert backend is RedisChannelLayer
    layer = backend(hosts=[redis_url], prefix="configured", capacity=7)
    assert layer.capacity == 7


@pytest.mark.asyncio
async def test_host_forms(make_layer: LayerMaker, redis_server: Any) -> None:
    socket_path = str(redis_server.directory / "redis.sock")
    for hosts in (
        [redis_server.url],
        [("127.0.0.1", redis_server.port)],
        [{"address": redis_server.url, "max_connections": 20}],
        [{"address": ("127.0.0.1", redis_server.port), "socket_timeout": 20}],
        [f"unix://{socket_path}"],
        [{"path": socket_path}],
    ):
        layer = make_layer(hosts=hosts)
        await layer.send("hosts.test", {"type": "hosts", "hosts": repr(hosts)})
        assert await receive(layer, "hosts.test") == {"type": "hosts", "hosts": repr(hosts)}
        await layer.close_pools()


@pytest.mark.asyncio
async def test_prefix_separates_layers(
    make_layer: LayerMaker, redis_client: redis.asyncio.Redis
) -> None:
    first, second = make_layer(prefix="first"), make_layer(prefix="second")
    await first.send("shared.name", {"type": "from.first"})
    await second.send("shared.name", {"type": "from.second"})
    await first.group_add("room", "shared.name")
    keys = sorted(key.decode() for key in await redis_client.keys("*"))
    assert keys == ["first:ch:shared.name", "first:gr:room", "second:ch:shared.name"]
    assert await receive(second, "shared.name") == {"type": "from.second"}
    assert await receive(first, "shared.name") == {"type": "from.first"}
    # flush() leaves other prefixes alone.
    await second.send("shared.name", {"type": "kept"})
    await first.flush()
    assert [key.decode() for key in await redis_client.keys("*")] == ["second:ch:shared.name"]


@pytest.mark.asyncio
async def test_keys_expire_with_their_messages(
    make_layer: LayerMaker, redis_client: redis.asyncio.Redis
) -> None:
    layer = make_layer(expiry=30, group_expiry=300)
    await layer.send("ttl.test", {"type": "t"})
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "t"})
    await layer.group_add("ttl-group", channel)
    assert 30_000 <= await redis_client.pttl("asgi:ch:ttl.test") <= 31_000
    process = channel.split("__")[0] + "!"
    assert 30_000 <= await redis_client.pttl(f"asgi:ch:{process}") <= 31_000
    assert 30_000 <= await redis_client.pttl(f"asgi:cnt:{process}") <= 31_000
    assert 299_000 <= await redis_client.pttl("asgi:gr:ttl-group") <= 300_000


@pytest.mark.asyncio
async def test_group_member_capacity_comes_from_channel_capacity(make_layer: LayerMaker) -> None:
    layer = make_layer(capacity=10, channel_capacity={"small.*": 1})
    await layer.group_add("caps", "small.one")
    await layer.group_add("caps", "large.one")
    for number in range(3):
        await layer.group_send("caps", {"type": "g", "n": number})
    assert await receive(layer, "small.one") == {"type": "g", "n": 0}
    for number in range(3):
        assert await receive(layer, "large.one") == {"type": "g", "n": number}
    with pytest.raises(asyncio.TimeoutError):
        await receive(layer, "small.one", timeout=0.3)


# -- new_channel -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_new_channel_names(make_layer: LayerMaker) -> None:
    layer = make_layer(random_prefix_length=8)
    names = [await layer.new_channel() for _ in range(3)]
    process = layer.client_prefix
    assert len(process) == 8
    for number, name in enumerate(names, start=1):
        assert re.fullmatch(rf"specific\.{process}__{number}![0-9a-f]{{12}}", name), name
    assert (await layer.new_channel("custom")).startswith(f"custom.{process}__")
    assert (await layer.new_channel("custom.")).startswith(f"custom.{process}__")


@pytest.mark.asyncio
async def test_one_blocking_reader_serves_every_consumer_of_a_process(
    make_layer: LayerMaker, redis_client: redis.asyncio.Redis
) -> None:
    layer = make_layer()
    channels = [await layer.new_channel() for _ in range(30)]
    waiting = [asyncio.ensure_future(receive(layer, channel)) for channel in channels]
    await asyncio.sleep(0.2)
    info = await redis_client.info("clients")
    assert info["blocked_clients"] == 1
    for index, channel in enumerate(channels):
        await layer.send(channel, {"type": "own", "index": index})
    assert [message["index"] for message in await asyncio.gather(*waiting)] == list(range(30))


@pytest.mark.asyncio
async def test_group_send_stores_one_element_per_process(
    make_layer: LayerMaker, redis_client: redis.asyncio.Redis
) -> None:
    layer = make_layer()
    members = [await layer.new_channel() for _ in range(1000)]
    for member in members:
        await layer.group_add("crowd", member)
    await layer.group_add("crowd", "ordinary.member")
    await layer.group_send("crowd", {"type": "crowd.hello"})
    process = members[0].split("__")[0] + "!"
    assert await redis_client.llen(f"asgi:ch:{process}") == 1
    assert await redis_client.hlen(f"asgi:cnt:{process}") == 1000
    received = await asyncio.gather(*(receive(layer, member) for member in members))
    assert received == [{"type": "crowd.hello"}] * 1000
    assert await receive(layer, "ordinary.member") == {"type": "crowd.hello"}
    # Received messages are counted back: nothing is counted any more.
    for _ in range(50):
        if not await counted(redis_client, f"asgi:cnt:{process}"):
            break
        await asyncio.sleep(0.02)
    assert not await counted(redis_client, f"asgi:cnt:{process}")


async def counted(client: redis.asyncio.Redis, key: str) -> dict[bytes, int]:
    """The channels a counter hash counts messages for (fields above zero)."""
    return {field: int(value) for field, value in (await client.hgetall(key)).items() if int(value)}


@pytest.mark.asyncio
async def test_counts_at_zero_stay_until_the_hash_is_large(
    make_layer: LayerMaker, redis_client: redis.asyncio.Redis
) -> None:
    """A channel's count at zero is kept (the next message updates it rather than
    creating it) until the process's hash grows past 4096 fields; then every
    field at zero goes at once, so channels that came and went leave nothing."""
    layer = make_layer()
    channels = [await layer.new_channel() for _ in range(4200)]
    key = f"asgi:cnt:{channels[0].split('__')[0]}!"
    for start in range(0, 4000, 500):
        batch = channels[start : start + 500]
        await asyncio.gather(*(layer.send(channel, {"type": "one"}) for channel in batch))
        await asyncio.gather(*(receive(layer, channel) for channel in batch))
    for _ in range(100):
        if not await counted(redis_client, key):
            break
        await asyncio.sleep(0.02)
    assert await redis_client.hlen(key) == 4000
    assert not await counted(redis_client, key)
    # 200 more channels, one still holding a message: past 4096 fields, the
    # zeros are swept and only the channel with something unreceived stays.
    await asyncio.gather(*(layer.send(channel, {"type": "one"}) for channel in channels[4000:]))
    await asyncio.gather(*(receive(layer, channel) for channel in channels[4000:4199]))
    for _ in range(100):
        if await redis_client.hlen(key) == 1:
            break
        await asyncio.sleep(0.02)
    assert await counted(redis_client, key) == {channels[4199].split("!")[0].encode() + b"!": 1}
    assert await redis_client.hlen(key) == 1


@pytest.mark.asyncio
async def test_channel_full_frees_up_when_received(make_layer: LayerMaker) -> None:
    layer = make_layer(capacity=2)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "a"})
    await layer.send(channel, {"type": "b"})
    with pytest.raises(ChannelFull, match=re.escape(channel)):
        await layer.send(channel, {"type": "c"})
    # The consumer keeps up: its receive loop is running now.
    assert await receive(layer, channel) == {"type": "a"}
    await layer.send(channel, {"type": "c"})
    with pytest.raises(ChannelFull):
        await layer.send(channel, {"type": "d"})
    assert await receive(layer, channel) == {"type": "b"}
    assert await receive(layer, channel) == {"type": "c"}
    await layer.send(channel, {"type": "d"})
    assert await receive(layer, channel) == {"type": "d"}


# -- messages ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_message_too_large_names_size_and_limit(make_layer: LayerMaker) -> None:
    layer = make_layer(max_message_size=1000)
    await layer.group_add("big", "big.member")
    for call in (
        lambda message: layer.send("big.channel", message),
        lambda message: layer.group_send("big", message),
    ):
        with pytest.raises(MessageTooLarge) as raised:
            await call({"type": "big", "data": b"x" * 2000})
        assert isinstance(raised.value, ChannelsMessageTooLarge)
        assert raised.value.limit == 1000
        assert raised.value.size > 2000
        assert f"{raised.value.size} bytes" in str(raised.value)
        assert "limit of 1000 bytes" in str(raised.value)
    # Just under the limit is fine.
    await layer.send("big.channel", {"type": "big", "data": b"x" * 900})
    assert (await receive(layer, "big.channel"))["data"] == b"x" * 900


@pytest.mark.asyncio
async def test_default_limit_and_no_limit(make_layer: LayerMaker) -> None:
    layer = make_layer()
    with pytest.raises(MessageTooLarge, match=f"limit of {DEFAULT_MAX_MESSAGE_SIZE} bytes"):
        await layer.send("huge", {"type": "huge", "data": b"x" * (3 * 1024 * 1024)})
    unlimited = make_layer(max_message_size=None)
    await unlimited.send("huge", {"type": "huge", "data": b"x" * (3 * 1024 * 1024)})
    assert len((await receive(unlimited, "huge"))["data"]) == 3 * 1024 * 1024


@pytest.mark.asyncio
async def test_unserializable_values_name_the_key(make_layer: LayerMaker) -> None:
    layer = make_layer()
    await layer.group_add("g", "member")
    with pytest.raises(TypeError, match=r"key 'payload\.when' holds a value of type datetime"):
        await layer.send(
            "c", {"type": "t", "payload": {"when": __import__("datetime").datetime.now()}}
        )
    with pytest.raises(TypeError, match=r"key 'items\[1\]' holds a value of type builtins\.object"):
        await layer.group_send("g", {"type": "t", "items": [1, object()]})


@pytest.mark.asyncio
async def test_json_serializer_stores_readable_json(
    make_layer: LayerMaker, redis_client: redis.asyncio.Redis
) -> None:
    layer = make_layer(serializer_format="json")
    await layer.send("json.test", {"type": "j", "data": b"\x00", "n": 1})
    (element,) = await redis_client.lrange("asgi:ch:json.test", 0, -1)
    assert element.endswith(b'{"type":"j","data":"\xef\xbf\xbfbAA==","n":1}')
    assert await receive(layer, "json.test") == {"type": "j", "data": b"\x00", "n": 1}


@pytest.mark.asyncio
async def test_msgpack_is_the_default_format(
    make_layer: LayerMaker, redis_client: redis.asyncio.Redis
) -> None:
    layer = make_layer()
    await layer.send("mp.test", {"type": "m"})
    (element,) = await redis_client.lrange("asgi:ch:mp.test", 0, -1)
    assert msgpack.unpackb(element.split(b"\n", 1)[1]) == {"type": "m"}


@pytest.mark.asyncio
async def test_custom_serializer_through_the_registry(make_layer: LayerMaker) -> None:
    class Upper(BaseMessageSerializer):
        def as_bytes(self, message: dict[str, Any]) -> bytes:
            return msgpack.packb(
                {k: v.upper() if isinstance(v, str) else v for k, v in message.items()}
            )

        def from_bytes(self, data: bytes) -> dict[str, Any]:
            result: dict[str, Any] = msgpack.unpackb(data)
            return result

    registry.register_serializer("test-upper", Upper)
    layer = make_layer(serializer_format="test-upper")
    await layer.send("custom.test", {"type": "shout", "text": "hello"})
    assert await receive(layer, "custom.test") == {"type": "SHOUT", "text": "HELLO"}


# -- encryption ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_encrypted_messages_and_key_rotation(
    make_layer: LayerMaker, redis_client: redis.asyncio.Redis
) -> None:
    old = make_layer(symmetric_encryption_keys=["old"])
    rotating = make_layer(symmetric_encryption_keys=["new", "old"])
    await old.send("secret.channel", {"type": "secret", "text": "attack at dawn"})
    (element,) = await redis_client.lrange("asgi:ch:secret.channel", 0, -1)
    assert b"attack at dawn" not in element
    assert b"secret" not in element.split(b"\n", 1)[1]
    # A layer that knows the old key still reads it ...
    assert await receive(rotating, "secret.channel") == {"type": "secret", "text": "attack at dawn"}
    # ... and its own messages, encrypted with the new key, reach new-key layers.
    new_only = make_layer(symmetric_encryption_keys=["new"])
    channel = await new_only.new_channel()
    await rotating.send(channel, {"type": "rotated"})
    assert await receive(new_only, channel) == {"type": "rotated"}


@pytest.mark.asyncio
async def test_message_with_an_unknown_key_is_dropped_with_a_warning(
    make_layer: LayerMaker, caplog: pytest.LogCaptureFixture, redis_client: redis.asyncio.Redis
) -> None:
    receiver = make_layer(symmetric_encryption_keys=["mine"])
    stranger = make_layer(symmetric_encryption_keys=["someone else's"])
    channel = await receiver.new_channel()
    caplog.set_level(logging.WARNING, logger="channels_redis")
    for layer_used in (receiver, stranger):
        await layer_used.group_add("mixed", channel)
    await stranger.send(channel, {"type": "unreadable"})
    await stranger.send("plain.channel", {"type": "unreadable"})
    await receiver.send(channel, {"type": "readable"})
    await receiver.send("plain.channel", {"type": "readable"})
    # The receive loops go on: the next message arrives.
    assert await receive(receiver, channel) == {"type": "readable"}
    assert await receive(receiver, "plain.channel") == {"type": "readable"}
    warnings = [record.getMessage() for record in caplog.records]
    assert sum("cannot be decrypted" in text for text in warnings) == 2, warnings
    # The dropped message no longer counts against the channel's capacity
    # (acknowledgements reach Redis a few milliseconds later).
    counts = f"asgi:cnt:{channel.split('__')[0]}!"
    for _ in range(100):
        if not await counted(redis_client, counts):
            break
        await asyncio.sleep(0.01)
    assert not await counted(redis_client, counts), await redis_client.hgetall(counts)
    small = make_layer(symmetric_encryption_keys=["mine"], capacity=1)
    await small.send(channel, {"type": "fits"})


# -- cancellation and unclaimed messages ----------------------------------------------


@pytest.mark.asyncio
async def test_unreceived_messages_of_ordinary_channels_go_back_to_redis(
    make_layer: LayerMaker,
) -> None:
    layer = make_layer()
    waiters = [asyncio.ensure_future(layer.receive("returned")) for _ in range(2)]
    await asyncio.sleep(0.1)  # the reader now blocks, asking Redis for two messages
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    other = make_layer()
    await other.send("returned", {"type": "r", "n": 1})
    await other.send("returned", {"type": "r", "n": 2})
    await asyncio.sleep(0.1)  # the cancelled receivers' reader has taken both
    await layer.close_pools()
    assert await receive(other, "returned") == {"type": "r", "n": 1}
    assert await receive(other, "returned") == {"type": "r", "n": 2}


# -- sync code and several event loops ---------------------------------------------


def test_from_sync_code_with_async_to_sync(redis_url: str) -> None:
    layer = RedisChannelLayer(hosts=[redis_url])
    for number in range(5):
        async_to_sync(layer.send)("sync.channel", {"type": "sync", "n": number})
    async_to_sync(layer.group_add)("sync-group", "sync.member")
    async_to_sync(layer.group_send)("sync-group", {"type": "group"})
    received = [async_to_sync(layer.receive)("sync.channel") for _ in range(5)]
    assert [message["n"] for message in received] == list(range(5))
    assert async_to_sync(layer.receive)("sync.member") == {"type": "group"}
    # Every async_to_sync call ran in a loop of its own, closed since: the
    # connections went with them (filterwarnings=error would catch a leak).
    assert layer._loops.loops() == []


def test_several_event_loops_at_once(redis_url: str) -> None:
    layer = RedisChannelLayer(hosts=[redis_url])
    results: dict[str, Any] = {}
    ready = threading.Barrier(2)

    def run(name: str, peer: str) -> None:
        async def main() -> None:
            channel = await layer.new_channel()
            results[name] = channel
            # Both names are known once both threads pass the barrier.
            await asyncio.to_thread(ready.wait)
            await layer.send(results[peer], {"type": "hello", "from": name})
            results[f"{name}-got"] = await receive(layer, channel)

        asyncio.run(main())

    threads = [
        threading.Thread(target=run, args=("one", "two")),
        threading.Thread(target=run, args=("two", "one")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert results["one-got"] == {"type": "hello", "from": "two"}
    assert results["two-got"] == {"type": "hello", "from": "one"}
    # Each loop read its own process queue.
    assert results["one"].split("__")[0] != results["two"].split("__")[0]


@pytest.mark.asyncio
async def test_close_pools_closes_connections(
    make_layer: LayerMaker, redis_client: redis.asyncio.Redis
) -> None:
    async def connected() -> int:
        clients: list[dict[str, Any]] = await redis_client.client_list()
        return len(clients)

    before = await connected()
    layer = make_layer()
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    await layer.send(channel, {"type": "x"})
    await waiting
    assert await connected() > before
    await layer.close_pools()
    assert await connected() == before
    # The layer still works afterwards, on new connections.
    await layer.send("after.close", {"type": "again"})
    assert await receive(layer, "after.close") == {"type": "again"}


# -- efficiency: round trips, cached scripts, no KEYS ------------------------------------


@pytest.mark.asyncio
async def test_one_round_trip_per_operation(
    make_layer: LayerMaker, redis_client: redis.asyncio.Redis
) -> None:
    layer = make_layer()
    channel = await layer.new_channel()
    await layer.send("warm.up", {"type": "w"})  # connects, loads the script cache
    await redis_client.config_resetstat()
    baseline = await command_calls(redis_client)

    for number in range(10):
        await layer.send("counted", {"type": "c", "n": number})
    calls = await command_calls(redis_client)
    assert calls["evalsha"] - baseline.get("evalsha", 0) == 10

    await redis_client.config_resetstat()
    for number in range(10):
        await layer.group_add("counted-group", f"member.{number}")
    await layer.group_add("counted-group", channel)
    await layer.group_discard("counted-group", "member.0")
    await layer.group_send("counted-group", {"type": "g"})
    calls = await command_calls(redis_client)
    # 11 group_add and 1 group_send scripts and 1 ZREM (scripts never ZREM);
    # the commands the scripts run count too, but no EVAL (script text) and
    # no KEYS.
    assert calls.get("evalsha") == 12
    assert calls.get("zrem") == 1
    assert "eval" not in calls
    assert "keys" not in calls


@pytest.mark.asyncio
async def test_concurrent_sends_share_round_trips(
    make_layer: LayerMaker, redis_client: redis.asyncio.Redis
) -> None:
    layer = make_layer(capacity=1000)
    await layer.send("warm.up", {"type": "w"})
    await redis_client.config_resetstat()
    await asyncio.gather(*(layer.send("burst", {"type": "b", "n": n}) for n in range(200)))
    calls = await command_calls(redis_client)
    assert calls["evalsha"] <= 4, calls
    received = [(await receive(layer, "burst"))["n"] for _ in range(200)]
    assert received == list(range(200))


@pytest.mark.asyncio
async def test_script_cache_flushed_falls_back_to_eval_once(
    make_layer: LayerMaker, redis_client: redis.asyncio.Redis
) -> None:
    layer = make_layer()
    await layer.send("warm.up", {"type": "w"})
    await redis_client.script_flush()
    await redis_client.config_resetstat()
    for number in range(5):
        await layer.send("reloaded", {"type": "r", "n": number})
    calls = await command_calls(redis_client)
    assert calls.get("eval") == 1
    assert calls.get("evalsha") == 5  # the first one answered NOSCRIPT
    assert [(await receive(layer, "reloaded"))["n"] for _ in range(5)] == list(range(5))


@pytest.mark.asyncio
async def test_flush_scans_instead_of_keys(
    make_layer: LayerMaker, redis_client: redis.asyncio.Redis
) -> None:
    layer = make_layer()
    for number in range(2500):
        await redis_client.set(f"asgi:ch:filler.{number}", b"x")
    await redis_client.set("unrelated", b"kept")
    await layer.group_add("g", "c")
    await redis_client.config_resetstat()
    await layer.flush()
    calls = await command_calls(redis_client)
    assert "keys" not in calls
    assert calls["scan"] >= 2
    assert await redis_client.keys("*") == [b"unrelated"]


# -- Redis older than 7.0 (no BLMPOP) ---------------------------------------------------


@pytest.mark.asyncio
async def test_works_without_blmpop(redis_without_blmpop: str) -> None:
    layer = RedisChannelLayer(hosts=[redis_without_blmpop])
    try:
        channels = [await layer.new_channel() for _ in range(3)]
        for channel in channels:
            await layer.group_add("old", channel)
        await layer.group_send("old", {"type": "old.redis"})
        for channel in channels:
            assert await receive(layer, channel) == {"type": "old.redis"}
        for number in range(3):
            await layer.send("old.channel", {"type": "n", "n": number})
        assert [(await receive(layer, "old.channel"))["n"] for _ in range(3)] == [0, 1, 2]
    finally:
        await layer.close_pools()


@pytest.mark.asyncio
async def test_close_pools_right_after_heavy_use_does_not_hang(make_layer: LayerMaker) -> None:
    # A cancellation that reaches a receive loop just as redis-py's own
    # timeouts expire can be swallowed; closing must not wait forever.
    current = asyncio.current_task()
    assert current is not None
    for _ in range(3):
        layer = make_layer()
        channel = await layer.new_channel()
        for number in range(300):
            await layer.send(channel, {"type": "n", "n": number})
            await layer.receive(channel)
        watchdog = asyncio.get_running_loop().call_later(10, current.cancel)
        try:
            await layer.close_pools()
        finally:
            watchdog.cancel()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "message",
    [
        {"type": "flat", "text": "hi", "n": 1, "ok": True, "none": None, "raw": b"\x00"},
        {"type": "nested", "items": [1, 2], "meta": {"tags": ["a"]}},
    ],
)
async def test_group_members_in_one_process_get_messages_of_their_own(
    make_layer: LayerMaker, message: dict[str, Any]
) -> None:
    layer = make_layer()
    members = [await layer.new_channel() for _ in range(3)]
    for member in members:
        await layer.group_add("copies", member)
    await layer.group_send("copies", message)
    first, second, third = [await receive(layer, member) for member in members]
    assert first == second == third == message
    first["type"] = "changed"
    if "items" in first:
        first["items"].append(3)
        first["meta"]["tags"].append("b")
    assert second == third == message
    assert second is not third


@pytest.mark.asyncio
async def test_flush_drops_messages_still_on_their_way(
    make_layer: LayerMaker,
    redis_url: str,
    send_while_loop_is_held: Callable[[Callable[..., Any], str, str, int], None],
) -> None:
    """Messages Redis handed to the receive loop before flush() but that were not
    yet read from its socket must not turn up after it."""
    receiver = make_layer(capacity=10_000)
    channel = await receiver.new_channel()
    await receiver.send(channel, {"type": "starts the receive loop"})
    assert await receive(receiver, channel) == {"type": "starts the receive loop"}
    send_while_loop_is_held(RedisChannelLayer, redis_url, channel, 300)
    await receiver.flush()
    await receiver.send(channel, {"type": "marker"})
    assert await receive(receiver, channel) == {"type": "marker"}
