"""Concurrent writes to one shard share one round trip.

Every ``send()`` is one call of the ``SEND`` script, but sends made in the
same turn of the event loop (fifty consumers answering at once, a server
relaying a burst) are not sent one by one: :class:`ShardWriter` collects them
until the loop next runs its callbacks and then calls the script once with
all of them, so Redis parses one command and the client reads one reply. A
lone send waits for nothing: its batch leaves on the very next loop turn.
Each sender still gets its own answer (queued, or the channel was full).

The same calls carry the receiving side's acknowledgements: how many
messages of each process-specific channel this process's consumers received
(see :mod:`channels_redis.wire`), so that counting them back costs no round
trip of its own whenever the process also sends.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

from channels.exceptions import ChannelFull

from .errors import (
    RedisCommandError,
    RedisConnectionError,
    RedisLayerError,
    SendOutcomeUnknown,
    map_redis_errors,
    translate_redis_error,
)
from .scripts import Script
from .wire import now_ms

if TYPE_CHECKING:
    from .commands import Commands

__all__ = ["ShardWriter", "close_writers", "refused"]

logger = logging.getLogger("channels_redis")

#: (the message's KEYS, its ARGV, the sender's future); every message of a
#: script has as many KEYS and ARGV as the others.
Pending = tuple[tuple[str, ...], tuple[Any, ...], "asyncio.Future[int]"]


class ShardWriter:
    """Coalesces the sends and acknowledgements bound for one shard.

    One batch is on its way at a time: batches reach Redis in the order they
    were made, so a channel's acknowledgement always lands before a send
    that relies on the room it made. While a batch is out, the next one
    grows; under load batches get larger rather than more numerous.
    Acknowledgements wait briefly (:attr:`ACK_DELAY`) for a send to ride
    with; a consumer that answers what it received sends both at once.

    :param commands: the shard's path to Redis; each batch is one call of
        *script* by digest, written at once where the path allows it
        (:meth:`~channels_redis.commands.Commands.start`).
    :param script: the script a batch calls, with the time and the keys' TTL
        (*ttl_ms*) before the batch's ARGV.
    :param sending: what a batch with messages does, for error messages.
    """

    #: A batch carries at most this many messages ...
    MAX_MESSAGES = 256
    #: ... and at most about this many bytes of them.
    MAX_BYTES = 1 << 20
    #: Seconds acknowledgements wait for a send to share a round trip with.
    ACK_DELAY = 0.01

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        commands: Commands,
        script: Script,
        ttl_ms: int,
        sending: str = "sending messages",
    ) -> None:
        self.loop = loop
        self.commands = commands
        self.script = script
        self.ttl_ms = ttl_ms
        self.sending = sending
        self.pending: list[Pending] = []
        #: (counter key, non-local part) -> messages received
        self.acks: dict[tuple[str, str], int] = {}
        self.scheduled = False
        self.ack_timer: asyncio.TimerHandle | None = None
        #: The batch on its way: the future of its reply (or a task resending it).
        self.in_flight: asyncio.Future[Any] | None = None
        #: Set by :meth:`abandon`: nothing more is sent.
        self.closed = False

    def submit(self, keys: tuple[str, ...], args: tuple[Any, ...]) -> asyncio.Future[int]:
        """Queue one message (its KEYS and ARGV, the element first among ARGV).

        The future gets the script's answer for it: 1 queued, 0 the channel
        was full, -1 a key of the channel holds a value of another type
        (see :func:`refused`).
        """
        future: asyncio.Future[int] = self.loop.create_future()
        if self.closed:
            future.set_exception(_closed_before_sending())
            return future
        self.pending.append((keys, args, future))
        if not self.scheduled and self.in_flight is None:
            self.scheduled = True
            self.loop.call_soon(self.flush)
        return future

    def acknowledge(self, counter_key: str, field: str, count: int) -> None:
        """Count *count* messages of the channel *field* as received."""
        key = (counter_key, field)
        self.acks[key] = self.acks.get(key, 0) + count
        if self.ack_timer is None and not self.scheduled and self.in_flight is None:
            self.ack_timer = self.loop.call_later(self.ACK_DELAY, self.flush)

    def flush(self) -> None:
        """Send what is pending, unless a batch is out (its end sends the rest)."""
        self.scheduled = False
        if self.ack_timer is not None:
            self.ack_timer.cancel()
            self.ack_timer = None
        if self.in_flight is not None or not (self.pending or self.acks) or self.closed:
            return
        pending = self.pending
        end, size = 0, 0
        while end < len(pending) and end < self.MAX_MESSAGES:
            size += len(pending[end][1][0])
            end += 1
            if size >= self.MAX_BYTES:
                break
        batch, self.pending = pending[:end], pending[end:]
        acks, self.acks = self.acks, {}
        script = self.script
        # Written now (where the path allows), answered by a callback: no
        # task, no extra turn of the event loop for a lone send.
        reply = self.commands.start(
            "EVALSHA", script.sha, *script.args(*self._arguments(batch, acks))
        )
        self.in_flight = reply
        reply.add_done_callback(functools.partial(self._answered, batch, acks))

    def _answered(
        self, batch: list[Pending], acks: dict[tuple[str, str], int], reply: asyncio.Future[Any]
    ) -> None:
        if not reply.cancelled() and isinstance(reply.exception(), NoScriptError):
            # Redis lost its script cache: send the script's text.
            self.in_flight = self.loop.create_task(self._resend(batch, acks))
            return
        try:
            if reply.cancelled():
                # abandon() cancelled the task waiting for a connection or a
                # reply: the batch may have reached Redis.
                self._settle(batch, _abandoned() if self.closed else asyncio.CancelledError())
                return
            failure = reply.exception()
            if failure is not None:
                action = self.sending if batch else "acknowledging"
                self._settle(batch, translate_redis_error(failure, action, bool(batch)))
            else:
                self._settle(batch, None, reply.result())
        finally:
            self.in_flight = None
            if self.pending or self.acks:
                self.flush()

    async def _resend(self, batch: list[Pending], acks: dict[tuple[str, str], int]) -> None:
        try:
            await self._execute_text(batch, acks)
        finally:
            self.in_flight = None
            if self.pending or self.acks:
                self.flush()

    def _arguments(
        self, batch: list[Pending], acks: dict[tuple[str, str], int]
    ) -> tuple[list[str], list[Any]]:
        """The script's KEYS and ARGV for *batch* and *acks*."""
        keys: list[str] = [counter_key for counter_key, _ in acks]
        args: list[Any] = [now_ms(), self.ttl_ms, len(acks)]
        for (_, field), count in acks.items():
            args.append(field)
            args.append(count)
        for message_keys, message_args, _ in batch:
            keys.extend(message_keys)
            args.extend(message_args)
        return keys, args

    async def _execute_text(self, batch: list[Pending], acks: dict[tuple[str, str], int]) -> None:
        try:
            with map_redis_errors(self.sending if batch else "acknowledging", bool(batch)):
                results: list[int] = await self.script.run_text(
                    self.commands, *self._arguments(batch, acks)
                )
        except BaseException as exc:
            if self.closed and isinstance(exc, asyncio.CancelledError):
                # abandon(): the batch may have reached Redis.
                self._settle(batch, _abandoned())
            else:
                self._settle(batch, exc)
            if not isinstance(exc, Exception):
                raise
            return
        self._settle(batch, None, results)

    @staticmethod
    def _settle(
        batch: list[Pending], failure: BaseException | None, results: list[int] | None = None
    ) -> None:
        """Give each sender its answer: queued or not, or the failure."""
        if failure is not None:
            for *_, future in batch:
                if not future.done():
                    if isinstance(failure, asyncio.CancelledError):
                        future.cancel()
                    else:
                        future.set_exception(failure)
            if not batch and isinstance(failure, RedisLayerError):
                # Only acknowledgements: the counts stay high until they expire.
                logger.debug("Could not acknowledge received messages: %s", failure)
            elif not batch and isinstance(failure, Exception):
                logger.error("Acknowledging received messages failed", exc_info=failure)
            return
        assert results is not None
        for (*_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def aclose(self) -> None:
        """Send what is pending and wait until every batch has been answered."""
        await self.drain()

    def abandon(self) -> None:
        """Send nothing more (the layer is closing and Redis does not answer).

        Messages not sent yet fail with
        :class:`~channels_redis.errors.RedisConnectionError`; a batch on its
        way fails with :class:`~channels_redis.errors.SendOutcomeUnknown` when
        its connection closes (or at once, if it waits for one).
        """
        self.closed = True
        if self.ack_timer is not None:
            self.ack_timer.cancel()
            self.ack_timer = None
        pending, self.pending = self.pending, []
        self.acks = {}
        self._settle(pending, _closed_before_sending())
        if isinstance(self.in_flight, asyncio.Task):
            self.in_flight.cancel()

    async def drain(self) -> None:
        """Send what is pending now and wait until every batch has been answered."""
        while self.in_flight is not None or self.pending or self.acks:
            if self.in_flight is None:
                self.flush()
            task = self.in_flight
            if task is not None:
                try:
                    await asyncio.shield(task)
                except Exception:  # noqa: BLE001 - each sender got the error
                    pass


def _abandoned() -> SendOutcomeUnknown:
    return SendOutcomeUnknown(
        "The layer closed while Redis had not answered a send: the message may have been queued"
    )


def _closed_before_sending() -> RedisConnectionError:
    return RedisConnectionError("The layer was closed before the message was sent to Redis")


async def close_writers(writers: list[ShardWriter], timeout: float) -> None:
    """Wait up to *timeout* seconds for *writers* to send everything, then abandon them."""
    if not writers:
        return
    drains = [asyncio.ensure_future(writer.drain()) for writer in writers]
    _, late = await asyncio.wait(drains, timeout=timeout)
    for writer in writers:
        writer.abandon()
    if late:
        logger.warning(
            "Redis did not answer sends within %ss while the layer closed: those not "
            "answered fail (with SendOutcomeUnknown if they had been sent)",
            timeout,
        )
        for drain in late:
            drain.cancel()
        await asyncio.gather(*late, return_exceptions=True)


def refused(channel: str, capacity: int, status: int) -> Exception:
    """The error of a send to *channel* that the script answered *status* (not 1) for."""
    if status == 0:
        return ChannelFull(f"Channel {channel!r} is full (capacity {capacity})")
    return RedisCommandError(
        f"Cannot send to {channel!r}: one of its keys in Redis holds a value of another "
        "type, which this layer did not write (delete the key, or give the layer "
        "another prefix)"
    )
