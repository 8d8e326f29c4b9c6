"""A conformance suite for channel layers, written from the Channel Layer Specification.

A layer package runs the suite against its layer by subclassing
:class:`ChannelLayerConformance` in one of its test modules and providing one
fixture, ``make_channel_layer``::

    import pytest

    from channels_testing.conformance import ChannelLayerConformance
    from mypackage.layers import MyChannelLayer


    class TestMyChannelLayerConformance(ChannelLayerConformance):
        @pytest.fixture
        def make_channel_layer(self, my_server):
            # make() is called inside the test's running event loop, once
            # per test, with keyword arguments drawn from expiry,
            # group_expiry, capacity and channel_capacity (or none).
            return lambda **options: MyChannelLayer(hosts=[my_server], **options)

The fixture may depend on any other fixture (a server, a unique key prefix)
and returns a callable ``make(**options) -> layer``. The suite keeps every
layer it makes and, at teardown, awaits ``layer.flush()`` when ``"flush"`` is
in ``layer.extensions`` and then ``layer.close()`` when the layer has one. A
layer must not see messages or groups left by another test: give each layer
a fresh key prefix, or rely on the teardown flush.

Tests of an extension (``groups``, ``flush``) are skipped, with a reason that
says so, when the layer's ``extensions`` does not declare it: the
specification makes them optional. Every other test applies to every layer.

Where Channels settled what the specification leaves open, the suite expects
what Channels does: ``receive()`` takes the full name that ``new_channel()``
returned (not only its part up to the ``!``); ``new_channel(prefix=...)``
starts the name with *prefix*; the layer has ``ChannelFull`` and
``MessageTooLarge`` attributes that are the classes of
:mod:`channels.exceptions`; names may hold one ``?`` (single-reader); invalid
names and non-dict messages raise ``TypeError``. And where a layer could only
wait forever, it raises: ``receive()`` on a process-specific name whose part
up to the ``!`` the layer did not make raises
:class:`~channels.exceptions.ForeignChannelError` at once.

Timing: expiry tests make layers with ``expiry=1`` or ``group_expiry=1`` and
wait :attr:`ChannelLayerConformance.expiry_wait` seconds (2.5 by default,
enough for a layer that keeps time in whole seconds); a layer with exact
clocks may lower it. A ``receive()`` that gets nothing within
:attr:`~ChannelLayerConformance.receive_timeout` seconds fails the test
instead of hanging it.

The suite needs pytest, pytest-asyncio (its tests are marked
``@pytest.mark.asyncio``, so strict mode works) and channels-core. The
package's pytest plugin has pytest rewrite the suite's asserts, so a failure
shows the values compared.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

try:
    import pytest
    import pytest_asyncio

    from channels.exceptions import (
        ChannelFull,
        ChannelsError,
        ForeignChannelError,
        MessageTooLarge,
    )
except ImportError as exc:  # pragma: no cover - exercised in a separate virtualenv
    if exc.name not in {"pytest", "pytest_asyncio", "channels"}:
        raise
    raise ImportError(
        "channels_testing.conformance needs pytest, pytest-asyncio and channels-core: "
        "pip install channels-testing[conformance]"
    ) from exc

__all__ = ["ChannelLayerConformance", "LayerFactory"]

#: ``make(**options) -> layer``: what the ``make_channel_layer`` fixture returns.
LayerFactory = Callable[..., Any]

# Name rules of the specification ("Channels", "Strings and Unicode"), written
# out here rather than imported so that the suite checks the layer against the
# text, not against the code it may share with channels-core.
_NAME_CHARACTERS = "[A-Za-z0-9._-]"
_PROCESS_SPECIFIC_NAME = re.compile(rf"{_NAME_CHARACTERS}+!{_NAME_CHARACTERS}*")
_LONGEST_NAME = 99  # names must be shorter than 100 characters

_INVALID_CHANNEL_NAMES: list[object] = [
    "",
    "has space",
    "tab\tname",
    "new\nline",
    "ünïcode.name",
    "slash/name",
    "colon:name",
    "star*name",
    "double!bang!name",
    "double?question?name",
    "mixed!bang?name",
    "mixed?question!name",
    "!no-remote-part",
    "?no-prefix",
    "conformance." + "x" * 88,  # 100 characters
    "conformance." + "y" * 500,
    b"bytes.name",
    None,
    42,
    ["list.name"],
]

_INVALID_GROUP_NAMES: list[object] = [
    "",
    "has space",
    "ünïcode-group",
    "bang!group",
    "question?group",
    "slash/group",
    "conformance." + "g" * 88,  # 100 characters
    b"bytes-group",
    None,
    3,
]

_NOT_DICTS: list[object] = ["text", b"bytes", ["type", "x"], (("type", "x"),), None, 1]


def _message(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": f"conformance.{kind}", **fields}


def _expected_fragment(value: object) -> list[str]:
    """Ways an error message may show *value*: itself, its repr, its type."""
    if isinstance(value, str):
        shown = value if len(value) < 40 else value[:20]
        return [shown, repr(shown)[1:-1]]
    return [repr(value), type(value).__name__]


def _describe_difference(sent: Any, received: Any, path: str = "message") -> str | None:
    """Where *received* differs from *sent*, comparing types exactly (True is not 1)."""
    if type(sent) is not type(received):
        return f"{path}: sent {type(sent).__name__} {sent!r:.60}, got {type(received).__name__}"
    if isinstance(sent, dict):
        if sent.keys() != received.keys():
            return f"{path}: sent keys {sorted(sent)}, got {sorted(received)}"
        for key in sent:
            difference = _describe_difference(sent[key], received[key], f"{path}[{key!r}]")
            if difference:
                return difference
        return None
    if isinstance(sent, list):
        if len(sent) != len(received):
            return f"{path}: sent {len(sent)} items, got {len(received)}"
        for index, (one, other) in enumerate(zip(sent, received, strict=True)):
            difference = _describe_difference(one, other, f"{path}[{index}]")
            if difference:
                return difference
        return None
    if sent != received:
        return f"{path}: sent {sent!r:.60}, got {received!r:.60}"
    return None


class ChannelLayerConformance:
    """The Channel Layer Specification as tests; subclass it to run them.

    A subclass provides the ``make_channel_layer`` fixture (see the module
    docstring) and may adjust :attr:`receive_timeout`, :attr:`expiry_wait` and
    :attr:`direct_then_group_ordered`.
    """

    #: Seconds a ``receive()`` may take before the test fails.
    receive_timeout: float = 5.0
    #: Seconds to wait for a message (``expiry=1``) or a group membership
    #: (``group_expiry=1``) to expire.
    expiry_wait: float = 2.5
    #: Whether a message sent to a channel, then one sent to a group holding
    #: that channel, reach it in that order. The specification orders messages
    #: per channel only; a layer that carries the two over different
    #: connections (a sharded pub/sub layer: the channel on one shard, the
    #: group on another) sets this to False, and the capacity test then checks
    #: that the member keeps exactly one of the two.
    direct_then_group_ordered: bool = True

    # -- fixtures ---------------------------------------------------------------

    @pytest.fixture
    def make_channel_layer(self) -> LayerFactory:
        """Overridden by each subclass: returns ``make(**options) -> layer``."""
        raise NotImplementedError(
            f"{type(self).__name__} must define a make_channel_layer fixture that returns "
            "a callable make(**options) -> layer (see channels_testing.conformance)"
        )

    @pytest_asyncio.fixture
    async def new_layer(self, make_channel_layer: LayerFactory) -> AsyncIterator[LayerFactory]:
        """``make_channel_layer``, with every layer made flushed and closed afterwards."""
        made: list[Any] = []

        def make(**options: Any) -> Any:
            layer = make_channel_layer(**options)
            made.append(layer)
            return layer

        yield make
        # Every layer is flushed, then closed, even if another one fails to.
        async with contextlib.AsyncExitStack() as teardown:
            for layer in made:
                close = getattr(layer, "close", None)
                if close is not None:
                    teardown.push_async_callback(close)
                if "flush" in layer.extensions:
                    teardown.push_async_callback(layer.flush)

    # -- helpers ----------------------------------------------------------------

    async def receive(self, layer: Any, channel: str) -> dict[str, Any]:
        """``layer.receive(channel)``, failing the test after :attr:`receive_timeout`."""
        try:
            message: dict[str, Any] = await asyncio.wait_for(
                layer.receive(channel), self.receive_timeout
            )
        except asyncio.TimeoutError:
            pytest.fail(f"nothing arrived on {channel!r} within {self.receive_timeout} s")
        return message

    async def receive_next_is(self, layer: Any, channel: str, expected: dict[str, Any]) -> None:
        """Assert that the next message on *channel* is *expected*."""
        received = await self.receive(layer, channel)
        assert received == expected, f"{channel!r}: expected {expected!r}, got {received!r}"

    async def assert_nothing_waiting(self, layer: Any, channel: str) -> None:
        """Assert that *channel* holds nothing: a marker sent now is the next message.

        This needs no wait for an absence, but relies on ordering, so *channel*
        must be a process-specific channel (ordered by the specification).
        """
        marker = _message("marker", token=random.random())
        await layer.send(channel, marker)
        await self.receive_next_is(layer, channel, marker)

    @staticmethod
    def require_extension(layer: Any, extension: str) -> None:
        if extension not in layer.extensions:
            pytest.skip(
                f"{type(layer).__name__} does not declare the optional {extension!r} "
                f"extension (its extensions are {list(layer.extensions)!r})"
            )

    # -- the layer object ---------------------------------------------------------

    @pytest.mark.asyncio
    async def test_extensions_is_a_list_of_names(self, new_layer: LayerFactory) -> None:
        layer = new_layer()
        assert isinstance(layer.extensions, list), repr(layer.extensions)
        assert all(isinstance(name, str) for name in layer.extensions), layer.extensions

    @pytest.mark.asyncio
    async def test_exceptions_are_those_of_channels(self, new_layer: LayerFactory) -> None:
        # The specification lists ChannelFull and MessageTooLarge among a
        # layer's attributes; code catches them from channels.exceptions.
        layer = new_layer()
        assert layer.ChannelFull is ChannelFull, layer.ChannelFull
        assert layer.MessageTooLarge is MessageTooLarge, layer.MessageTooLarge
        assert issubclass(ChannelFull, ChannelsError)
        assert issubclass(MessageTooLarge, ChannelsError)

    # -- send and receive ---------------------------------------------------------

    @pytest.mark.asyncio
    async def test_send_then_receive(self, new_layer: LayerFactory) -> None:
        layer = new_layer()
        message = _message("hello", text="Hello, world")
        await layer.send("conformance.round-trip", message)
        await self.receive_next_is(layer, "conformance.round-trip", message)

    @pytest.mark.asyncio
    async def test_receive_waits_for_a_later_send(self, new_layer: LayerFactory) -> None:
        layer = new_layer()
        channel = await layer.new_channel()
        receiving = asyncio.ensure_future(self.receive(layer, channel))
        await asyncio.sleep(0.05)
        assert not receiving.done(), "receive() returned before anything was sent"
        await layer.send(channel, _message("late"))
        received = await receiving
        assert received == _message("late"), received

    @pytest.mark.asyncio
    async def test_received_message_is_a_copy(self, new_layer: LayerFactory) -> None:
        layer = new_layer()
        message = _message("copy", items=[1, 2], nested={"key": "before"})
        await layer.send("conformance.copy", message)
        message["items"].append(3)
        message["nested"]["key"] = "after"
        message["type"] = "conformance.changed"
        await self.receive_next_is(
            layer, "conformance.copy", _message("copy", items=[1, 2], nested={"key": "before"})
        )

    @pytest.mark.asyncio
    async def test_fifo_on_a_normal_channel(self, new_layer: LayerFactory) -> None:
        layer = new_layer()
        for number in range(50):
            await layer.send("conformance.fifo", _message("fifo", number=number))
        received = [(await self.receive(layer, "conformance.fifo"))["number"] for _ in range(50)]
        assert received == list(range(50)), received

    @pytest.mark.asyncio
    async def test_fifo_on_a_process_specific_channel(self, new_layer: LayerFactory) -> None:
        layer = new_layer()
        channel = await layer.new_channel()
        for number in range(50):
            await layer.send(channel, _message("fifo", number=number))
        received = [(await self.receive(layer, channel))["number"] for _ in range(50)]
        assert received == list(range(50)), received

    @pytest.mark.asyncio
    async def test_fifo_to_a_waiting_reader(self, new_layer: LayerFactory) -> None:
        layer = new_layer()
        channel = await layer.new_channel()

        async def read(count: int) -> list[int]:
            return [(await self.receive(layer, channel))["number"] for _ in range(count)]

        reading = asyncio.ensure_future(read(30))
        await asyncio.sleep(0.02)
        for number in range(30):
            await layer.send(channel, _message("fifo", number=number))
            if number % 3 == 0:
                await asyncio.sleep(0)
        received = await reading
        assert received == list(range(30)), received

    @pytest.mark.asyncio
    async def test_two_readers_never_get_the_same_message(self, new_layer: LayerFactory) -> None:
        # "Only a single reader should get each written message. Implementations
        # must never deliver a message more than once or to more than one reader."
        total = 100
        layer = new_layer(capacity=total * 2)
        channel = "conformance.shared"
        delivered: list[tuple[str, int]] = []
        all_delivered = asyncio.Event()

        async def read(reader: str) -> None:
            while True:
                message = await layer.receive(channel)
                delivered.append((reader, message["number"]))
                if len(delivered) >= total:
                    all_delivered.set()

        readers = [asyncio.ensure_future(read(name)) for name in ("first", "second")]
        try:
            await asyncio.sleep(0.05)
            for number in range(total):
                await layer.send(channel, _message("once", number=number))
                if number % 10 == 0:
                    await asyncio.sleep(0)
            try:
                await asyncio.wait_for(all_delivered.wait(), self.receive_timeout)
            except asyncio.TimeoutError:
                pytest.fail(f"only {len(delivered)} of {total} messages were delivered")
            # Give a duplicate time to show up.
            await asyncio.sleep(0.1)
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        numbers = sorted(number for _, number in delivered)
        assert numbers == list(range(total)), "some messages were delivered twice or lost"

    @pytest.mark.asyncio
    async def test_concurrent_readers_of_process_specific_channels(
        self, new_layer: LayerFactory
    ) -> None:
        layer = new_layer()
        channels = [await layer.new_channel() for _ in range(20)]
        readers = [asyncio.ensure_future(self.receive(layer, name)) for name in channels]
        await asyncio.sleep(0.05)
        for index, name in reversed(list(enumerate(channels))):
            await layer.send(name, _message("own", index=index))
        received = await asyncio.gather(*readers)
        indexes = [message["index"] for message in received]
        assert indexes == list(range(20)), f"messages went to the wrong readers: {indexes}"

    # -- new_channel ----------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_new_channel_names(self, new_layer: LayerFactory) -> None:
        layer = new_layer()
        names = [await layer.new_channel() for _ in range(20)]
        assert len(set(names)) == len(names), f"new_channel() repeated a name: {names}"
        for name in names:
            assert isinstance(name, str)
            assert len(name) <= _LONGEST_NAME, name
            # A process-specific name: remote part, one "!", local part.
            assert _PROCESS_SPECIFIC_NAME.fullmatch(name), name
        for index, name in enumerate(names):
            await layer.send(name, _message("specific", index=index))
        for index, name in reversed(list(enumerate(names))):
            await self.receive_next_is(layer, name, _message("specific", index=index))

    @pytest.mark.asyncio
    async def test_new_channel_with_prefix(self, new_layer: LayerFactory) -> None:
        # Not in the specification; Channels and channels_redis take a prefix.
        layer = new_layer()
        name = await layer.new_channel(prefix="conformance.custom.")
        assert name.startswith("conformance.custom."), name
        assert _PROCESS_SPECIFIC_NAME.fullmatch(name), name
        await layer.send(name, _message("prefixed"))
        await self.receive_next_is(layer, name, _message("prefixed"))

    # -- cancellation ---------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_cancelled_receive_loses_nothing(self, new_layer: LayerFactory) -> None:
        layer = new_layer()
        for channel in ("conformance.cancelled", await layer.new_channel()):
            waiting = asyncio.ensure_future(layer.receive(channel))
            await asyncio.sleep(0.05)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await layer.send(channel, _message("after-cancel", number=1))
            await layer.send(channel, _message("after-cancel", number=2))
            await self.receive_next_is(layer, channel, _message("after-cancel", number=1))
            await self.receive_next_is(layer, channel, _message("after-cancel", number=2))

    @pytest.mark.asyncio
    async def test_cancel_racing_a_send_loses_nothing(self, new_layer: LayerFactory) -> None:
        # The receive is cancelled at a different moment relative to the send
        # in each round: before it started waiting, just as the message
        # arrives, after the message was handed over. Whatever the cancelled
        # receive did not return must reach the next one, in order.
        layer = new_layer()
        channel = await layer.new_channel()
        rounds = 30
        returned: list[int] = []
        for number in range(rounds):
            waiting = asyncio.ensure_future(layer.receive(channel))
            for _ in range(number % 5):
                await asyncio.sleep(0)
            if number % 7 == 6:
                await asyncio.sleep(0.01)
            await layer.send(channel, _message("race", number=number))
            for _ in range(number // 5 % 3):
                await asyncio.sleep(0)
            waiting.cancel()
            try:
                returned.append((await waiting)["number"])
            except asyncio.CancelledError:
                pass
        drained: list[int] = []
        while len(returned) + len(drained) < rounds:
            try:
                message = await asyncio.wait_for(layer.receive(channel), self.receive_timeout)
            except asyncio.TimeoutError:
                break
            drained.append(message["number"])
        assert sorted(returned + drained) == list(range(rounds)), (
            f"lost or repeated: returned by the receives {returned}; left on the channel {drained}"
        )
        assert returned + drained == list(range(rounds)), (
            f"out of order: returned by the receives {returned}; left on the channel {drained}"
        )
        await self.assert_nothing_waiting(layer, channel)

    @pytest.mark.asyncio
    async def test_cancelled_reader_hands_its_message_to_another(
        self, new_layer: LayerFactory
    ) -> None:
        # Two readers wait; the first is cancelled as the message arrives. The
        # message is then either returned by the first or received by the
        # second, never lost and never both.
        layer = new_layer()
        channel = "conformance.hand-over"
        first = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0.05)
        await layer.send(channel, _message("hand-over"))
        first.cancel()
        try:
            returned = await first
        except asyncio.CancelledError:
            try:
                received = await asyncio.wait_for(second, self.receive_timeout)
            except asyncio.TimeoutError:
                pytest.fail("the cancelled reader took the message with it")
            assert received == _message("hand-over"), received
        else:
            assert returned == _message("hand-over"), returned
            await asyncio.sleep(0.1)
            assert not second.done(), "both readers got the message"
            second.cancel()
            await asyncio.gather(second, return_exceptions=True)

    # -- expiry ---------------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_unread_messages_expire(self, new_layer: LayerFactory) -> None:
        layer = new_layer(expiry=1)
        channels = ["conformance.expiry", await layer.new_channel()]
        for channel in channels:
            await layer.send(channel, _message("stale"))
        await asyncio.sleep(self.expiry_wait)
        for channel in channels:
            await layer.send(channel, _message("fresh"))
            await self.receive_next_is(layer, channel, _message("fresh"))

    # -- capacity -------------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_send_to_a_full_channel_raises_channel_full(
        self, new_layer: LayerFactory
    ) -> None:
        layer = new_layer(capacity=3)
        channel = "conformance.full"
        for number in range(3):
            await layer.send(channel, _message("fill", number=number))
        with pytest.raises(ChannelFull):
            await layer.send(channel, _message("fill", number=3))
        # Other channels have capacities of their own.
        await layer.send("conformance.not-full", _message("other"))
        await self.receive_next_is(layer, "conformance.not-full", _message("other"))
        # Reading makes room again; the refused message was never queued.
        await self.receive_next_is(layer, channel, _message("fill", number=0))
        await layer.send(channel, _message("fill", number=4))
        for number in (1, 2, 4):
            await self.receive_next_is(layer, channel, _message("fill", number=number))

    @pytest.mark.asyncio
    async def test_process_specific_channels_share_capacity(self, new_layer: LayerFactory) -> None:
        # "Process-local channels must apply their capacity on the non-local
        # part (that is, up to and including the ! character)."
        layer = new_layer(capacity=2)
        remote = (await layer.new_channel()).split("!")[0] + "!"
        await layer.send(remote + "one", _message("shared", number=1))
        await layer.send(remote + "two", _message("shared", number=2))
        with pytest.raises(ChannelFull):
            await layer.send(remote + "three", _message("shared", number=3))
        other = await layer.new_channel()
        await layer.send(other, _message("other"))
        await self.receive_next_is(layer, remote + "one", _message("shared", number=1))
        await layer.send(remote + "three", _message("shared", number=3))
        await self.receive_next_is(layer, remote + "two", _message("shared", number=2))
        await self.receive_next_is(layer, remote + "three", _message("shared", number=3))
        await self.receive_next_is(layer, other, _message("other"))

    @pytest.mark.asyncio
    async def test_channel_capacity_glob(self, new_layer: LayerFactory) -> None:
        layer = new_layer(capacity=3, channel_capacity={"conformance.glob.*": 1})
        await layer.send("conformance.glob.small", _message("glob"))
        with pytest.raises(ChannelFull):
            await layer.send("conformance.glob.small", _message("glob"))
        for _ in range(3):
            await layer.send("conformance.default", _message("default"))
        with pytest.raises(ChannelFull):
            await layer.send("conformance.default", _message("default"))

    @pytest.mark.asyncio
    async def test_channel_capacity_regex(self, new_layer: LayerFactory) -> None:
        pattern = re.compile(r"^conformance\.regex\.")
        layer = new_layer(capacity=1, channel_capacity={pattern: 2})
        for _ in range(2):
            await layer.send("conformance.regex.medium", _message("regex"))
        with pytest.raises(ChannelFull):
            await layer.send("conformance.regex.medium", _message("regex"))
        await layer.send("conformance.not.regex", _message("default"))
        with pytest.raises(ChannelFull):
            await layer.send("conformance.not.regex", _message("default"))

    @pytest.mark.asyncio
    async def test_group_send_to_a_full_member_drops_silently(
        self, new_layer: LayerFactory
    ) -> None:
        # "Sending to a group never raises ChannelFull; instead, it must
        # silently drop the message if it is over capacity."
        layer = new_layer(capacity=1)
        self.require_extension(layer, "groups")
        full, free = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("conformance-full", full)
        await layer.group_add("conformance-full", free)
        await layer.send(full, _message("direct"))
        await layer.group_send("conformance-full", _message("broadcast"))
        await self.receive_next_is(layer, free, _message("broadcast"))
        if self.direct_then_group_ordered:
            await self.receive_next_is(layer, full, _message("direct"))
        else:
            kept = await self.receive(layer, full)
            assert kept in (_message("direct"), _message("broadcast")), kept
        await self.assert_nothing_waiting(layer, full)

    # -- groups ---------------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_group_send_reaches_each_member_once(self, new_layer: LayerFactory) -> None:
        layer = new_layer()
        self.require_extension(layer, "groups")
        members = [await layer.new_channel() for _ in range(3)]
        for member in members:
            await layer.group_add("conformance-group", member)
        # Adding a member again is harmless and does not duplicate it.
        await layer.group_add("conformance-group", members[0])
        await layer.group_send("conformance-group", _message("broadcast", text="hi"))
        for member in members:
            await self.receive_next_is(layer, member, _message("broadcast", text="hi"))
            await self.assert_nothing_waiting(layer, member)

    @pytest.mark.asyncio
    async def test_group_send_gives_each_member_its_own_copy(self, new_layer: LayerFactory) -> None:
        layer = new_layer()
        self.require_extension(layer, "groups")
        first, second = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("conformance-copies", first)
        await layer.group_add("conformance-copies", second)
        message = _message("broadcast", items=[1])
        await layer.group_send("conformance-copies", message)
        message["items"].append("sender")
        received = await self.receive(layer, first)
        received["items"].append("first reader")
        await self.receive_next_is(layer, second, _message("broadcast", items=[1]))

    @pytest.mark.asyncio
    async def test_a_channel_in_several_groups(self, new_layer: LayerFactory) -> None:
        layer = new_layer()
        self.require_extension(layer, "groups")
        channel = await layer.new_channel()
        await layer.group_add("conformance-a", channel)
        await layer.group_add("conformance-b", channel)
        await layer.group_send("conformance-a", _message("from", group="a"))
        await layer.group_send("conformance-b", _message("from", group="b"))
        await self.receive_next_is(layer, channel, _message("from", group="a"))
        await self.receive_next_is(layer, channel, _message("from", group="b"))

    @pytest.mark.asyncio
    async def test_group_discard(self, new_layer: LayerFactory) -> None:
        layer = new_layer()
        self.require_extension(layer, "groups")
        leaving, staying = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("conformance-discard", leaving)
        await layer.group_add("conformance-discard", staying)
        await layer.group_discard("conformance-discard", leaving)
        await layer.group_send("conformance-discard", _message("after-discard"))
        await self.receive_next_is(layer, staying, _message("after-discard"))
        await self.assert_nothing_waiting(layer, leaving)

    @pytest.mark.asyncio
    async def test_group_discard_of_a_non_member_does_nothing(
        self, new_layer: LayerFactory
    ) -> None:
        layer = new_layer()
        self.require_extension(layer, "groups")
        member, stranger = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("conformance-members", member)
        await layer.group_discard("conformance-members", stranger)
        await layer.group_discard("conformance-no-such-group", member)
        await layer.group_discard("conformance-members", member)
        await layer.group_discard("conformance-members", member)
        await layer.group_add("conformance-members", member)
        await layer.group_send("conformance-members", _message("still-works"))
        await self.receive_next_is(layer, member, _message("still-works"))
        await self.assert_nothing_waiting(layer, stranger)

    @pytest.mark.asyncio
    async def test_group_send_to_an_empty_group_does_nothing(self, new_layer: LayerFactory) -> None:
        layer = new_layer()
        self.require_extension(layer, "groups")
        channel = await layer.new_channel()
        await layer.group_send("conformance-never-used", _message("nobody"))
        await layer.group_add("conformance-emptied", channel)
        await layer.group_discard("conformance-emptied", channel)
        await layer.group_send("conformance-emptied", _message("nobody"))
        await self.assert_nothing_waiting(layer, channel)

    @pytest.mark.asyncio
    async def test_group_expiry_default_is_a_day(self, new_layer: LayerFactory) -> None:
        layer = new_layer()
        self.require_extension(layer, "groups")
        assert layer.group_expiry == 86400, layer.group_expiry

    @pytest.mark.asyncio
    async def test_group_membership_expires(self, new_layer: LayerFactory) -> None:
        # "Channel layers must also drop group membership after a configurable
        # long timeout after the most recent group_add call."
        layer = new_layer(group_expiry=1)
        self.require_extension(layer, "groups")
        assert layer.group_expiry == 1, layer.group_expiry
        channel = await layer.new_channel()
        await layer.group_add("conformance-expiring", channel)
        await asyncio.sleep(self.expiry_wait)
        await layer.group_send("conformance-expiring", _message("too-late"))
        await self.assert_nothing_waiting(layer, channel)
        # A new group_add starts a new membership.
        await layer.group_add("conformance-expiring", channel)
        await layer.group_send("conformance-expiring", _message("welcome-back"))
        await self.receive_next_is(layer, channel, _message("welcome-back"))

    # -- flush ----------------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_flush_empties_channels_and_groups(self, new_layer: LayerFactory) -> None:
        layer = new_layer(capacity=1)
        self.require_extension(layer, "flush")
        normal, specific = "conformance.flushed", await layer.new_channel()
        await layer.send(normal, _message("flushed"))
        await layer.send(specific, _message("flushed"))
        has_groups = "groups" in layer.extensions
        if has_groups:
            await layer.group_add("conformance-flushed", specific)
        await layer.flush()
        if has_groups:
            await layer.group_send("conformance-flushed", _message("flushed-group"))
        # Both channels are empty, and so have room again at capacity 1.
        await layer.send(normal, _message("after-flush"))
        await self.receive_next_is(layer, normal, _message("after-flush"))
        await self.assert_nothing_waiting(layer, specific)

    # -- names ----------------------------------------------------------------------

    def _name_calls(
        self, layer: Any, method: str, channel: str, group: str
    ) -> Callable[[object], Any]:
        """A call of *method* that puts the name under test in one argument."""
        calls: dict[str, Callable[[object], Any]] = {
            "send": lambda name: layer.send(name, _message("name")),
            "receive": lambda name: layer.receive(name),
            "group_add(channel)": lambda name: layer.group_add(group, name),
            "group_discard(channel)": lambda name: layer.group_discard(group, name),
            "group_add(group)": lambda name: layer.group_add(name, channel),
            "group_discard(group)": lambda name: layer.group_discard(name, channel),
            "group_send(group)": lambda name: layer.group_send(name, _message("name")),
        }
        return calls[method]

    async def _check_rejected(self, layer: Any, method: str, bad_names: Iterable[object]) -> None:
        call = self._name_calls(layer, method, "conformance.valid", "conformance-valid")
        problems = []
        for name in bad_names:
            try:
                await asyncio.wait_for(call(name), self.receive_timeout)
            except TypeError as exc:
                if not any(fragment in str(exc) for fragment in _expected_fragment(name)):
                    problems.append(f"{name!r}: the message does not name it: {exc}")
            except asyncio.TimeoutError:
                problems.append(f"{name!r}: {method} waited instead of raising TypeError")
            except Exception as exc:  # noqa: BLE001 - reported below
                problems.append(f"{name!r}: raised {type(exc).__name__}, not TypeError: {exc}")
            else:
                problems.append(f"{name!r}: accepted")
        assert not problems, f"{method} with invalid names:\n" + "\n".join(problems)

    @pytest.mark.parametrize(
        "method", ["send", "receive", "group_add(channel)", "group_discard(channel)"]
    )
    @pytest.mark.asyncio
    async def test_invalid_channel_names_raise_type_error(
        self, new_layer: LayerFactory, method: str
    ) -> None:
        layer = new_layer()
        if method.startswith("group_"):
            self.require_extension(layer, "groups")
        await self._check_rejected(layer, method, _INVALID_CHANNEL_NAMES)

    @pytest.mark.parametrize(
        "method", ["group_add(group)", "group_discard(group)", "group_send(group)"]
    )
    @pytest.mark.asyncio
    async def test_invalid_group_names_raise_type_error(
        self, new_layer: LayerFactory, method: str
    ) -> None:
        layer = new_layer()
        self.require_extension(layer, "groups")
        await self._check_rejected(layer, method, _INVALID_GROUP_NAMES)

    @pytest.mark.asyncio
    async def test_valid_channel_names(self, new_layer: LayerFactory) -> None:
        layer = new_layer()
        remote = (await layer.new_channel()).split("!")[0] + "!"
        longest_specific = remote + "z" * (_LONGEST_NAME - len(remote))
        receivable = [
            "a",
            "-_.0123456789azAZ",
            "conformance." + "x" * (_LONGEST_NAME - len("conformance.")),
            "single.reader?local",
            remote + "local-part_1.2",
            longest_specific,
        ]
        for name in receivable:
            await layer.send(name, _message("valid", name=name))
            await self.receive_next_is(layer, name, _message("valid", name=name))
        # A process-specific name of another process: sent to, never read here.
        await layer.send("elsewhere.process!local", _message("valid"))
        if "groups" in layer.extensions:
            for name in [*receivable, "elsewhere.process!local"]:
                await layer.group_add("conformance-valid", name)
                await layer.group_discard("conformance-valid", name)

    @pytest.mark.asyncio
    async def test_receive_on_unknown_process_local_channel_raises(
        self, new_layer: LayerFactory
    ) -> None:
        # Messages on a process-specific channel go to the process that made
        # it ("Process-specific channels"): a receive() elsewhere would wait
        # forever, so it raises at once.
        layer = new_layer()
        remote = (await layer.new_channel()).split("!")[0] + "!"
        foreign = ["elsewhere.process!local", "elsewhere.process!", "other." + remote + "local"]
        problems = []
        for name in foreign:
            try:
                await asyncio.wait_for(layer.receive(name), self.receive_timeout)
            except ForeignChannelError as exc:
                if name not in str(exc):
                    problems.append(f"{name!r}: the message does not name it: {exc}")
            except asyncio.TimeoutError:
                problems.append(f"{name!r}: receive() waited instead of raising")
            except Exception as exc:  # noqa: BLE001 - reported below
                problems.append(
                    f"{name!r}: raised {type(exc).__name__}, not ForeignChannelError: {exc}"
                )
            else:
                problems.append(f"{name!r}: receive() returned a message")
        assert not problems, "receive() on another process's channel:\n" + "\n".join(problems)
        # The layer's own channels still work afterwards.
        channel = await layer.new_channel()
        await layer.send(channel, _message("own"))
        await self.receive_next_is(layer, channel, _message("own"))

    @pytest.mark.asyncio
    async def test_valid_group_names(self, new_layer: LayerFactory) -> None:
        layer = new_layer()
        self.require_extension(layer, "groups")
        channel = await layer.new_channel()
        for group in ["g", "-_.0123456789azAZ", "conformance." + "g" * 87]:
            assert len(group) <= _LONGEST_NAME
            await layer.group_add(group, channel)
            await layer.group_send(group, _message("grouped", group=group))
            await self.receive_next_is(layer, channel, _message("grouped", group=group))
            await layer.group_discard(group, channel)

    # -- messages -------------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_messages_must_be_dicts(self, new_layer: LayerFactory) -> None:
        layer = new_layer()
        for not_a_dict in _NOT_DICTS:
            with pytest.raises(TypeError):
                await layer.send("conformance.not-dict", not_a_dict)
        if "groups" in layer.extensions:
            channel = await layer.new_channel()
            await layer.group_add("conformance-not-dict", channel)
            for not_a_dict in _NOT_DICTS:
                with pytest.raises(TypeError):
                    await layer.group_send("conformance-not-dict", not_a_dict)
            await self.assert_nothing_waiting(layer, channel)

    @pytest.mark.asyncio
    async def test_every_value_type_round_trips(self, new_layer: LayerFactory) -> None:
        # "Messages ... are only allowed to contain the following types."
        message = _message(
            "types",
            bytes=b"\x00\x01\x7f\x80\xff",
            empty_bytes=b"",
            text="h\u00e9llo \u2713 \U0001f600",
            empty_text="",
            text_with_nul="a\x00b",
            integer=42,
            zero=0,
            negative=-7,
            int64_max=2**63 - 1,
            int64_min=-(2**63),
            real=3.25,
            negative_real=-0.5,
            float_max=sys.float_info.max,
            float_tiny=sys.float_info.min,
            items=[1, "two", b"three", None, True, 4.5, [5], {"six": 6}],
            empty_items=[],
            nested={"level": {"deeper": [{"key": "value"}], "flag": False}},
            empty_dict={},
            true=True,
            false=False,
            nothing=None,
        )
        layer = new_layer()
        await layer.send("conformance.types", message)
        received = await self.receive(layer, "conformance.types")
        difference = _describe_difference(message, received)
        assert difference is None, difference
        if "groups" in layer.extensions:
            channel = await layer.new_channel()
            await layer.group_add("conformance-types", channel)
            await layer.group_send("conformance-types", message)
            received = await self.receive(layer, channel)
            difference = _describe_difference(message, received)
            assert difference is None, f"through group_send: {difference}"

    @pytest.mark.asyncio
    async def test_one_megabyte_messages(self, new_layer: LayerFactory) -> None:
        # "All channel layers must support messages up to this size" (1 MB).
        layer = new_layer()
        text = "".join(random.Random(1).choices("abcdefghij0123456789", k=1_000_000))
        data = random.Random(2).randbytes(1_000_000)
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "conformance.large", "text": text})
        await layer.send(channel, {"type": "conformance.large", "bytes": data})
        received = await self.receive(layer, channel)
        assert received["text"] == text, "the 1,000,000-character text came back changed"
        received = await self.receive(layer, channel)
        assert received["bytes"] == data, "the 1,000,000-byte value came back changed"
