"""Messages Redis has handed to this process, waiting for ``receive()``.

A :class:`QueueReader` pops messages off one Redis list, with a blocking
``BLMPOP`` that takes a batch at a time, and puts them in the
:class:`LocalBuffer`, one bounded :class:`Mailbox` per channel, where
``receive()`` collects them:

* For a process-specific name (``specific.abc!``) one reader per event loop
  runs for as long as the layer is open, and hands each message to the
  mailbox of its local channel (``specific.abc!xyz``).
* For any other channel a reader runs only while some ``receive()`` is
  waiting on that channel, and pops no more than there are receivers.

A message leaves its mailbox only inside a ``receive()`` that then returns
it, so cancelling ``receive()`` never loses a message that Redis already
handed over: the next ``receive()`` on that channel gets it. (Messages of an
ordinary channel still in a mailbox when the layer closes go back to the
head of the Redis list, for other processes to read.)

Mailboxes are bounded: when a local channel's reader falls behind by more
than its capacity, the oldest message is dropped, as Redis would have refused
the newest. Messages expire locally at the same deadline they had in Redis.

When Redis goes away a reader logs one warning, retries with exponential
backoff (up to a couple of seconds between attempts), and logs once more
when it is back; receivers just keep waiting.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis.exceptions

from .errors import UndecryptableMessage, map_redis_errors
from .scripts import DRAIN
from .serializers import PayloadDecoder
from .wire import now_ms, queue_name, unpack_element

if TYPE_CHECKING:
    from .commands import Commands

__all__ = ["LocalBuffer", "Mailbox", "QueueReader"]

logger = logging.getLogger("channels_redis")


_IMMUTABLE = frozenset({str, bytes, int, float, bool, type(None)})


def _is_flat(message: dict[str, Any]) -> bool:
    """Whether every value of *message* is immutable (a shallow copy is a full copy)."""
    # Exact types, not isinstance(): a subclass of str or int may hold mutable
    # attributes. fast path: bench/redis_layer.py "group_send to 1000" (one
    # process holds every member): dict() 0.1 us against a decode 0.4 us a
    # member (timeit), about 0.3 ms of that row's 10 ms.
    immutable = _IMMUTABLE
    return all(type(value) in immutable for value in message.values())


def _describe(exc: BaseException) -> str:
    """*exc* for a log line: an undecryptable message says why; anything else is named."""
    if isinstance(exc, (UndecryptableMessage, ValueError, TypeError)) and str(exc):
        return f"{type(exc).__name__}: {exc}"
    return repr(exc)


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel *task* and wait until it has ended.

    The cancellation is repeated: a task can swallow one (timeouts inside
    redis-py may, when they expire at the same moment), and a loop that
    missed it must not keep the layer from closing.
    """
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.05)
    if task is not None and not task.cancelled() and task.exception() is not None:
        logger.debug("A background task ended with %r", task.exception())


#: One message held for a channel: (deadline in epoch ms, message, the Redis
#: element or None, whether Redis counts the message against the channel's
#: capacity).
_Entry = tuple[int, dict[str, Any], bytes | None, bool]


class Mailbox:
    """One channel's messages in this process, and the receivers waiting.

    Each queue exists only while it holds something (``None`` otherwise): the
    typical mailbox is an idle consumer's, with one receiver waiting and no
    message, and two empty deques cost it 1.5 KiB (``bench/server.py``,
    ``idle-5000-redis``).
    """

    __slots__ = ("dropped", "limit", "messages", "waiters")

    def __init__(self, limit: int = 0) -> None:
        #: The channel's capacity, looked up with its first message (0 until
        #: then): a receiver that only waits costs the layer no cached capacity.
        self.limit = limit
        self.messages: deque[_Entry] | None = None
        #: The receivers' futures, oldest first: the future itself while
        #: there is one (a consumer's mailbox), a list while there are more.
        self.waiters: asyncio.Future[None] | list[asyncio.Future[None]] | None = None
        self.dropped = 0

    def waiting(self) -> int:
        waiters = self.waiters
        if waiters is None:
            return 0
        if type(waiters) is list:
            return sum(1 for waiter in waiters if not waiter.done())
        return 0 if waiters.done() else 1  # type: ignore[union-attr]

    def wake_one(self) -> None:
        waiters = self.waiters
        if waiters is None:
            return
        for waiter in waiters if type(waiters) is list else (waiters,):
            if not waiter.done():  # type: ignore[union-attr]
                waiter.set_result(None)  # type: ignore[union-attr]
                return

    def add_waiter(self, waiter: asyncio.Future[None]) -> None:
        waiters = self.waiters
        if waiters is None:
            self.waiters = waiter
        elif type(waiters) is list:
            waiters.append(waiter)
        else:
            self.waiters = [waiters, waiter]  # type: ignore[list-item]

    def remove_waiter(self, waiter: asyncio.Future[None]) -> None:
        waiters = self.waiters
        if waiters is waiter:
            self.waiters = None
        elif type(waiters) is list and waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                self.waiters = None

    def pop_live(self, now: int) -> tuple[dict[str, Any] | None, int]:
        """The oldest message not expired, and how many counted messages left."""
        messages = self.messages
        counted = 0
        found = None
        while messages:
            deadline, message, _, is_counted = messages.popleft()
            counted += is_counted
            if deadline > now:
                found = message
                break
        if not messages:
            self.messages = None
        return found, counted

    def pop_expired(self, now: int) -> int:
        """Drop the expired messages at the head; how many of them were counted."""
        messages = self.messages
        counted = 0
        while messages and messages[0][0] <= now:
            counted += messages.popleft()[3]
        if not messages:
            self.messages = None
        return counted


class LocalBuffer:
    """The mailboxes of one event loop.

    :param limit_for: the capacity of a channel (its mailbox's bound).
    :param consumed: called with a process-specific channel and a number of
        its messages that left the buffer (received, expired or dropped), so
        that the channel's count in Redis goes down.
    """

    def __init__(
        self, limit_for: Callable[[str], int], consumed: Callable[[str, int], None]
    ) -> None:
        self.limit_for = limit_for
        self.consumed = consumed
        self.mailboxes: dict[str, Mailbox] = {}

    def mailbox(self, channel: str) -> Mailbox:
        box = self.mailboxes.get(channel)
        if box is None:
            box = self.mailboxes[channel] = Mailbox()
        return box

    def put(
        self,
        channel: str,
        deadline: int,
        message: dict[str, Any],
        raw: bytes | None = None,
        counted: bool = False,
    ) -> None:
        """Hand *message* to *channel*'s receivers (dropped if the channel is full).

        *raw* is the Redis element, kept to give it back at close; *counted*
        says Redis counts the message against the channel's capacity.
        """
        box = self.mailboxes.get(channel)
        if box is None:
            box = self.mailboxes[channel] = Mailbox()
        if not box.limit:
            box.limit = self.limit_for(channel)
        messages = box.messages
        if messages is not None and len(messages) >= box.limit:
            # Only when Redis lost count (a restart): the channel is full, so
            # the newest message is the one dropped, as Redis would have.
            box.dropped += 1
            if box.dropped == 1 or box.dropped % 1000 == 0:
                logger.warning(
                    "Channel %r is full: %d message(s) dropped (it holds at most %d "
                    "unreceived messages, its capacity)",
                    channel,
                    box.dropped,
                    box.limit,
                )
            if counted:
                self.consumed(channel, 1)
            return
        if messages is None:
            box.messages = deque(((deadline, message, raw, counted),))
        else:
            messages.append((deadline, message, raw, counted))
        if box.waiters:
            box.wake_one()

    async def get(self, channel: str) -> dict[str, Any]:
        """The next live message of *channel*, waiting for one if needed."""
        box = self.mailbox(channel)
        loop = asyncio.get_running_loop()
        while True:
            if box.messages:
                message, counted = box.pop_live(now_ms())
                if counted:
                    self.consumed(channel, counted)
                if message is not None:
                    if box.messages and box.waiters:
                        box.wake_one()
                    self._forget_if_idle(channel, box)
                    return message
            waiter: asyncio.Future[None] = loop.create_future()
            box.add_waiter(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and box.messages:
                    # Woken for a message we will not take: pass the turn on.
                    box.remove_waiter(waiter)
                    box.wake_one()
                raise
            finally:
                box.remove_waiter(waiter)
                self._forget_if_idle(channel, box)
            if self.mailboxes.get(channel) is not box:
                # flush() emptied the buffer while we waited.
                box = self.mailbox(channel)

    def _forget_if_idle(self, channel: str, box: Mailbox) -> None:
        if not box.messages and not box.waiters and self.mailboxes.get(channel) is box:
            del self.mailboxes[channel]

    def sweep(self) -> None:
        """Drop expired messages, and mailboxes nobody uses."""
        now = now_ms()
        for channel, box in list(self.mailboxes.items()):
            counted = box.pop_expired(now)
            if counted:
                self.consumed(channel, counted)
            self._forget_if_idle(channel, box)

    def clear(self) -> None:
        """Drop every message (flush); receivers already waiting keep waiting."""
        kept = {}
        for channel, box in self.mailboxes.items():
            box.messages = None
            if box.waiters:
                kept[channel] = box
        self.mailboxes = kept

    def release_counted(self) -> None:
        """Report every message of a process-specific channel as gone (closing)."""
        for channel, box in self.mailboxes.items():
            messages = box.messages
            counted = 0 if messages is None else sum(entry[3] for entry in messages)
            if messages is not None and counted:
                self.consumed(channel, counted)
                kept = deque(entry for entry in messages if not entry[3])
                box.messages = kept or None

    def take_unclaimed(self, channel: str) -> list[bytes]:
        """Remove and return the Redis elements of *channel* nobody received."""
        box = self.mailboxes.get(channel)
        if box is None or box.messages is None:
            return []
        elements = [entry[2] for entry in box.messages if entry[2] is not None]
        box.messages = None
        self._forget_if_idle(channel, box)
        return elements


class QueueReader:
    """Pops one Redis list into a :class:`LocalBuffer`, as a task.

    :param name: the channel (or process-specific non-local name, ending in
        ``!``) whose list this reader empties.
    :param persistent: keep reading while the layer is open (process-specific
        names), rather than only while receivers wait on *name*.
    """

    #: Seconds a blocking pop waits before it returns empty-handed.
    BLOCK_SECONDS = 2.0
    #: The most messages taken in one pop.
    BATCH = 500
    #: Backoff between reconnection attempts: from MIN to MAX seconds.
    BACKOFF_MIN = 0.05
    BACKOFF_MAX = 2.0

    def __init__(
        self,
        name: str,
        key: str,
        commands: Commands,
        buffer: LocalBuffer,
        decoder: PayloadDecoder,
        *,
        persistent: bool,
        block_seconds: float | None = None,
    ) -> None:
        self.name = name
        self.key = key
        self.commands = commands
        self.buffer = buffer
        self.decoder = decoder
        self.persistent = persistent
        self.block_seconds = self.BLOCK_SECONDS if block_seconds is None else block_seconds
        self.task: asyncio.Task[None] | None = None
        self.stopped = False
        self.use_blmpop = True
        self.failing = False
        self.next_sweep = 0.0

    def start(self) -> None:
        """Start reading unless already running (for a channel: if anyone waits)."""
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(
                self.run(), name=f"channels_redis reader {self.name}"
            )

    async def stop(self) -> None:
        self.stopped = True
        await stop_task(self.task)

    async def halt(self) -> None:
        """Stop reading for now (:meth:`start` resumes).

        A blocking pop in flight is abandoned with its connection, and with
        it whatever Redis had already handed over on it (``flush()`` wants
        exactly that).
        """
        await stop_task(self.task)
        self.task = None

    def wanted(self) -> bool:
        if self.stopped:
            return False
        if self.persistent:
            return True
        box = self.buffer.mailboxes.get(self.name)
        return box is not None and box.waiting() > len(box.messages or ())

    async def run(self) -> None:
        attempt = 0
        while self.wanted():
            if not self.persistent:
                box = self.buffer.mailboxes.get(self.name)
                count = 1 if box is None else max(1, min(box.waiting(), self.BATCH))
            else:
                count = self.BATCH
            try:
                elements = await self.pop(count)
            except Exception as exc:
                attempt += 1
                if not self.failing:
                    self.failing = True
                    if isinstance(exc, redis.exceptions.ResponseError):
                        # A key of another type (written by hand, or by another
                        # program) under the channel's name: it may go away.
                        logger.warning(
                            "Redis refused to read %r (%s); retrying in the background",
                            self.name,
                            exc,
                        )
                    elif isinstance(exc, (redis.exceptions.RedisError, OSError)):
                        logger.warning(
                            "Lost Redis while receiving on %r (%s); reconnecting in the background",
                            self.name,
                            exc,
                        )
                    else:
                        logger.exception("Receiving on %r failed; retrying", self.name)
                delay = min(self.BACKOFF_MAX, self.BACKOFF_MIN * 2 ** min(attempt, 10))
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
                continue
            if self.failing:
                self.failing = False
                logger.warning("Redis is back: receiving on %r again", self.name)
            attempt = 0
            if elements:
                try:
                    self.deliver(elements)
                except Exception:
                    # A bug, not bad data (deliver() drops that): the loop
                    # must still serve the channel's next messages.
                    logger.exception("Handing out messages received on %r failed", self.name)
            if self.persistent:
                now = time.monotonic()
                if now >= self.next_sweep:
                    self.next_sweep = now + 1.0
                    self.buffer.sweep()

    async def pop(self, count: int) -> list[bytes]:
        key = self.key
        block = self.block_seconds
        commands = self.commands
        if self.use_blmpop:
            try:
                reply = await commands.execute_at(
                    key, "BLMPOP", block, 1, key, "LEFT", "COUNT", count
                )
            except redis.exceptions.ResponseError as exc:
                if "unknown command" not in str(exc).lower():
                    raise
                # Redis older than 7.0: BLPOP, then take the rest of the batch.
                self.use_blmpop = False
            else:
                if reply is None:
                    return []
                elements: list[bytes] = reply[1]
                return elements
        reply = await commands.execute_at(key, "BLPOP", key, max(1, round(block)))
        if reply is None:
            return []
        first: bytes = reply[1]
        if count == 1:
            return [first]
        rest: list[bytes] = await DRAIN.run(commands, [key], [count - 1])
        return [first, *rest]

    def deliver(self, elements: list[bytes]) -> None:
        now = now_ms()
        decoder = self.decoder
        buffer = self.buffer
        persistent = self.persistent
        for element in elements:
            # Anything may have been pushed into the list (another serializer,
            # another key, junk written by hand): such an element is dropped
            # with one warning, and the loop goes on with the next.
            channels: list[str] | None = None
            try:
                deadline, channels, payload = unpack_element(element)
                if channels is None:
                    channels = [self.name]
                    raw = None if persistent else element
                elif not persistent or not self._ours(channels):
                    channels = None
                    raise ValueError("its header names channels this list does not serve")
                else:
                    raw = None
                if deadline <= now:
                    self._release(channels, raw)
                    continue
                plain = decoder.open(payload)
                first = decoder.decode(plain)
                if not isinstance(first, dict):
                    raise TypeError(f"it decodes to {type(first).__name__!r}, not to a dict")
            except Exception as exc:  # noqa: BLE001 - a serializer may raise anything
                logger.warning(
                    "Dropped a message on %r that cannot be decoded: %s",
                    self.name if channels is None else channels[0],
                    _describe(exc),
                )
                if channels is not None:
                    self._release(channels, raw)
                continue
            counted = raw is None
            put = buffer.put
            put(channels[0], deadline, first, raw, counted)
            if len(channels) > 1:
                # A group's members in this process: each gets a message of its
                # own. A flat message of immutable values is copied; any other
                # is decoded again, which copies it all the way down.
                if _is_flat(first):
                    for channel in channels[1:]:
                        put(channel, deadline, dict(first), raw, counted)
                else:
                    for channel in channels[1:]:
                        put(channel, deadline, decoder.decode(plain), raw, counted)

    def _ours(self, channels: list[str]) -> bool:
        # Every channel an element of a process queue names must queue here:
        # its count lives in this process's hash, and its mailbox is ours.
        name = self.name
        return all("!" in channel and queue_name(channel) == name for channel in channels)

    def _release(self, channels: list[str], raw: bytes | None) -> None:
        # Messages of process-specific channels that will never be received
        # must stop counting against the channels' capacity.
        if raw is None:
            for channel in channels:
                self.buffer.consumed(channel, 1)

    async def return_unclaimed(self) -> None:
        """Put messages nobody received back at the head of the Redis list."""
        if self.persistent:
            return
        elements = self.buffer.take_unclaimed(self.name)
        if elements:
            # LPUSHX: a list that is gone was flushed, or held only expired
            # messages; recreating it would make a key without an expiry.
            with map_redis_errors(f"returning unreceived messages to {self.name!r}"):
                await self.commands.execute("LPUSHX", self.key, *reversed(elements))
