"""Commands to one server over our own pipelined links: :class:`LinkCommands`.

The hot paths (sends, receive loops, group changes) would spend most of their
time in redis-py's command machinery; here they go over
:class:`~channels_redis.link.Link`\\ s that redis-py's pool opened. These
are the :class:`~channels_redis.commands.Commands` of a plain server
(:class:`LinkCommands`) and of a Sentinel master
(:class:`SentinelLinkCommands`); :func:`channels_redis.commands.shard_commands`
chooses between them (and redis-py's client, for a Cluster).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionLost
from redis.exceptions import ReadOnlyError, ResponseError

from .errors import Unanswered
from .link import Link, OnReply, open_link
from .resp import pack_command

__all__ = ["LinkCommands", "SentinelLinkCommands", "ServerEvents", "reply_to"]

#: Commands that block, and where their timeout (in seconds) is among the arguments.
_BLOCKING = {"BLMPOP": 1, "BLPOP": -1}
#: How many packed blocking commands a LinkCommands keeps (one or two per
#: queue a receive loop reads, with its batch sizes).
_PACKED_BLOCKING = 256


class ServerEvents(Protocol):
    """What a layer learns of one server through its :class:`LinkCommands`."""

    def lost(self) -> None:
        """A connection failed (not closed on purpose): the server may be gone."""

    async def connected(self, run_id: str, connections: LinkCommands) -> None:
        """A new connection is up, to the server whose ``run_id`` is *run_id*.

        Awaited before the connection carries any command: a layer that must
        put something back after a restart does it here, with a link of its
        own (:meth:`LinkCommands.open_unwatched`).
        """


class LinkCommands:
    """Commands to one server over :class:`~channels_redis.link.Link`\\ s.

    The hot paths (sends, receive loops, group changes) would spend most of
    their time in redis-py's command machinery. Here every command that
    answers at once shares one pipelined link; a blocking command
    (``BLMPOP``, ``BLPOP``) gets a link of its own for as long as it waits.
    A link that broke (Redis restarted, failed over, timed out) is replaced
    by a new one on the next command.
    """

    def __init__(self, client: Redis, events: ServerEvents | None = None) -> None:
        self.pool = client.connection_pool
        self.events = events
        self.shared: Link | None = None
        self.opening: asyncio.Future[Link] | None = None
        #: Links for blocking commands that are not in use.
        self.idle: list[Link] = []
        self.every: set[Link] = set()
        #: Blocking commands, packed: a receive loop sends the same one again
        #: and again. fast path: bench/redis_layer.py "serial", one pop a
        #: round trip (2.6 us a pack, timeit).
        self.packed_blocking: dict[tuple[Any, ...], bytes] = {}

    async def execute(self, *args: Any) -> Any:
        position = _BLOCKING.get(args[0])
        if position is not None:
            packed = self.packed_blocking.get(args)
            if packed is None:
                if len(self.packed_blocking) >= _PACKED_BLOCKING:
                    self.packed_blocking.clear()
                packed = self.packed_blocking[args] = pack_command(args)
            return await self._blocking(packed, float(args[position]))
        packed = pack_command(args)
        link = self.shared
        if link is None or link.failure is not None:
            if link is not None:
                self.every.discard(link)  # broken for good: let it go
            link = await self._shared_link()
        reply = link.send(packed)
        if link.drained is not None:
            await link.drain()
        try:
            return await reply
        except ReadOnlyError:
            self._refused_write(link)
            raise

    async def execute_at(self, key: str, *args: Any) -> Any:
        """:meth:`execute`: every key is on this one server."""
        return await self.execute(*args)

    def start(self, *args: Any) -> asyncio.Future[Any]:
        """Write a command now if the shared link is ready; the future of its reply.

        The reply comes raw: an error reply is the future's redis-py
        exception. When the command cannot be written at once (no link yet,
        a broken one, a full write buffer), a task runs :meth:`execute`.
        """
        link = self.shared
        if link is None or link.failure is not None or link.drained is not None:
            return asyncio.ensure_future(self.execute(*args))
        return link.send(pack_command(args))

    def start_then(self, on_reply: OnReply, *args: Any) -> asyncio.Task[Any] | None:
        """Write a command now if the shared link is ready; *on_reply* gets its reply.

        ``on_reply(reply, None)``, or ``on_reply(None, exception)`` for an
        error reply or a failure, called once, as the reply is read. When the
        command cannot be written at once, a task runs :meth:`execute` and is
        returned (cancelling it fails the command with ``CancelledError``).
        """
        link = self.shared
        if link is None or link.failure is not None or link.drained is not None:
            return reply_to(on_reply, self.execute(*args))
        link.send_then(pack_command(args), on_reply)
        return None

    def _refused_write(self, link: Link) -> None:
        """*link*'s server answered READONLY: a replica (the error stands)."""

    async def _shared_link(self) -> Link:
        opening = self.opening
        if opening is None:
            opening = self.opening = asyncio.ensure_future(self._open())
            opening.add_done_callback(self._opened)
        return await asyncio.shield(opening)

    def _opened(self, opening: asyncio.Future[Link]) -> None:
        self.opening = None
        if not opening.cancelled() and opening.exception() is None:
            self.shared = opening.result()

    async def _blocking(self, packed: bytes, seconds: float) -> Any:
        link = None
        while self.idle:
            candidate = self.idle.pop()
            if candidate.failure is None:
                link = candidate
                break
            self.every.discard(candidate)
        if link is None:
            link = await self._open()
        try:
            reply = await link.send(packed, extra_seconds=seconds)
        except BaseException:
            # A reply still to come could carry messages popped for nobody.
            link.close()
            self.every.discard(link)
            raise
        self.idle.append(link)
        return reply

    async def _open(self) -> Link:
        link = await self.open_unwatched()
        events = self.events
        if events is not None:
            try:
                # INFO's run_id changes when the server restarts (or a Sentinel
                # names another master): its data may be gone.
                try:
                    info = await link.send(pack_command(("INFO", "server")))
                except ResponseError:
                    info = b""  # INFO renamed away: restarts go unnoticed
                await events.connected(_run_id(info), self)
            except BaseException as exc:
                link.close()
                self.every.discard(link)
                if isinstance(exc, Unanswered):
                    # The caller's command was not sent: no doubt about it.
                    raise RedisConnectionLost(str(exc)) from None
                raise
            link.on_failure = events.lost
        return link

    async def open_unwatched(self) -> Link:
        """A new link, which :meth:`aclose` closes, without telling the events."""
        link = await open_link(self.pool)
        self.every.add(link)
        return link

    async def aclose(self) -> None:
        links = list(self.every)
        for link in links:
            link.close()
        # The sockets close on the loop's next turn; wait for it, so that
        # close_pools() returns with the connections gone.
        if links:
            closing = [asyncio.ensure_future(link.wait_closed()) for link in links]
            await asyncio.wait(closing, timeout=5)
        self.every.clear()
        self.idle.clear()
        self.shared = None


class SentinelLinkCommands(LinkCommands):
    """:class:`LinkCommands` to the master a Sentinel names.

    After a failover the old master answers writes with READONLY: the link
    must go, so that the next one asks the Sentinels again. :meth:`execute`
    sees to that, so :meth:`start` always goes through it.
    """

    def start(self, *args: Any) -> asyncio.Future[Any]:
        return asyncio.ensure_future(self.execute(*args))

    def start_then(self, on_reply: OnReply, *args: Any) -> asyncio.Task[Any] | None:
        return reply_to(on_reply, self.execute(*args))

    def _refused_write(self, link: Link) -> None:
        link.close()
        raise RedisConnectionLost("The Sentinel master is now a replica") from None


def reply_to(on_reply: OnReply, reply: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """A task awaiting *reply* that hands the result to *on_reply* as ``(reply, failure)``."""
    task = asyncio.ensure_future(reply)

    def done(task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            on_reply(None, asyncio.CancelledError())
        else:
            failure = task.exception()
            on_reply(None if failure is not None else task.result(), failure)

    task.add_done_callback(done)
    return task


def _run_id(info: Any) -> str:
    text = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        if line.startswith("run_id:"):
            return line[len("run_id:") :].strip()
    return ""  # a server that hides it: restarts go unnoticed
