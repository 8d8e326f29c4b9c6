"""What is particular to InMemoryChannelLayer (the specification's part is in
test_conformance_in_memory.py): several event loops and threads, bookkeeping
that must not grow, expiry's side effects, and close()."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from channels.exceptions import ChannelFull, ForeignChannelError
from channels.layers import InMemoryChannelLayer, in_memory
from channels.layers.in_memory import copy_message


def message(number: int = 0, **fields: Any) -> dict[str, Any]:
    return {"type": "test.message", "number": number, **fields}


@pytest.fixture
def busy_threads() -> Iterator[None]:
    """Switch threads as often as possible, to shake out races between them."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def test_defaults() -> None:
    layer = InMemoryChannelLayer()
    assert (layer.expiry, layer.group_expiry, layer.capacity) == (60, 86400, 100)


def test_options_of_other_backends_are_logged_not_refused(caplog: Any) -> None:
    with caplog.at_level(logging.WARNING, logger="channels.layers.in_memory"):
        layer = InMemoryChannelLayer(hosts=[("127.0.0.1", 6379)], prefix="asgi")
    assert layer.capacity == 100
    assert "ignores the options hosts, prefix" in caplog.text


# -- several loops and threads ------------------------------------------------


@pytest.mark.asyncio
async def test_sync_send_wakes_a_receiver_waiting_on_another_loop() -> None:
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    receiving = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0.01)
    sender_loops = []

    async def send() -> None:
        sender_loops.append(asyncio.get_running_loop())
        await layer.send(channel, message(1))

    def sync_code() -> None:
        async_to_sync(send)()

    await asyncio.to_thread(sync_code)
    assert sender_loops[0] is not asyncio.get_running_loop()
    assert await asyncio.wait_for(receiving, 5) == message(1)
    assert layer.channels == {}


@pytest.mark.asyncio
async def test_sync_group_send_wakes_receivers_on_another_loop() -> None:
    layer = InMemoryChannelLayer()
    members = [await layer.new_channel() for _ in range(3)]
    for member in members:
        await layer.group_add("room", member)
    receiving = [asyncio.ensure_future(layer.receive(member)) for member in members]
    await asyncio.sleep(0.01)

    def sync_code() -> None:
        async_to_sync(layer.group_send)("room", message(2))

    await asyncio.to_thread(sync_code)
    assert await asyncio.wait_for(asyncio.gather(*receiving), 5) == [message(2)] * 3


@pytest.mark.asyncio
async def test_sync_receiver_is_woken_by_a_send_on_this_loop() -> None:
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()

    def sync_code() -> dict[str, Any]:
        return async_to_sync(layer.receive)(channel)

    receiving = asyncio.ensure_future(asyncio.to_thread(sync_code))
    # Until the thread's receive() waits: nothing in the layer announces it.
    while channel not in layer.channels:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    await layer.send(channel, message(3))
    assert await asyncio.wait_for(receiving, 5) == message(3)


@pytest.mark.asyncio
@pytest.mark.usefixtures("busy_threads")
async def test_threads_sending_while_this_loop_receives_lose_nothing() -> None:
    layer = InMemoryChannelLayer(capacity=10_000)
    channels = ["one", await layer.new_channel(), await layer.new_channel()]
    count = 1000

    async def send_all(channel: str) -> None:
        for number in range(count):
            await layer.send(channel, message(number))
            if number % 7 == 0:
                await asyncio.sleep(0)

    def sync_sender(channel: str) -> None:
        async_to_sync(send_all)(channel)

    async def receive_all(channel: str) -> list[int]:
        return [(await layer.receive(channel))["number"] for _ in range(count)]

    senders = [asyncio.to_thread(sync_sender, channel) for channel in channels]
    receivers = [receive_all(channel) for channel in channels]
    results = await asyncio.wait_for(asyncio.gather(*receivers, *senders), 30)
    for received in results[: len(channels)]:
        assert received == list(range(count))
    assert layer.channels == {}


@pytest.mark.asyncio
@pytest.mark.usefixtures("busy_threads")
async def test_two_loops_reading_one_channel_share_its_messages() -> None:
    layer = InMemoryChannelLayer(capacity=10_000)
    count = 600
    seen: list[int] = []
    done = threading.Event()

    async def read_until_done() -> None:
        while not done.is_set():
            try:
                seen.append((await asyncio.wait_for(layer.receive("shared"), 0.05))["number"])
            except asyncio.TimeoutError:
                pass

    def sync_reader() -> None:
        async_to_sync(read_until_done)()

    threads = asyncio.gather(asyncio.to_thread(sync_reader), asyncio.to_thread(sync_reader))
    local_reader = asyncio.ensure_future(read_until_done())
    for number in range(count):
        await layer.send("shared", message(number))
        if number % 5 == 0:
            await asyncio.sleep(0)
    for _ in range(500):
        if len(seen) >= count:
            break
        await asyncio.sleep(0.01)
    done.set()
    await asyncio.wait_for(asyncio.gather(threads, local_reader), 10)
    assert sorted(seen) == list(range(count))


@pytest.mark.asyncio
async def test_a_send_from_another_thread_is_never_cut_in_half() -> None:
    # A sender in another thread is paused (by a slowed-down step) after it
    # found the channel and before it queued its message, while this loop
    # reads the channel empty and would forget it: without the layer's lock
    # the message would go to a forgotten queue and be lost.
    layer = InMemoryChannelLayer()
    await layer.send("race", message(1))
    sender_inside = threading.Event()
    this_thread = threading.current_thread()
    drop_expired = layer._drop_expired

    def slow_drop_expired(*args: Any) -> None:
        if threading.current_thread() is not this_thread:
            sender_inside.set()
            time.sleep(0.1)
        drop_expired(*args)

    layer._drop_expired = slow_drop_expired  # type: ignore[method-assign]

    def sync_send() -> None:
        async_to_sync(layer.send)("race", message(2))

    sending = asyncio.ensure_future(asyncio.to_thread(sync_send))
    assert await asyncio.to_thread(sender_inside.wait, 5)
    first = await layer.receive("race")
    await sending
    second = await asyncio.wait_for(layer.receive("race"), 1)
    assert [first, second] == [message(1), message(2)]


def test_a_receiver_on_a_closed_loop_does_not_break_senders() -> None:
    layer = InMemoryChannelLayer(expiry=0.2)
    abandoned_loop = asyncio.new_event_loop()
    abandoned = abandoned_loop.create_task(layer.receive("abandoned"))
    abandoned_loop.run_until_complete(asyncio.sleep(0.01))
    abandoned_loop.close()
    # The task is garbage now; asyncio would log that it never finished.
    abandoned._log_destroy_pending = False  # type: ignore[attr-defined]

    async def send_then_receive() -> dict[str, Any]:
        await layer.send("abandoned", message(4))
        return await asyncio.wait_for(layer.receive("abandoned"), 5)

    assert asyncio.run(send_then_receive()) == message(4)

    # A receiver that is never woken is forgotten by the sweep.
    second_loop = asyncio.new_event_loop()
    forgotten = second_loop.create_task(layer.receive("forgotten"))
    second_loop.run_until_complete(asyncio.sleep(0.01))
    second_loop.close()
    forgotten._log_destroy_pending = False  # type: ignore[attr-defined]
    assert "forgotten" in layer.channels

    async def later() -> None:
        await asyncio.sleep(layer.expiry)
        await layer.send("other", message(5))

    asyncio.run(later())
    assert "forgotten" not in layer.channels


# -- bookkeeping that must not grow ---------------------------------------------


@pytest.mark.asyncio
async def test_channels_read_empty_are_forgotten() -> None:
    layer = InMemoryChannelLayer()
    for number in range(500):
        channel = await layer.new_channel()
        await layer.send(channel, message(number))
        assert await layer.receive(channel) == message(number)
        await layer.send(f"plain.{number}", message(number))
        assert await layer.receive(f"plain.{number}") == message(number)
    assert layer.channels == {}
    assert layer.groups == {}


@pytest.mark.asyncio
async def test_a_receiver_that_waited_leaves_no_channel_behind() -> None:
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    receiving = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    assert channel in layer.channels
    await layer.send(channel, message())
    await receiving
    assert layer.channels == {}

    cancelled = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert layer.channels == {}


@pytest.mark.asyncio
async def test_unread_channels_and_shared_backlogs_are_swept() -> None:
    layer = InMemoryChannelLayer(expiry=0.2)
    for number in range(50):
        await layer.send(f"unread.{number}", message(number))
        await layer.send(f"reader{number}!local", message(number))
    assert len(layer.channels) == 100
    await asyncio.sleep(0.3)
    await layer.send("fresh", message())
    assert list(layer.channels) == ["fresh"]
    assert layer._backlogs == {}


# -- expiry and groups ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_expired_message_removes_its_channel_from_its_groups() -> None:
    layer = InMemoryChannelLayer(expiry=0.2)
    gone, alive = await layer.new_channel(), await layer.new_channel()
    for group in ("one", "two"):
        await layer.group_add(group, gone)
        await layer.group_add(group, alive)
    await layer.send(gone, message(1))
    await layer.send(alive, message(1))
    # A delivered message keeps the membership ("Persistence").
    assert await layer.receive(alive) == message(1)
    await asyncio.sleep(0.3)
    await layer.group_send("one", message(2))
    assert {group: set(members) for group, members in layer.groups.items()} == {
        "one": {alive},
        "two": {alive},
    }
    assert await layer.receive(alive) == message(2)
    await layer.send(gone, message(3))
    assert await layer.receive(gone) == message(3)


@pytest.mark.asyncio
async def test_expired_memberships_are_swept() -> None:
    layer = InMemoryChannelLayer(expiry=0.2, group_expiry=0.2)
    for number in range(20):
        await layer.group_add(f"group{number}", f"member{number}")
    await asyncio.sleep(0.3)
    await layer.send("anything", message())
    assert layer.groups == {}
    assert layer._memberships == {}


class FakeClock:
    """Stands in for the time module inside channels.layers.in_memory."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.mark.asyncio
async def test_group_add_renews_a_membership(monkeypatch: pytest.MonkeyPatch) -> None:
    # An exact clock: on a loaded machine, real sleeps only bound time from below.
    clock = FakeClock()
    monkeypatch.setattr(in_memory, "time", clock)
    layer = InMemoryChannelLayer(group_expiry=10)
    renewed, left_alone = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("group", renewed)
    await layer.group_add("group", left_alone)
    clock.now += 6
    await layer.group_add("group", renewed)
    clock.now += 6
    await layer.group_send("group", message())
    assert await asyncio.wait_for(layer.receive(renewed), 1) == message()
    assert set(layer.groups["group"]) == {renewed}
    clock.now += 3.9  # 9.9 s after the renewal
    await layer.group_send("group", message(2))
    assert await asyncio.wait_for(layer.receive(renewed), 1) == message(2)
    clock.now += 0.2
    await layer.group_send("group", message(3))
    assert layer.groups == {}


# -- capacity ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_channel_full_says_which_channel_and_capacity() -> None:
    layer = InMemoryChannelLayer(capacity=1)
    await layer.send("small", message())
    with pytest.raises(ChannelFull, match="Channel 'small' is full: its capacity is 1 messages"):
        await layer.send("small", message())
    await layer.send("reader!a", message())
    with pytest.raises(ChannelFull, match="behind 'reader!' share a capacity of 1"):
        await layer.send("reader!b", message())
    # The refused send left no empty channel behind.
    assert set(layer.channels) == {"small", "reader!a"}


@pytest.mark.asyncio
async def test_new_channels_each_have_the_full_capacity() -> None:
    layer = InMemoryChannelLayer(capacity=1)
    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.send(first, message(1))
    await layer.send(second, message(2))
    assert first.split("!")[0] != second.split("!")[0]


@pytest.mark.asyncio
async def test_channel_capacity_patterns_see_the_full_name() -> None:
    layer = InMemoryChannelLayer(capacity=5, channel_capacity={"reader!slow*": 1})
    await layer.send("reader!slow-1", message())
    with pytest.raises(ChannelFull):
        await layer.send("reader!slow-1", message())
    # The non-local part's backlog holds 1 message; other local channels have
    # the default capacity and share it.
    for _ in range(4):
        await layer.send("reader!fast", message())
    with pytest.raises(ChannelFull):
        await layer.send("reader!fast", message())


# -- names ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_names_are_checked_even_when_a_similar_channel_exists() -> None:
    layer = InMemoryChannelLayer()
    await layer.send("known", message())
    await layer.group_add("known-group", "known")

    class Name(str):
        pass

    # A str subclass is compared by value, and passes the checks.
    await layer.send(Name("known"), message())
    with pytest.raises(TypeError, match="must be a str, not bytes"):
        await layer.send(b"known", message())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a str, not bytes"):
        await layer.group_send(b"known-group", message())  # type: ignore[arg-type]


# -- flush and close ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_flush_keeps_waiting_receivers_waiting() -> None:
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.send("dropped", message())
    receiving = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    await layer.flush()
    assert list(layer.channels) == [channel]
    await layer.send(channel, message(6))
    assert await asyncio.wait_for(receiving, 1) == message(6)


@pytest.mark.asyncio
async def test_close_empties_the_layer_which_stays_usable() -> None:
    layer = InMemoryChannelLayer()
    await layer.send("left.over", message())
    await layer.send("reader!left", message())
    await layer.group_add("group", "left.over")
    await layer.close()
    assert (layer.channels, layer.groups, layer._memberships, layer._backlogs) == ({}, {}, {}, {})
    await layer.send("after.close", message(7))
    assert await layer.receive("after.close") == message(7)


# -- copies ---------------------------------------------------------------------------


def test_copy_message_copies_containers_and_keeps_immutables() -> None:
    class Payload:
        def __init__(self) -> None:
            self.items = [1]

    original = {
        "type": "x",
        "list": [{"inner": [1]}],
        "tuple": ([1], 2),
        "bytes": b"abc",
        "object": Payload(),
    }
    copied = copy_message(original)
    assert copied == {**original, "object": copied["object"]}
    assert copied["list"] is not original["list"]
    assert copied["list"][0]["inner"] is not original["list"][0]["inner"]
    assert copied["tuple"][0] is not original["tuple"][0]
    assert copied["bytes"] is original["bytes"]
    assert copied["object"] is not original["object"]
    assert copied["object"].items == [1]
    assert copied["object"].items is not original["object"].items


# -- what tests written for Channels' layer use -----------------------------------


@pytest.mark.asyncio
async def test_clean_expired_drops_expired_messages_and_their_memberships(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(in_memory, "time", clock)
    layer = InMemoryChannelLayer(expiry=10, group_expiry=100)
    stale, fresh = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", stale)
    await layer.group_add("room", fresh)
    await layer.send(stale, message(1))
    clock.now += 5
    await layer.send(fresh, message(2))
    clock.now += 6  # the first message is 11 s old, the second 6 s
    layer._clean_expired()
    assert list(layer.channels) == [fresh]
    assert layer.groups == {"room": {fresh: 1000.0}}
    clock.now += 95  # the memberships are 101 s old
    layer._clean_expired()
    assert layer.groups == {}
    assert layer.channels == {}


@pytest.mark.asyncio
async def test_remove_from_groups_takes_a_channel_out_of_every_group() -> None:
    layer = InMemoryChannelLayer()
    leaving, staying = await layer.new_channel(), await layer.new_channel()
    for group in ("one", "two", "three"):
        await layer.group_add(group, leaving)
    await layer.group_add("two", staying)
    layer._remove_from_groups(leaving)
    assert {group: set(members) for group, members in layer.groups.items()} == {"two": {staying}}
    await layer.group_send("one", message(1))
    await layer.group_send("two", message(2))
    assert await asyncio.wait_for(layer.receive(staying), 1) == message(2)
    assert leaving not in layer.channels  # nothing was sent to it
    # A membership added by hand, as a test might, goes too.
    layer.groups.setdefault("by-hand", {})[leaving] = time.monotonic()
    layer._remove_from_groups(leaving)
    assert "by-hand" not in layer.groups


@pytest.mark.asyncio
async def test_channels_values_answer_like_asyncio_queues() -> None:
    layer = InMemoryChannelLayer(capacity=2)
    await layer.send("inspected", message(1))
    queue = layer.channels["inspected"]
    assert (queue.qsize(), queue.empty(), queue.full(), queue.maxsize) == (1, False, False, 2)
    await layer.send("inspected", message(2))
    assert queue.full()
    expiry, first = queue._queue[0]
    assert first == message(1)
    assert expiry > time.monotonic()
    await layer.receive("inspected")
    await layer.receive("inspected")
    assert "inspected" not in layer.channels


@pytest.mark.asyncio
async def test_a_waiting_receiver_gets_its_message_if_the_channel_is_deleted() -> None:
    # Channels' own tests delete a channel from layer.channels under a receiver.
    layer = InMemoryChannelLayer()
    receiving = asyncio.ensure_future(layer.receive("deleted"))
    await asyncio.sleep(0)  # the receiver runs until it waits
    assert "deleted" in layer.channels
    await layer.send("deleted", message(1))
    del layer.channels["deleted"]
    assert await asyncio.wait_for(receiving, 1) == message(1)


# -- process-specific channels of other processes ---------------------------------


@pytest.mark.asyncio
async def test_receive_on_a_channel_this_layer_did_not_make_raises_at_once() -> None:
    layer = InMemoryChannelLayer()
    other = InMemoryChannelLayer()
    own = await layer.new_channel(prefix="mine.")
    theirs = await other.new_channel()
    # Any local part behind a non-local part this layer made is its own.
    sibling = own.split("!")[0] + "!sibling"
    await layer.send(sibling, message(1))
    assert await asyncio.wait_for(layer.receive(sibling), 1) == message(1)
    forged = own.replace("mine.", "yours.")
    for name in (theirs, forged, "hand.made!name", "hand.made!"):
        with pytest.raises(ForeignChannelError, match=re.escape(repr(name))):
            await asyncio.wait_for(layer.receive(name), 1)
    # Even a channel that holds messages (sends to any name are allowed).
    await layer.send(theirs, message(2))
    with pytest.raises(ForeignChannelError):
        await asyncio.wait_for(layer.receive(theirs), 1)
    assert isinstance(ForeignChannelError("x"), ValueError)


@pytest.mark.asyncio
async def test_names_follow_a_subclass_that_changes_the_rules() -> None:
    class SlashLayer(InMemoryChannelLayer):
        channel_name_regex = re.compile(r"^[a-z/]+(![a-z0-9]*)?$")
        group_name_regex = re.compile(r"^[a-z/]+$")
        MAX_NAME_LENGTH = 10

    layer = SlashLayer()
    await layer.send("a/b", message(1))
    assert await layer.receive("a/b") == message(1)
    await layer.group_add("g/h", "a/b")
    with pytest.raises(TypeError, match=r"'A\.B'"):
        await layer.send("A.B", message())
    with pytest.raises(TypeError, match="shorter than 10 characters"):
        await layer.group_add("abcdefghijk", "a/b")
