"""Data the layers did not write, in the keys and Pub/Sub channels they read.

Another program, another serializer, another encryption key, or someone with
redis-cli may put anything where a layer reads. Each bad message is dropped
with one warning that names its channel; the receiver waiting on that channel
gets the next good message, and every other channel of the layer is served
as before. Keys of the wrong type or with junk in them make a method raise
this package's errors at most, never stop a loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
import pytest
import redis.asyncio

from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer
from channels_redis.errors import RedisCommandError
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.wire import now_ms, queue_name

Layer = RedisChannelLayer | RedisPubSubChannelLayer

LAYERS = {"list": RedisChannelLayer, "pubsub": RedisPubSubChannelLayer}


@pytest.fixture(params=["one server", "two shards"])
def urls(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "one server":
        return [request.getfixturevalue("redis_url")]
    urls: list[str] = request.getfixturevalue("shard_urls")
    return urls


@pytest.fixture
def servers(urls: list[str], clients_of: Any) -> list[redis.asyncio.Redis]:
    """Plain clients of every server the layers use, to write what they did not."""
    clients: list[redis.asyncio.Redis] = clients_of(urls)
    return clients


@pytest.fixture
def make_layer(urls: list[str], made_layers: Any) -> Callable[..., Layer]:
    """``make_layer("list" or "pubsub")`` on *urls*; closing never raises, whatever was stored."""

    def make(kind: str, **options: Any) -> Layer:
        layer: Layer = made_layers(LAYERS[kind], hosts=urls, **options)
        return layer

    return make


def dropped(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "channels_redis"
        and record.levelno == logging.WARNING
        and record.getMessage().startswith("Dropped")
    ]


async def wait_subscribed(servers: list[redis.asyncio.Redis], name: str) -> None:
    for _ in range(200):
        for server in servers:
            counts = await server.pubsub_numsub(name)
            if counts and counts[0][1]:
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"nobody subscribed to {name}")


def far() -> int:
    return now_ms() + 60_000


# What lands in the channel's list (or Pub/Sub channel): by hand, or by a
# layer whose settings differ. {channel} is the receiving channel.
RAW: dict[str, Callable[[str], bytes]] = {
    "junk written by hand": lambda channel: b"not a message at all",
    "an expired element for a channel elsewhere": lambda channel: b"1:!elsewhere\nx",
    "an element for another process's channel": lambda channel: (
        b"%d:!specific.0a1b__1!x\n%b" % (far(), msgpack.packb({"type": "stolen"}))
    ),
    "a payload that is not a dict": lambda channel: (
        b"%d:%b\n%b" % (far(), b"!" + channel.encode() if "!" in channel else b"", msgpack.packb(5))
    ),
    "a payload that is not msgpack": lambda channel: (
        b"%d:%b\n\xc1\xc1" % (far(), b"!" + channel.encode() if "!" in channel else b"")
    ),
}
FOREIGN_LAYERS: dict[str, dict[str, Any]] = {
    "a message of another serializer": {"serializer_format": "json"},
    "a message encrypted with another key": {"symmetric_encryption_keys": ["another key"]},
}


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["list", "pubsub"])
@pytest.mark.parametrize("target", ["ordinary", "process-specific"])
@pytest.mark.parametrize("bad", [*RAW, *FOREIGN_LAYERS])
async def test_a_bad_message_is_dropped_with_one_warning_and_the_receiver_gets_the_next(
    kind: str,
    target: str,
    bad: str,
    make_layer: Callable[..., Layer],
    servers: list[redis.asyncio.Redis],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="channels_redis")
    layer = make_layer(kind)
    channel = await layer.new_channel() if target == "process-specific" else "hostile.worker"
    other_specific = await layer.new_channel("other")
    queue = queue_name(channel)
    waiting = asyncio.ensure_future(layer.receive(channel))
    # Other consumers of the same layer, receiving all along.
    others = [asyncio.ensure_future(layer.receive(name)) for name in (other_specific, "calm")]
    await asyncio.sleep(0.05)

    if bad in RAW:
        element = RAW[bad](channel)
        if kind == "list":
            for server in servers:
                await server.rpush(f"asgi:ch:{queue}", element)
        else:
            await wait_subscribed(servers, f"asgi:pub:{queue}")
            for server in servers:
                await server.publish(f"asgi:pub:{queue}", element)
    else:
        foreign = make_layer(kind, **FOREIGN_LAYERS[bad])
        await foreign.send(channel, {"type": "foreign"})

    for _ in range(200):
        if dropped(caplog):
            break
        await asyncio.sleep(0.01)
    await layer.send(channel, {"type": "good"})
    assert await asyncio.wait_for(waiting, 5) == {"type": "good"}
    warnings = dropped(caplog)
    assert len(warnings) == 1, warnings
    assert repr(channel) in warnings[0] or repr(queue) in warnings[0], warnings

    # The layer's other channels were served all along, and still are.
    await layer.send(other_specific, {"type": "other"})
    await layer.send("calm", {"type": "calm"})
    assert await asyncio.wait_for(asyncio.gather(*others), 5) == [
        {"type": "other"},
        {"type": "calm"},
    ]
    await layer.send(channel, {"type": "again"})
    assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": "again"}


async def write_everywhere(
    servers: list[redis.asyncio.Redis], write: Callable[[redis.asyncio.Redis], Awaitable[Any]]
) -> None:
    for server in servers:
        await write(server)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["list", "pubsub"])
async def test_a_count_that_is_not_a_number_counts_as_zero(
    kind: str, make_layer: Callable[..., Layer], servers: list[redis.asyncio.Redis]
) -> None:
    layer = make_layer(kind, capacity=2)
    channel = await layer.new_channel()
    queue = queue_name(channel)
    field = channel[: channel.index("!") + 1]

    async def spoil(server: redis.asyncio.Redis) -> None:
        await server.hset(f"asgi:cnt:{queue}", field, "many")
        await server.hset("asgi:cnt:counted.worker", "counted.worker", "lots")
        await server.pexpire(f"asgi:cnt:{queue}", 60_000)
        await server.pexpire("asgi:cnt:counted.worker", 60_000)

    await write_everywhere(servers, spoil)
    for target in (channel, "counted.worker"):
        await layer.send(target, {"type": "one"})
        await layer.send(target, {"type": "two"})
        with pytest.raises(ChannelFull):
            await layer.send(target, {"type": "three"})
        assert await asyncio.wait_for(layer.receive(target), 5) == {"type": "one"}
        assert await asyncio.wait_for(layer.receive(target), 5) == {"type": "two"}


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["list", "pubsub"])
@pytest.mark.parametrize("spoiled", ["queue", "counter"])
async def test_a_key_of_another_type_fails_only_its_own_send(
    kind: str,
    spoiled: str,
    make_layer: Callable[..., Layer],
    servers: list[redis.asyncio.Redis],
) -> None:
    layer = make_layer(kind)
    bad = await layer.new_channel("bad")
    good = await layer.new_channel("good")
    targets = [bad, "bad.worker"]
    if kind == "pubsub" and spoiled == "queue":
        # The Pub/Sub layer writes a channel's list (its backlog) only while
        # nobody listens, as to this channel; the process-specific one is
        # subscribed and never uses it.
        targets = ["bad.worker"]
    if kind == "list" and spoiled == "counter":
        targets = [bad]  # the list layer counts an ordinary channel by its length
    for name in targets:
        prefix = "asgi:ch:" if spoiled == "queue" else "asgi:cnt:"
        key = prefix + queue_name(name)
        await write_everywhere(servers, lambda server, key=key: server.set(key, "by hand"))
    # Sent together, they share one script call: only the spoiled ones fail.
    results = await asyncio.gather(
        *(layer.send(target, {"type": "lost"}) for target in targets),
        layer.send(good, {"type": "fine"}),
        layer.send("good.worker", {"type": "fine"}),
        return_exceptions=True,
    )
    for result in results[: len(targets)]:
        assert isinstance(result, RedisCommandError), results
        assert "holds a value of another type" in str(result)
    assert results[len(targets) :] == [None, None]
    assert await asyncio.wait_for(layer.receive(good), 5) == {"type": "fine"}
    assert await asyncio.wait_for(layer.receive("good.worker"), 5) == {"type": "fine"}


@pytest.mark.asyncio
async def test_bad_group_members_are_skipped_and_the_others_get_the_message(
    make_layer: Callable[..., Layer],
    servers: list[redis.asyncio.Redis],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="channels_redis")
    layer = make_layer("list")
    members = [await layer.new_channel(), await layer.new_channel(), "room.worker"]
    for member in members:
        await layer.group_add("room", member)
    process = queue_name(members[0])
    score = (int(now_ms() / 1000) << 21) + 100

    async def spoil(server: redis.asyncio.Redis) -> None:
        # Names the layer never adds: they would break the shared element.
        await server.zadd(
            "asgi:gr:room",
            {
                f"{process[:-1]}__1!a,{members[0]}": score,
                f"{process[:-1]}__2!a\nb": score,
                "broken.worker": score,
                "junk-score": 0,
            },
        )
        # An ordinary member whose list is not a list.
        await server.set("asgi:ch:broken.worker", "by hand")

    await write_everywhere(servers, spoil)
    await layer.group_send("room", {"type": "hello"})
    received = await asyncio.wait_for(
        asyncio.gather(*(layer.receive(member) for member in members)), 5
    )
    assert received == [{"type": "hello"}] * 3
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1, skipped
    assert "'room'" in skipped[0]


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["list", "pubsub"])
async def test_a_group_key_of_another_type_is_a_layer_error(
    kind: str, make_layer: Callable[..., Layer], servers: list[redis.asyncio.Redis]
) -> None:
    layer = make_layer(kind)
    channel = await layer.new_channel()
    await write_everywhere(servers, lambda server: server.set("asgi:gr:spoiled", "by hand"))
    if kind == "list":
        with pytest.raises(RedisCommandError, match="'spoiled'"):
            await layer.group_add("spoiled", channel)
        with pytest.raises(RedisCommandError, match="'spoiled'"):
            await layer.group_send("spoiled", {"type": "x"})
    else:
        # The Pub/Sub layer keeps no group keys: it does not notice.
        await layer.group_add("spoiled", channel)
        await layer.group_send("spoiled", {"type": "x"})
        assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": "x"}
    await layer.group_add("fine", channel)
    await layer.group_send("fine", {"type": "fine"})
    assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": "fine"}


@pytest.mark.asyncio
async def test_a_bad_publish_to_a_group_is_dropped_and_the_group_goes_on(
    make_layer: Callable[..., Layer],
    servers: list[redis.asyncio.Redis],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="channels_redis")
    layer = make_layer("pubsub")
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    waiting = asyncio.ensure_future(layer.receive(channel))
    for element in (b"junk", b"%d:\n%b" % (far(), msgpack.packb([1, 2]))):
        for server in servers:
            await server.publish("asgi:pubgr:room", element)
    await layer.group_send("room", {"type": "good"})
    assert await asyncio.wait_for(waiting, 5) == {"type": "good"}
    warnings = dropped(caplog)
    assert len(warnings) == 2, warnings
    assert "'room'" in warnings[0]
    assert repr(channel) in warnings[1]


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["list", "pubsub"])
async def test_a_list_of_another_type_is_reported_once_and_read_once_it_is_fixed(
    kind: str,
    make_layer: Callable[..., Layer],
    servers: list[redis.asyncio.Redis],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="channels_redis")
    layer = make_layer(kind)
    await write_everywhere(servers, lambda server: server.set("asgi:ch:spoiled.worker", "x"))
    spoiled = asyncio.ensure_future(layer.receive("spoiled.worker"))
    others = [await layer.new_channel(), "calm.worker"]
    for _ in range(300):
        if any("spoiled.worker" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.01)
    reports = [r.getMessage() for r in caplog.records if "spoiled.worker" in r.getMessage()]
    assert len(reports) == 1, reports
    # Every other channel is served meanwhile.
    for name in others:
        await layer.send(name, {"type": "calm"})
        assert await asyncio.wait_for(layer.receive(name), 5) == {"type": "calm"}
    assert not spoiled.done()
    await write_everywhere(servers, lambda server: server.delete("asgi:ch:spoiled.worker"))
    await layer.send("spoiled.worker", {"type": "fixed"})
    assert await asyncio.wait_for(spoiled, 10) == {"type": "fixed"}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
