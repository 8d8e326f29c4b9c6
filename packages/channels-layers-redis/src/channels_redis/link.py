"""One connection to Redis as an asyncio protocol, carrying many commands at once.

redis-py reads each reply through a stream reader, a line at a time, with a
timeout task around every write: per round trip that is several turns of the
event loop and far more time than Redis spends. A :class:`Link` writes a
packed command straight to the transport and matches replies to waiting
futures as the bytes arrive (parsed by :mod:`channels_redis.resp`), so
commands on one link are pipelined: any number may be on their way.

Opening a link is left to redis-py (:func:`open_link`): a connection of the
client's own class connects (plain, TLS, Unix socket, or the master a
Sentinel names) and does the handshake (``AUTH``, ``SELECT``, client name);
the link then takes over its socket.

A link that fails (the socket closed, a reply late by more than the socket
timeout, bytes that are not RESP) fails every command waiting on it with
redis-py's ``ConnectionError`` or ``TimeoutError`` (marked
:class:`~channels_redis.errors.Unanswered`: they had been written, so Redis
may have run them) and is not used again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

import redis
from redis.asyncio.connection import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .errors import unanswered
from .resp import NOTHING, ProtocolError, Push, ReplyParser

__all__ = ["STREAM_ATTRIBUTES", "Link", "ReplyHandler", "open_link"]

#: The private attributes of a connected redis-py asyncio ``Connection`` that
#: :func:`open_link` takes the socket from (its ``StreamReader`` and
#: ``StreamWriter``).
STREAM_ATTRIBUTES = ("_reader", "_writer")


#: What :meth:`Link.send_then` calls with a reply: ``(reply, None)``, or
#: ``(None, the exception)`` for an error reply or a failed link.
OnReply = Callable[[Any, BaseException | None], None]


class ReplyHandler:
    """Waits in :attr:`Link.waiting` where a future would, and hands the reply on at once.

    A future's done callbacks run on the loop's next turn, and only then can
    the code that waits for the reply act on it; a handler calls *on_reply*
    while the reply is being read. (bench/redis_layer.py "serial": one turn
    of the event loop less per send.)
    """

    __slots__ = ("loop", "on_reply")

    def __init__(self, loop: asyncio.AbstractEventLoop, on_reply: OnReply) -> None:
        self.loop = loop
        self.on_reply = on_reply

    def done(self) -> bool:
        return False  # each is answered once: it leaves the queue first

    def set_result(self, reply: Any) -> None:
        self._call(reply, None)

    def set_exception(self, failure: BaseException) -> None:
        self._call(None, failure)

    def _call(self, reply: Any, failure: BaseException | None) -> None:
        try:
            self.on_reply(reply, failure)
        except Exception as exc:  # noqa: BLE001 - the link must read on
            self.loop.call_exception_handler(
                {"message": "A Redis reply handler failed", "exception": exc}
            )


class Link(asyncio.Protocol):
    """A connection whose commands are answered in the order they were written.

    :param timeout: seconds a reply may take (redis-py's ``socket_timeout``),
        or ``None`` for no limit.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float | None) -> None:
        self.loop = loop
        self.timeout = timeout
        # asyncio's, an SSL one, or uvloop's: anything with write() and abort().
        self.transport: Any = None
        self.parser = ReplyParser()
        #: (the future or handler of a command, the loop time its reply is due by)
        self.waiting: deque[tuple[asyncio.Future[Any] | ReplyHandler, float]] = deque()
        #: Why the link is unusable, once it is.
        self.failure: Exception | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.drained: asyncio.Future[None] | None = None
        #: Done once the socket is closed.
        self.lost: asyncio.Future[None] = loop.create_future()
        #: The stream writer the socket came from: when collected it would
        #: close the socket, so the link holds it for as long as it lives.
        self.writer: asyncio.StreamWriter | None = None
        #: Called once if the link fails other than by :meth:`close`.
        self.on_failure: Callable[[], None] | None = None

    @property
    def usable(self) -> bool:
        return self.failure is None

    # -- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        parser.feed(data)
        waiting = self.waiting
        while True:
            try:
                reply = parser.next()
            except ProtocolError as exc:
                self.fail(RedisConnectionError(str(exc)))
                return
            if reply is NOTHING:
                return
            if isinstance(reply, Push):
                continue  # nothing here subscribes or tracks keys
            if not waiting:
                self.fail(RedisConnectionError("Redis sent a reply nobody asked for"))
                return
            future = waiting.popleft()[0]
            if not future.done():
                if isinstance(reply, RedisError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f": {exc}" if exc is not None else ""
        self.fail(RedisConnectionError(f"Connection closed by server{reason}."))
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        if self.drained is None:
            self.drained = self.loop.create_future()

    def resume_writing(self) -> None:
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    # -- commands ------------------------------------------------------------

    def send(self, packed: bytes, extra_seconds: float = 0.0) -> asyncio.Future[Any]:
        """Write one packed command; the future gets its reply.

        *extra_seconds* lengthens the time allowed for the reply (for a
        blocking command, the time it may block).
        """
        future: asyncio.Future[Any] = self.loop.create_future()
        self._write(packed, future, extra_seconds)
        return future

    def send_then(self, packed: bytes, on_reply: OnReply) -> None:
        """Write one packed command; *on_reply* gets its reply as soon as it is read.

        *on_reply* runs inside the link's reading (or failing): it must not
        raise, and whatever it writes goes after the commands already written.
        """
        self._write(packed, ReplyHandler(self.loop, on_reply), 0.0)

    def _write(
        self, packed: bytes, waiter: asyncio.Future[Any] | ReplyHandler, extra_seconds: float
    ) -> None:
        if self.failure is not None:
            raise RedisConnectionError(str(self.failure))
        self.transport.write(packed)
        due = float("inf")
        if self.timeout is not None:
            due = self.loop.time() + self.timeout + extra_seconds
            if self.timer is None:
                self.timer = self.loop.call_at(due, self._check_overdue)
        self.waiting.append((waiter, due))

    async def drain(self) -> None:
        """Wait while the socket's write buffer is full."""
        drained = self.drained
        if drained is not None:
            await asyncio.shield(drained)

    def fail(self, failure: Exception) -> None:
        """Make the link unusable: fail what waits and close the socket."""
        if self.failure is None:
            self.failure = failure
        on_failure, self.on_failure = self.on_failure, None
        if on_failure is not None:
            on_failure()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        waiting, self.waiting = self.waiting, deque()
        if waiting:
            # These commands were written: Redis may have run them.
            in_flight = unanswered(failure)
        for future, _ in waiting:
            if not future.done():
                future.set_exception(type(in_flight)(str(in_flight)))
        self.resume_writing()
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.on_failure = None  # closed on purpose: nothing to report
        self.fail(RedisConnectionError("The connection was closed."))

    async def wait_closed(self) -> None:
        """Wait until the socket is closed (after :meth:`close` or a failure)."""
        await asyncio.shield(self.lost)

    def _check_overdue(self) -> None:
        self.timer = None
        if not self.waiting:
            return
        due = self.waiting[0][1]
        if due <= self.loop.time():
            self.fail(RedisTimeoutError("Timeout reading from Redis"))
        else:
            self.timer = self.loop.call_at(due, self._check_overdue)


async def open_link(pool: ConnectionPool) -> Link:
    """Connect as *pool*'s connections do, handshake included, and take the socket."""
    loop = asyncio.get_running_loop()
    connection = pool.make_connection()  # type: ignore[no-untyped-call]
    await connection.connect()
    # redis-py's asyncio connection keeps its stream pair in these private
    # attributes (4.2 to 8.x): pyproject.toml pins redis below 9, and
    # tests/test_link.py fails by name when a release moves them.
    missing = [name for name in STREAM_ATTRIBUTES if getattr(connection, name, None) is None]
    writer: asyncio.StreamWriter | None = getattr(connection, "_writer", None)
    if missing or writer is None:
        await connection.disconnect()
        raise RedisConnectionError(
            f"redis-py {redis.__version__} connected but its {type(connection).__name__} "
            f"has no {' or '.join(missing)} attribute, which channels_redis.link takes the "
            "socket from: this redis-py release is not supported"
        )
    timeout: float | None = pool.connection_kwargs.get("socket_timeout")
    link = Link(loop, timeout)
    transport = writer.transport
    transport.set_protocol(link)
    link.connection_made(transport)
    link.writer = writer
    # The connection no longer owns the socket: it must not close it.
    connection._writer = connection._reader = None
    return link
