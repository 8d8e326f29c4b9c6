"""Concurrent writes to one shard share one round trip.

Every ``send()`` is one call of the ``SEND`` script, but sends made while
another call is on its way to the same shard (fifty consumers answering at
once, a server relaying a burst) are not sent one by one:
:class:`ShardWriter` collects them until that call is answered and then
calls the script once with all of them, so Redis parses one command and the
client reads one reply. A send made while nothing is on its way waits for
nothing: it is written at once, before the task that made it yields, so that
a task awaiting one send after another pays one round trip each and no turn
of the event loop on top. Each sender still gets its own answer (queued, or
the channel was full).

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
    that relies on the room it made. A submission with nothing on its way
    leaves at once; while a batch is out, the next one grows; under load
    batches get larger rather than more numerous.
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
        #: The loop time by which the acknowledgements in :attr:`acks` leave.
        self.acks_due = 0.0
        #: Armed while acknowledgements may wait; a send that takes them along
        #: leaves it armed (it finds nothing, or later ones, when it fires),
        #: so that a receive after each send costs no timer of its own.
        self.ack_timer: asyncio.TimerHandle | None = None
        #: Whether a batch is on its way (its answer not handled yet).
        self.in_flight = False
        #: The task sending the batch on its way, where the path needed one
        #: (no connection yet, the script's text after NOSCRIPT).
        self.task: asyncio.Task[Any] | None = None
        #: drain()'s futures, done when the batch on its way has been answered.
        self.answered: list[asyncio.Future[None]] = []
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
        if not self.in_flight:
            # Nothing on its way: written now, not on the loop's next turn.
            # (bench/redis_layer.py "sequential": the send leaves before the
            # receiving task's turn instead of after it.) Sends made while
            # it is out leave together when it is answered.
            self.flush()
        return future

    def acknowledge(self, counter_key: str, field: str, count: int) -> None:
        """Count *count* messages of the channel *field* as received."""
        acks = self.acks
        if not acks:
            self.acks_due = self.loop.time() + self.ACK_DELAY
        key = (counter_key, field)
        acks[key] = acks.get(key, 0) + count
        if self.ack_timer is None and not self.in_flight:
            self.ack_timer = self.loop.call_at(self.acks_due, self._acks_due)

    def _acks_due(self) -> None:
        self.ack_timer = None
        if not self.acks or self.in_flight:
            return  # gone with a send, or going with the next batch
        if self.acks_due > self.loop.time():
            # Taken along by a send since the timer was armed: these came later.
            self.ack_timer = self.loop.call_at(self.acks_due, self._acks_due)
        else:
            self.flush()

    def flush(self) -> None:
        """Send what is pending, unless a batch is out (its end sends the rest)."""
        if self.in_flight or not (self.pending or self.acks) or self.closed:
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
        self.in_flight = True
        # Written now (where the path allows) and answered as the reply is
        # read: no task, no extra turn of the event loop for a lone send.
        try:
            self.task = self.commands.start_then(
                functools.partial(self._answered, batch, acks),
                "EVALSHA",
                script.sha,
                *script.args(*self._arguments(batch, acks)),
            )
        except Exception as exc:  # noqa: BLE001 - not written: the senders get it
            self._answered(batch, acks, None, exc)

    def _answered(
        self,
        batch: list[Pending],
        acks: dict[tuple[str, str], int],
        reply: Any,
        failure: BaseException | None,
    ) -> None:
        if isinstance(failure, NoScriptError):
            # Redis lost its script cache: send the script's text.
            self.task = self.loop.create_task(self._resend(batch, acks))
            return
        try:
            if isinstance(failure, asyncio.CancelledError):
                # abandon() cancelled the task waiting for a connection or a
                # reply: the batch may have reached Redis.
                self._settle(batch, _abandoned() if self.closed else asyncio.CancelledError())
            elif failure is not None:
                action = self.sending if batch else "acknowledging"
                self._settle(batch, translate_redis_error(failure, action, bool(batch)))
            else:
                self._settle(batch, None, reply)
        finally:
            self._batch_done()

    async def _resend(self, batch: list[Pending], acks: dict[tuple[str, str], int]) -> None:
        try:
            await self._execute_text(batch, acks)
        finally:
            self._batch_done()

    def _batch_done(self) -> None:
        """The batch on its way was answered: the next one leaves."""
        self.in_flight = False
        self.task = None
        answered, self.answered = self.answered, []
        for waiter in answered:
            if not waiter.done():
                waiter.set_result(None)
        if self.pending:
            self.flush()
        elif self.acks and self.ack_timer is None and not self.closed:
            # Acknowledgements alone wait for a send, as they do when nothing
            # is on its way: sent now, they would hold up the sender that was
            # just answered for a round trip.
            self.ack_timer = self.loop.call_at(self.acks_due, self._acks_due)

    def _arguments(
        self, batch: list[Pending], acks: dict[tuple[str, str], int]
    ) -> tuple[list[str], list[Any]]:
        """The script's KEYS and ARGV for *batch* and *acks*."""
        # Each counter's acknowledgements together: the script reads them at once.
        items = sorted(acks.items()) if len(acks) > 1 else acks.items()
        keys: list[str] = []
        args: list[Any] = [now_ms(), self.ttl_ms, len(acks)]
        for (counter_key, field), count in items:
            keys.append(counter_key)
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
        if self.task is not None:
            self.task.cancel()

    async def drain(self) -> None:
        """Send what is pending now and wait until every batch has been answered."""
        while self.in_flight or ((self.pending or self.acks) and not self.closed):
            if not self.in_flight:
                self.flush()
            if self.in_flight:
                # Our own future: cancelling drain() leaves the batch alone.
                waiter = self.loop.create_future()
                self.answered.append(waiter)
                await waiter


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
