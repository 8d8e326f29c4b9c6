"""RedisPubSubChannelLayer against real Redis servers."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio

from channels_redis.errors import InvalidConfiguration, RedisConnectionError
from channels_redis.pubsub import RedisPubSubChannelLayer

LayerMaker = Callable[..., RedisPubSubChannelLayer]


@pytest.fixture
def make_layer(made_layers: Any) -> LayerMaker:
    """Layers on the session server, closed after the test."""
    return functools.partial(made_layers, RedisPubSubChannelLayer)


async def receive(layer: RedisPubSubChannelLayer, channel: str, timeout: float = 5) -> Any:
    return await asyncio.wait_for(layer.receive(channel), timeout)


def test_configured_by_import_path() -> None:
    from django.utils.module_loading import import_string

    assert import_string("channels_redis.pubsub.RedisPubSubChannelLayer") is RedisPubSubChannelLayer


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"hosts": "redis://x"}, "wrap it in a list"),
        ({"on_disconnect": 3}, "on_disconnect must be a message type"),
        ({"on_reconnect": b"x"}, "on_reconnect must be a message type"),
        ({"prefix": "a}"}, "without braces"),
    ],
)
def test_invalid_arguments(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidConfiguration, match=message):
        RedisPubSubChannelLayer(**options)


@pytest.mark.asyncio
async def test_groups_across_processes(make_layer: LayerMaker) -> None:
    # Three layers stand for three processes sharing one Redis.
    first, second, sender = make_layer(), make_layer(), make_layer()
    one = [await first.new_channel() for _ in range(3)]
    two = [await second.new_channel() for _ in range(2)]
    for channel in one:
        await first.group_add("across", channel)
    for channel in two:
        await second.group_add("across", channel)
    await sender.group_send("across", {"type": "hello.all"})
    for channel in one:
        assert await receive(first, channel) == {"type": "hello.all"}
    for channel in two:
        assert await receive(second, channel) == {"type": "hello.all"}


@pytest.mark.asyncio
async def test_group_send_is_one_publish_whatever_the_size(
    make_layer: LayerMaker, redis_client: redis.asyncio.Redis
) -> None:
    layer = make_layer()
    members = [await layer.new_channel() for _ in range(500)]
    for member in members:
        await layer.group_add("big-room", member)
    await redis_client.config_resetstat()
    await layer.group_send("big-room", {"type": "to.everyone"})
    stats = await redis_client.info("commandstats")
    assert stats["cmdstat_publish"]["calls"] == 1
    received = await asyncio.gather(*(receive(layer, member) for member in members))
    assert received == [{"type": "to.everyone"}] * 500
    # One subscription for the process's channels and one for the group.
    channels = await redis_client.pubsub_channels()
    assert len(channels) == 2


@pytest.mark.asyncio
async def test_messages_wait_for_a_receiver_that_subscribes_later(make_layer: LayerMaker) -> None:
    sender, receiver = make_layer(), make_layer()
    await sender.send("task.queue", {"type": "job", "n": 1})
    await sender.send("task.queue", {"type": "job", "n": 2})
    await asyncio.sleep(0.1)
    assert await receive(receiver, "task.queue") == {"type": "job", "n": 1}
    await sender.send("task.queue", {"type": "job", "n": 3})
    assert await receive(receiver, "task.queue") == {"type": "job", "n": 2}
    assert await receive(receiver, "task.queue") == {"type": "job", "n": 3}


@pytest.mark.asyncio
async def test_disconnect_and_reconnect_callbacks_fire_and_subscriptions_come_back(
    restartable_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="channels_redis")
    calls: list[str] = []

    async def reconnected() -> None:
        calls.append("reconnect")

    layer = RedisPubSubChannelLayer(
        hosts=[restartable_redis.url],
        on_disconnect=lambda: calls.append("disconnect"),
        on_reconnect=reconnected,
    )
    notified = RedisPubSubChannelLayer(
        hosts=[restartable_redis.url],
        on_disconnect="redis.disconnect",
        on_reconnect="redis.reconnect",
    )
    try:
        channel = await layer.new_channel()
        await layer.group_add("survivors", channel)
        watcher = await notified.new_channel()
        await notified.group_add("survivors", watcher)
        await layer.group_send("survivors", {"type": "before"})
        assert await receive(layer, channel) == {"type": "before"}
        assert await receive(notified, watcher) == {"type": "before"}
        waiting = asyncio.ensure_future(receive(notified, watcher, timeout=15))
        plain = asyncio.ensure_future(receive(layer, "plain.worker", timeout=15))

        restartable_redis.kill()
        assert await waiting == {"type": "redis.disconnect"}
        for _ in range(100):
            if "disconnect" in calls:
                break
            await asyncio.sleep(0.05)
        assert calls == ["disconnect"]
        with pytest.raises(RedisConnectionError):
            await layer.send("plain.worker", {"type": "during"})

        restartable_redis.start()
        assert await receive(notified, watcher, timeout=10) == {"type": "redis.reconnect"}
        deadline = time.monotonic() + 10
        while calls != ["disconnect", "reconnect"]:
            assert time.monotonic() < deadline, calls
            await asyncio.sleep(0.05)
        # Every subscription is back: groups and channels deliver again.
        await layer.group_send("survivors", {"type": "after"})
        assert await receive(layer, channel) == {"type": "after"}
        assert await receive(notified, watcher) == {"type": "after"}
        await layer.send("plain.worker", {"type": "job"})
        assert await plain == {"type": "job"}
    finally:
        await layer.close_pools()
        await notified.close_pools()
    lost = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Lost Redis")]
    assert len(lost) == 2, lost  # once per layer, not once per retry


@pytest.mark.asyncio
async def test_channel_messages_sent_during_a_resubscription_are_not_lost(
    restartable_redis: Any,
) -> None:
    receiver = RedisPubSubChannelLayer(hosts=[restartable_redis.url])
    sender = RedisPubSubChannelLayer(hosts=[restartable_redis.url])
    try:
        channel = await receiver.new_channel()
        await sender.send(channel, {"type": "n", "n": 0})
        assert await receive(receiver, channel) == {"type": "n", "n": 0}
        restartable_redis.kill()
        await asyncio.sleep(0.2)
        restartable_redis.start()
        # The receiver may not have resubscribed yet: these go to the backlog
        # or straight through, and arrive in order either way.
        sent = 0
        deadline = time.monotonic() + 10
        while sent < 20:
            try:
                await sender.send(channel, {"type": "n", "n": sent + 1})
                sent += 1
            except RedisConnectionError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
        numbers = [(await receive(receiver, channel, timeout=10))["n"] for _ in range(20)]
        assert numbers == list(range(1, 21))
    finally:
        await receiver.close_pools()
        await sender.close_pools()


@pytest.mark.asyncio
async def test_group_add_waits_for_the_subscription(make_layer: LayerMaker) -> None:
    layer = make_layer()
    for round_number in range(20):
        channel = await layer.new_channel()
        await layer.group_add(f"fresh-{round_number}", channel)
        await layer.group_send(f"fresh-{round_number}", {"type": "first"})
        assert await receive(layer, channel) == {"type": "first"}


@pytest.mark.asyncio
async def test_last_member_leaving_unsubscribes(
    make_layer: LayerMaker, redis_client: redis.asyncio.Redis
) -> None:
    layer = make_layer()
    channel = await layer.new_channel()
    await layer.group_add("short-lived", channel)
    assert b"asgi:pubgr:short-lived" in await redis_client.pubsub_channels()
    await layer.group_discard("short-lived", channel)
    for _ in range(50):
        if b"asgi:pubgr:short-lived" not in await redis_client.pubsub_channels():
            break
        await asyncio.sleep(0.02)
    assert b"asgi:pubgr:short-lived" not in await redis_client.pubsub_channels()


@pytest.mark.asyncio
async def test_encrypted_pubsub_messages(
    make_layer: LayerMaker, caplog: pytest.LogCaptureFixture
) -> None:
    layer = make_layer(symmetric_encryption_keys=["k1"])
    stranger = make_layer(symmetric_encryption_keys=["other"])
    channel = await layer.new_channel()
    await layer.group_add("secret-room", channel)
    await stranger.group_send("secret-room", {"type": "unreadable"})
    await stranger.send(channel, {"type": "unreadable"})
    await layer.group_send("secret-room", {"type": "readable"})
    assert await receive(layer, channel) == {"type": "readable"}
    assert sum("cannot be decrypted" in r.getMessage() for r in caplog.records) == 2


@pytest.mark.asyncio
async def test_flush_drops_messages_still_on_their_way(
    make_layer: LayerMaker,
    redis_url: str,
    send_while_loop_is_held: Callable[[Callable[..., Any], str, str, int], None],
) -> None:
    """Messages published before flush() but not yet read from the subscription
    socket must not turn up after it."""
    receiver = make_layer(capacity=10_000)
    channel = await receiver.new_channel()
    await receiver.send(channel, {"type": "subscribes"})
    assert await receive(receiver, channel) == {"type": "subscribes"}
    send_while_loop_is_held(RedisPubSubChannelLayer, redis_url, channel, 300)
    await receiver.flush()
    await receiver.send(channel, {"type": "marker"})
    assert await receive(receiver, channel) == {"type": "marker"}


# -- the subscribed connection (pubsub._Subscription) ---------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize("protocol", [2, 3])
async def test_every_reply_kind_in_both_protocols(
    make_layer: LayerMaker, redis_url: str, protocol: int
) -> None:
    # RESP3 delivers messages and confirmations as pushes, and answers the
    # flush barrier's PING with the bare token rather than a "pong" array.
    layer = make_layer(hosts=[{"address": redis_url, "protocol": protocol}])
    await layer.send("later.worker", {"type": "backlogged"})
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    await layer.send(channel, {"type": "direct"})
    assert await receive(layer, channel) == {"type": "direct"}
    await layer.group_send("room", {"type": "grouped"})
    assert await receive(layer, channel) == {"type": "grouped"}
    assert await receive(layer, "later.worker") == {"type": "backlogged"}
    await layer.send(channel, {"type": "dropped by the flush"})
    started = time.monotonic()
    await layer.flush()
    # The barrier got its answer: it did not wait out its 10 s timeout.
    assert time.monotonic() - started < 2
    await layer.send(channel, {"type": "after"})
    assert await receive(layer, channel) == {"type": "after"}


@pytest.mark.asyncio
async def test_a_long_backlog_comes_before_what_is_published_while_it_is_read(
    make_layer: LayerMaker, redis_url: str
) -> None:
    # More than one DRAIN call's worth of backlog, and a sender in another
    # thread (another event loop) publishing all along: its messages reach
    # the subscribed socket while the backlog is still being read.
    backlog, later = 2500, 500
    backlogged, go = threading.Event(), threading.Event()

    async def send_all() -> None:
        sender = RedisPubSubChannelLayer(hosts=[redis_url], capacity=10_000)
        try:
            await asyncio.gather(
                *(sender.send("big.queue", {"type": "n", "n": n}) for n in range(backlog))
            )
            backlogged.set()
            go.wait(10)
            for n in range(backlog, backlog + later):
                await sender.send("big.queue", {"type": "n", "n": n})
        finally:
            await sender.close_pools()

    thread = threading.Thread(target=asyncio.run, args=(send_all(),))
    thread.start()
    try:
        receiver = make_layer(capacity=10_000)
        assert await asyncio.to_thread(backlogged.wait, 10)
        first = asyncio.ensure_future(receive(receiver, "big.queue"))
        go.set()
        numbers = [(await first)["n"]]
        while len(numbers) < backlog + later:
            numbers.append((await receive(receiver, "big.queue"))["n"])
    finally:
        go.set()
        await asyncio.to_thread(thread.join, 20)
    assert numbers == list(range(backlog + later))
