"""Redis killed and restarted under running consumers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio
import redis.exceptions

from channels_redis.core import RedisChannelLayer
from channels_redis.errors import (
    InvalidConfiguration,
    RedisConnectionError,
    RedisLayerError,
    SendOutcomeUnknown,
)
from channels_redis.pubsub import RedisPubSubChannelLayer


async def send_until_accepted(
    layer: RedisChannelLayer, channel: str, message: dict[str, Any], within: float
) -> float:
    """Retry ``send()`` until Redis takes it; return how long that took."""
    started = time.monotonic()
    while True:
        try:
            await layer.send(channel, message)
        except RedisConnectionError:
            if time.monotonic() - started > within:
                raise
            await asyncio.sleep(0.05)
        else:
            return time.monotonic() - started


@pytest.mark.asyncio
async def test_consumers_receive_again_after_redis_restarts(
    restartable_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="channels_redis")
    layer = RedisChannelLayer(hosts=[restartable_redis.url])
    try:
        specific = await layer.new_channel()
        received: dict[str, list[dict[str, Any]]] = {specific: [], "worker.jobs": []}

        async def consume(channel: str) -> None:
            while True:
                received[channel].append(await layer.receive(channel))

        consumers = [asyncio.ensure_future(consume(channel)) for channel in received]
        for channel in received:
            await layer.send(channel, {"type": "before"})
        await asyncio.sleep(0.2)
        assert all(messages == [{"type": "before"}] for messages in received.values())

        restartable_redis.kill()
        # send() reports the outage with this package's exception.
        with pytest.raises(RedisConnectionError) as raised:
            await layer.send(specific, {"type": "during"})
        assert isinstance(raised.value, RedisLayerError)
        assert isinstance(raised.value, ConnectionError)
        assert not isinstance(raised.value, redis.exceptions.RedisError)
        with pytest.raises(RedisConnectionError):
            await layer.group_add("group", specific)
        await asyncio.sleep(1.0)  # the receive loops fail and back off meanwhile

        restartable_redis.start()
        for channel in received:
            took = await send_until_accepted(layer, channel, {"type": "after"}, within=5)
            assert took < 5
        deadline = time.monotonic() + 5
        while any(len(messages) < 2 for messages in received.values()):
            assert time.monotonic() < deadline, received
            await asyncio.sleep(0.05)
        assert all(messages[-1] == {"type": "after"} for messages in received.values())
        for consumer in consumers:
            consumer.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
    finally:
        await layer.close_pools()

    lost = [r for r in caplog.records if r.getMessage().startswith("Lost Redis")]
    back = [r for r in caplog.records if r.getMessage().startswith("Redis is back")]
    # One warning per receive loop for the whole outage, and one when it ends.
    assert len(lost) == 2, [r.getMessage() for r in lost]
    assert all(record.levelno == logging.WARNING for record in lost)
    assert len(back) == 2


@pytest.mark.asyncio
async def test_groups_deliver_after_a_restart_once_rejoined(restartable_redis: Any) -> None:
    # Redis without persistence forgets groups when it restarts; consumers
    # join again (as Channels consumers do on reconnect) and groups deliver.
    layer = RedisChannelLayer(hosts=[restartable_redis.url])
    try:
        channel = await layer.new_channel()
        await layer.group_add("room", channel)
        waiting = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0.1)
        restartable_redis.kill()
        await asyncio.sleep(0.3)
        restartable_redis.start()
        deadline = time.monotonic() + 5
        while True:
            try:
                await layer.group_add("room", channel)
                break
            except RedisConnectionError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        await layer.group_send("room", {"type": "room.back"})
        assert await asyncio.wait_for(waiting, 5) == {"type": "room.back"}
    finally:
        await layer.close_pools()


@pytest.mark.asyncio
async def test_send_to_an_unreachable_server_fails_fast() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more.
    layer = RedisChannelLayer(hosts=[("127.0.0.1", port)])
    started = time.monotonic()
    with pytest.raises(RedisConnectionError, match=f"127.0.0.1:{port}|Connection refused|connect"):
        await layer.send("nowhere", {"type": "x"})
    assert time.monotonic() - started < 3
    await layer.close_pools()


async def until_accepted(call: Callable[[], Awaitable[None]], within: float) -> None:
    """Retry *call* while Redis is unreachable."""
    deadline = time.monotonic() + within
    while True:
        try:
            await call()
            return
        except RedisConnectionError:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_groups_come_back_when_redis_restarts_without_its_data(
    restartable_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # restartable_redis runs with --save "" --appendonly no: a restart empties it.
    caplog.set_level(logging.WARNING, logger="channels_redis")
    url = restartable_redis.url
    events: list[str] = []
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        events.append("reconnect")
        reconnected.set()

    layer = RedisChannelLayer(
        hosts=[url], on_disconnect=lambda: events.append("disconnect"), on_reconnect=on_reconnect
    )
    notified = RedisChannelLayer(
        hosts=[url], on_disconnect="redis.disconnect", on_reconnect="redis.reconnect"
    )
    sender = RedisChannelLayer(hosts=[url])  # another process, in no group
    client = redis.asyncio.Redis.from_url(url)
    try:
        specific = await layer.new_channel()
        await layer.group_add("room", specific)
        await layer.group_add("room", "room.worker")
        await layer.group_add("left", specific)
        await layer.group_discard("left", specific)
        watcher = await notified.new_channel()
        await notified.group_add("room", watcher)
        score = await client.zscore("asgi:gr:room", specific)
        received: list[dict[str, Any]] = []

        async def consume() -> None:
            while True:
                received.append(await layer.receive(specific))

        consumer = asyncio.ensure_future(consume())
        await sender.group_send("room", {"type": "before"})
        assert await asyncio.wait_for(notified.receive(watcher), 5) == {"type": "before"}
        assert await asyncio.wait_for(layer.receive("room.worker"), 5) == {"type": "before"}
        watching = asyncio.ensure_future(notified.receive(watcher))

        restartable_redis.kill()
        assert await asyncio.wait_for(watching, 5) == {"type": "redis.disconnect"}
        watching = asyncio.ensure_future(notified.receive(watcher))
        await client.aclose()
        restartable_redis.start()
        client = redis.asyncio.Redis.from_url(url)

        # The layer's own group_send, retried until Redis takes it, reaches
        # its members: its new connection restored the groups first.
        await until_accepted(lambda: layer.group_send("room", {"type": "first"}), within=10)
        assert await asyncio.wait_for(layer.receive("room.worker"), 5) == {"type": "first"}
        # Any process's group_send, once the consumers' layers have reconnected.
        await asyncio.wait_for(reconnected.wait(), 10)
        assert await asyncio.wait_for(watching, 10) == {"type": "redis.reconnect"}
        await sender.group_send("room", {"type": "after"})
        message = await asyncio.wait_for(notified.receive(watcher), 5)
        if message == {"type": "first"}:  # if its layer had reconnected by then
            message = await asyncio.wait_for(notified.receive(watcher), 5)
        assert message == {"type": "after"}
        assert await asyncio.wait_for(layer.receive("room.worker"), 5) == {"type": "after"}
        deadline = time.monotonic() + 5
        while len(received) < 3:
            assert time.monotonic() < deadline, received
            await asyncio.sleep(0.02)
        assert received == [{"type": "before"}, {"type": "first"}, {"type": "after"}]
        assert events == ["disconnect", "reconnect"]
        # Restored as they were: same expiry; a group left is not rejoined.
        assert await client.zscore("asgi:gr:room", specific) == score
        assert not await client.exists("asgi:gr:left")
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
    finally:
        await client.aclose()
        for each in (layer, notified, sender):
            await each.close_pools()
    restored = [r.getMessage() for r in caplog.records if "restored" in r.getMessage()]
    assert len(restored) == 2, restored  # once per layer that had joined groups


LAYER_CLASSES = [RedisChannelLayer, RedisPubSubChannelLayer]


@pytest.mark.asyncio
@pytest.mark.parametrize("layer_class", LAYER_CLASSES)
async def test_a_send_redis_may_have_applied_says_so(
    restartable_redis: Any, layer_class: type[RedisChannelLayer]
) -> None:
    layer = layer_class(hosts=[{"address": restartable_redis.url, "socket_timeout": 0.5}])
    try:
        channel = await layer.new_channel()
        await layer.group_add("room", channel)
        await layer.send(channel, {"type": "warm"})
        await layer.group_send("room", {"type": "warm"})  # Redis knows the scripts now
        for _ in range(2):
            assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": "warm"}

        restartable_redis.freeze()
        try:
            # Both are written to Redis, which answers neither in time.
            results = await asyncio.gather(
                layer.send(channel, {"type": "frozen"}),
                layer.group_send("room", {"type": "frozen.group"}),
                return_exceptions=True,
            )
        finally:
            restartable_redis.thaw()
        for result in results:
            assert isinstance(result, SendOutcomeUnknown), results
            assert isinstance(result, RedisConnectionError)  # what callers caught before
            assert "may have been queued" in str(result)
            assert "twice" in str(result)

        # The layer recovers; the list layer's frozen messages were applied
        # after all (Redis read them when it went on): a retry would have
        # delivered them twice.
        await until_accepted(lambda: layer.send(channel, {"type": "after"}), within=10)
        received = []
        while not received or received[-1] != {"type": "after"}:
            received.append(await asyncio.wait_for(layer.receive(channel), 10))
        if layer_class is RedisChannelLayer:
            assert sorted(message["type"] for message in received) == [
                "after",
                "frozen",
                "frozen.group",
            ]
    finally:
        restartable_redis.thaw()
        await layer.close_pools()


@pytest.mark.asyncio
@pytest.mark.parametrize("layer_class", LAYER_CLASSES)
@pytest.mark.parametrize("fault", ["frozen", "killed"])
async def test_close_pools_is_bounded_when_redis_does_not_answer(
    restartable_redis: Any, layer_class: type[RedisChannelLayer], fault: str
) -> None:
    # No socket_timeout: only close_timeout bounds the wait.
    layer = layer_class(hosts=[{"address": restartable_redis.url, "socket_timeout": None}])
    layer.close_timeout = 0.5
    try:
        channel = await layer.new_channel()
        await layer.group_add("room", channel)
        waiting = asyncio.ensure_future(layer.receive("jobs"))
        await asyncio.sleep(0.05)
        await layer.send("jobs", {"type": "1"})
        await layer.send("jobs", {"type": "2"})  # reaches the process, unclaimed
        assert await asyncio.wait_for(waiting, 5) == {"type": "1"}
        if fault == "frozen":
            restartable_redis.freeze()
        else:
            restartable_redis.kill()
        pending = asyncio.ensure_future(layer.send(channel, {"type": "late"}))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await asyncio.wait_for(layer.close_pools(), 10)
        assert time.monotonic() - started < 3
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(pending, 5)
    finally:
        restartable_redis.thaw()
        await layer.close_pools()


@pytest.mark.parametrize("layer_class", LAYER_CLASSES)
@pytest.mark.parametrize("option", ["on_disconnect", "on_reconnect"])
def test_outage_callbacks_are_a_message_type_or_a_callable(
    layer_class: type[RedisChannelLayer], option: str
) -> None:
    with pytest.raises(InvalidConfiguration, match=f"{option} must be a message type"):
        layer_class(**{option: 3})
    layer = layer_class(**{option: "redis.gone"})
    assert getattr(layer, option) == "redis.gone"


@pytest.mark.asyncio
async def test_a_server_without_info_is_used_all_the_same(redis_without_info: str) -> None:
    # The layer asks INFO for the server's run_id on each new connection.
    layer = RedisChannelLayer(hosts=[{"address": redis_without_info, "cluster": False}])
    try:
        channel = await layer.new_channel()
        await layer.group_add("room", channel)
        await layer.group_send("room", {"type": "hello"})
        assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": "hello"}
    finally:
        await layer.close_pools()
