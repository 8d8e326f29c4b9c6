"""ShardWriter over a real Redis: what one batch carries, and when acknowledgements leave."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest
import redis.asyncio

from channels_redis.batching import ShardWriter
from channels_redis.core import RedisChannelLayer


async def evalsha_calls(client: redis.asyncio.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


@pytest.mark.asyncio
async def test_acknowledgements_made_during_a_send_wait_for_the_next_one(
    made_layers: Any, redis_client: redis.asyncio.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sent on their own as soon as the batch on its way is answered, they
    # would hold up the next send (one batch at a time) for a round trip.
    monkeypatch.setattr(ShardWriter, "ACK_DELAY", 30.0)
    layer = functools.partial(made_layers, RedisChannelLayer)()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "zeroth"})
    assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": "zeroth"}
    await layer.wait_received()
    await layer.send(channel, {"type": "first"})
    state = layer._loops.current()
    for _ in range(500):
        if channel in state.buffer.mailboxes:
            break
        await asyncio.sleep(0.01)
    writer = state.writers[0]
    await redis_client.config_resetstat()

    sending = asyncio.ensure_future(layer.send(channel, {"type": "second"}))
    for _ in range(10):  # the sending task submits, then the batch leaves
        if writer.in_flight:
            break
        await asyncio.sleep(0)
    assert writer.in_flight
    # Received while the second send is on its way (no await: it is buffered).
    assert await layer.receive(channel) == {"type": "first"}
    await sending
    await asyncio.sleep(0.2)
    assert await evalsha_calls(redis_client) == 1

    await layer.send(channel, {"type": "third"})
    assert await evalsha_calls(redis_client) == 2
    counters = [key async for key in redis_client.scan_iter(match="asgi:cnt:*")]
    field = channel.split("!")[0].encode() + b"!"
    # first received, second and third waiting: the third's call took the acknowledgement.
    assert [await redis_client.hget(key, field) for key in counters] == [b"2"]
    assert await layer.receive(channel) == {"type": "second"}
    assert await layer.receive(channel) == {"type": "third"}


@pytest.mark.asyncio
async def test_acknowledgements_alone_leave_after_the_delay(
    made_layers: Any, redis_client: redis.asyncio.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ShardWriter, "ACK_DELAY", 0.05)
    layer = functools.partial(made_layers, RedisChannelLayer)()
    channel = await layer.new_channel()
    field = channel.split("!")[0].encode() + b"!"
    for number in range(3):
        await layer.send(channel, {"type": "message", "number": number})
        assert await asyncio.wait_for(layer.receive(channel), 5) == {
            "type": "message",
            "number": number,
        }
    counters = [key async for key in redis_client.scan_iter(match="asgi:cnt:*")]
    # The last receive's acknowledgement waits for a send, then for the delay.
    assert [await redis_client.hget(key, field) for key in counters] == [b"1"]
    await asyncio.sleep(0.3)
    assert [await redis_client.hget(key, field) for key in counters] == [b"0"]


@pytest.mark.asyncio
async def test_a_send_with_nothing_on_its_way_leaves_before_its_task_yields(
    made_layers: Any, redis_client: redis.asyncio.Redis
) -> None:
    layer = functools.partial(made_layers, RedisChannelLayer)()
    await layer.send("warm.up", {"type": "w"})  # connects
    writer = layer._loops.current().writers[0]
    await redis_client.config_resetstat()
    first = asyncio.ensure_future(layer.send("batched", {"type": "b", "n": 0}))
    await asyncio.sleep(0)  # the task ran up to its first wait
    assert writer.in_flight
    # Made while the first is out: they leave together when it is answered.
    rest = [asyncio.ensure_future(layer.send("batched", {"type": "b", "n": n})) for n in (1, 2, 3)]
    await asyncio.gather(first, *rest)
    assert await evalsha_calls(redis_client) == 2
    received = [(await asyncio.wait_for(layer.receive("batched"), 5))["n"] for _ in range(4)]
    assert received == [0, 1, 2, 3]


@pytest.mark.asyncio
async def test_a_batch_that_cannot_be_written_fails_its_senders(
    made_layers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fault no real Redis causes (a command that cannot be packed): the
    # senders get the error instead of waiting forever, and the writer goes on.
    layer = functools.partial(made_layers, RedisChannelLayer)()
    await layer.send("warm.up", {"type": "w"})
    writer = layer._loops.current().writers[0]

    def cannot_write(*args: Any) -> None:
        raise RuntimeError("cannot write this")

    monkeypatch.setattr(writer.commands, "start_then", cannot_write)
    with pytest.raises(RuntimeError, match="cannot write this"):
        await asyncio.wait_for(layer.send("unwritten", {"type": "u"}), 5)
    monkeypatch.undo()
    await asyncio.wait_for(layer.send("unwritten", {"type": "after"}), 5)
    assert await asyncio.wait_for(layer.receive("unwritten"), 5) == {"type": "after"}
