"""The local buffer's mailboxes, without Redis: what an idle receiver costs, and order."""

from __future__ import annotations

import asyncio
import sys

import pytest

from channels_redis.local_buffer import LocalBuffer, Mailbox
from channels_redis.wire import now_ms


def _buffer(consumed: list[tuple[str, int]] | None = None) -> LocalBuffer:
    seen = consumed if consumed is not None else []
    return LocalBuffer(lambda channel: 3, lambda channel, count: seen.append((channel, count)))


def _deadline() -> int:
    return now_ms() + 60_000


@pytest.mark.asyncio
async def test_a_waiting_receiver_holds_no_deque() -> None:
    # bench/server.py idle-5000-redis: every idle consumer has one of these.
    buffer = _buffer()
    receiver = asyncio.ensure_future(buffer.get("idle"))
    await asyncio.sleep(0)
    box = buffer.mailboxes["idle"]
    assert box.messages is None
    # The one receiver's future itself, not a container holding it.
    assert isinstance(box.waiters, asyncio.Future)
    assert not hasattr(box, "__dict__")
    assert sys.getsizeof(box) < 100
    receiver.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiver
    assert "idle" not in buffer.mailboxes


@pytest.mark.asyncio
async def test_the_capacity_is_looked_up_with_the_first_message() -> None:
    # The layer caches each channel's capacity: a receiver that only waits
    # must not add an entry per idle consumer.
    asked: list[str] = []

    def limit_for(channel: str) -> int:
        asked.append(channel)
        return 2

    buffer = LocalBuffer(limit_for, lambda channel, count: None)
    receiver = asyncio.ensure_future(buffer.get("c"))
    await asyncio.sleep(0)
    assert asked == []
    for number in range(3):
        buffer.put("c", _deadline(), {"n": number})
    assert asked == ["c"]
    assert await receiver == {"n": 0}
    assert await buffer.get("c") == {"n": 1}
    assert "c" not in buffer.mailboxes  # the third was over the capacity


@pytest.mark.asyncio
async def test_the_message_queue_goes_once_empty() -> None:
    buffer = _buffer()
    receiver = asyncio.ensure_future(buffer.get("c"))
    await asyncio.sleep(0)
    buffer.put("c", _deadline(), {"type": "one"})
    assert await receiver == {"type": "one"}
    assert "c" not in buffer.mailboxes
    # A receiver that waits again after draining its messages holds no deque.
    buffer.put("c", _deadline(), {"type": "two"})
    assert await buffer.get("c") == {"type": "two"}
    receiver = asyncio.ensure_future(buffer.get("c"))
    await asyncio.sleep(0)
    assert buffer.mailboxes["c"].messages is None
    receiver.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiver


@pytest.mark.asyncio
async def test_order_capacity_and_expiry_are_kept() -> None:
    consumed: list[tuple[str, int]] = []
    buffer = _buffer(consumed)
    for number in range(5):  # capacity 3: the newest two are dropped
        buffer.put("c", _deadline(), {"n": number}, counted=True)
    assert consumed == [("c", 1), ("c", 1)]
    buffer.put("expired", now_ms() - 1, {"n": -1}, counted=True)
    buffer.sweep()
    assert "expired" not in buffer.mailboxes
    assert consumed[-1] == ("expired", 1)
    assert [await buffer.get("c") for _ in range(3)] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert "c" not in buffer.mailboxes


@pytest.mark.asyncio
async def test_receivers_are_woken_in_order() -> None:
    buffer = _buffer()
    receivers = [asyncio.ensure_future(buffer.get("c")) for _ in range(3)]
    await asyncio.sleep(0)
    assert type(buffer.mailboxes["c"].waiters) is list
    assert buffer.mailboxes["c"].waiting() == 3
    receivers[1].cancel()
    for number in range(2):
        buffer.put("c", _deadline(), {"n": number})
    assert await receivers[0] == {"n": 0}
    assert await receivers[2] == {"n": 1}
    with pytest.raises(asyncio.CancelledError):
        await receivers[1]
    assert "c" not in buffer.mailboxes


@pytest.mark.asyncio
async def test_a_cancelled_receiver_passes_its_message_on() -> None:
    buffer = _buffer()
    first = asyncio.ensure_future(buffer.get("c"))
    second = asyncio.ensure_future(buffer.get("c"))
    await asyncio.sleep(0)
    buffer.put("c", _deadline(), {"type": "only"})
    first.cancel()  # woken, but cancelled before it took the message
    assert await second == {"type": "only"}
    with pytest.raises(asyncio.CancelledError):
        await first
    assert "c" not in buffer.mailboxes


def test_unclaimed_and_counted_messages_leave_no_deque() -> None:
    consumed: list[tuple[str, int]] = []
    buffer = _buffer(consumed)
    buffer.put("ordinary", _deadline(), {"n": 1}, raw=b"element")
    buffer.put("specific!x", _deadline(), {"n": 2}, counted=True)
    buffer.release_counted()
    assert consumed == [("specific!x", 1)]
    assert buffer.mailboxes["specific!x"].messages is None
    assert buffer.take_unclaimed("ordinary") == [b"element"]
    assert "ordinary" not in buffer.mailboxes
    buffer.put("flushed", _deadline(), {"n": 3})
    buffer.clear()
    assert buffer.mailboxes == {}
    assert Mailbox(1).waiting() == 0
