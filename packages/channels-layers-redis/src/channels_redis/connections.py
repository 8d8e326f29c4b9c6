"""Connections to Redis, one set per event loop.

redis-py's asyncio connections belong to the event loop that opened them, and
a layer is used from several: the server's loop, and a fresh loop for every
``async_to_sync`` call made from synchronous code. :class:`PerLoop` keeps one
set of clients (and receive loops) per running loop and closes it when the
loop shuts down: it parks an asynchronous generator in the loop, which
``asyncio.run()`` (and so ``async_to_sync``) and pytest-asyncio close through
``loop.shutdown_asyncgens()`` before closing the loop, letting the set close
its sockets inside the loop that owns them. ``close_pools()`` on a layer does
the same on demand.

Whether ``hosts`` is a list of independent servers (shards) or the nodes of
one Redis Cluster is asked of the first host once per layer
(``INFO cluster``), unless the host entry says ``"cluster": True/False``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import ConnectionPool, SSLConnection
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionLost
from redis.exceptions import ReadOnlyError, ResponseError

from .errors import InvalidConfiguration, Unanswered, map_redis_errors
from .hosts import HostSpec, SentinelSpec, ServerSpec
from .link import Link, open_link
from .resp import pack_command
from .sharding import bucket_hash_tags
from .wire import KeySpace

__all__ = [
    "CLUSTER_BUCKETS",
    "Client",
    "Execute",
    "FastConnections",
    "PerLoop",
    "ServerEvents",
    "Shard",
    "Topology",
    "close_client",
    "detect_topology",
    "executors",
    "make_client",
    "make_clients",
    "pack_command",
]

logger = logging.getLogger("channels_redis")

Client = Redis | RedisCluster

#: Hash-tag buckets a Cluster's keys are spread over. More buckets spread
#: the data more evenly over more nodes; each group_send runs one small
#: script per bucket (batched into one round trip per node).
CLUSTER_BUCKETS = 16

# Options of a Redis server connection that a Cluster client takes otherwise.
_NOT_FOR_CLUSTER = frozenset({"host", "port", "connection_class", "db", "path"})


@dataclass(frozen=True)
class Shard:
    """Where a slice of the keys lives: a client, and the keys' names there."""

    index: int
    #: Which entry of the topology's clients serves this shard.
    client_index: int
    keys: KeySpace


@dataclass(frozen=True)
class Topology:
    """The layout of the layer's data over ``hosts``, the same in every loop."""

    hosts: tuple[HostSpec, ...]
    cluster: bool
    shards: tuple[Shard, ...]

    @classmethod
    def build(cls, hosts: Sequence[HostSpec], prefix: str, cluster: bool) -> Topology:
        if cluster:
            tags = bucket_hash_tags(CLUSTER_BUCKETS)
            shards = tuple(Shard(i, 0, KeySpace(prefix, tag)) for i, tag in enumerate(tags))
        else:
            shards = tuple(Shard(i, i, KeySpace(prefix)) for i in range(len(hosts)))
        return cls(hosts=tuple(hosts), cluster=cluster, shards=shards)


async def detect_topology(hosts: Sequence[HostSpec], prefix: str) -> Topology:
    """Ask the first host whether it is a Cluster node (unless told)."""
    first = hosts[0]
    cluster = False
    if isinstance(first, ServerSpec):
        cluster = first.cluster if first.cluster is not None else await _is_cluster_node(first)
    if cluster:
        for position, spec in enumerate(hosts):
            if not isinstance(spec, ServerSpec) or spec.cluster is False:
                raise InvalidConfiguration(
                    f"hosts[0] is a Redis Cluster node, so every entry of hosts must be a node "
                    f"of that cluster; hosts[{position}] is {spec.address}"
                )
    return Topology.build(hosts, prefix, cluster)


async def _is_cluster_node(spec: ServerSpec) -> bool:
    client = Redis(connection_pool=ConnectionPool(**spec.options))
    try:
        with map_redis_errors(f"asking {spec.address} whether it is a Redis Cluster node"):
            info = await client.execute_command("INFO", "cluster")  # type: ignore[no-untyped-call]
    finally:
        await close_client(client)
    if isinstance(info, dict):
        return bool(info.get("cluster_enabled"))
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_enabled:1" in text


def make_clients(topology: Topology) -> list[Client]:
    """New clients for *topology*, for use in the running loop only."""
    if topology.cluster:
        return [_make_cluster(topology.hosts)]
    return [make_client(spec) for spec in topology.hosts]


def make_client(spec: HostSpec) -> Redis:
    """A new client for one server (or Sentinel master), for the running loop only."""
    if isinstance(spec, SentinelSpec):
        sentinel = Sentinel(
            spec.sentinels, sentinel_kwargs=dict(spec.sentinel_kwargs), **spec.options
        )
        client: Redis = sentinel.master_for(spec.master_name)
        # The Sentinel clients must be closed along with the master's.
        client._channels_redis_sentinel = sentinel  # type: ignore[attr-defined]
        return client
    return Redis(connection_pool=ConnectionPool(**spec.options))


def _make_cluster(hosts: Sequence[HostSpec]) -> RedisCluster:
    nodes = []
    options: dict[str, Any] = {}
    for spec in hosts:
        if not isinstance(spec, ServerSpec):  # detect_topology checked this
            raise InvalidConfiguration(f"{spec.address} cannot be a Redis Cluster node")
        nodes.append(ClusterNode(spec.options.get("host", "localhost"), spec.options["port"]))
        if not options:
            options = {k: v for k, v in spec.options.items() if k not in _NOT_FOR_CLUSTER}
            if spec.options.get("connection_class") is SSLConnection:
                options = _cluster_tls_options(options)
    return RedisCluster(startup_nodes=nodes, **options)


def _cluster_tls_options(options: dict[str, Any]) -> dict[str, Any]:
    # RedisCluster spells TLS as ssl=True plus the same ssl_* options.
    return {**options, "ssl": True}


async def close_client(client: Client) -> None:
    """Close *client* and every connection it holds."""
    sentinel = getattr(client, "_channels_redis_sentinel", None)
    try:
        await client.aclose()
        if isinstance(client, Redis):
            # aclose() leaves a pool passed in by the caller open.
            await client.connection_pool.disconnect()
    finally:
        if sentinel is not None:
            for sentinel_client in sentinel.sentinels:
                await close_client(sentinel_client)


#: Sends one command and returns its reply: ``await execute("GET", "key")``.
Execute = Callable[..., Awaitable[Any]]

#: Commands that block, and where their timeout (in seconds) is among the arguments.
_BLOCKING = {"BLMPOP": 1, "BLPOP": -1}


class ServerEvents(Protocol):
    """What a layer learns of one server through its :class:`FastConnections`."""

    def lost(self) -> None:
        """A connection failed (not closed on purpose): the server may be gone."""

    async def connected(self, run_id: str, connections: FastConnections) -> None:
        """A new connection is up, to the server whose ``run_id`` is *run_id*.

        Awaited before the connection carries any command: a layer that must
        put something back after a restart does it here, with a link of its
        own (:meth:`FastConnections.open_unwatched`).
        """


class FastConnections:
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
        # After a failover the old master answers writes with READONLY: the
        # link must go, so that the next one asks the Sentinels again.
        self.sentinel = isinstance(self.pool, SentinelConnectionPool)
        self.shared: Link | None = None
        self.opening: asyncio.Future[Link] | None = None
        #: Links for blocking commands that are not in use.
        self.idle: list[Link] = []
        self.every: set[Link] = set()

    async def execute(self, *args: Any) -> Any:
        packed = pack_command(args)
        position = _BLOCKING.get(args[0])
        if position is not None:
            return await self._blocking(packed, float(args[position]))
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
            if self.sentinel:
                link.close()
                raise RedisConnectionLost("The Sentinel master is now a replica") from None
            raise

    def submit(self, *args: Any) -> asyncio.Future[Any] | None:
        """Write a command now if the shared link is ready; the future of its reply.

        ``None`` when it cannot be written at once (no link yet, a broken
        one, a full write buffer, or a Sentinel master, whose READONLY
        replies need :meth:`execute`): use :meth:`execute` then. The reply
        comes raw: an error reply is the future's redis-py exception.
        """
        link = self.shared
        if link is None or link.failure is not None or link.drained is not None or self.sentinel:
            return None
        return link.send(pack_command(args))

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


def _run_id(info: Any) -> str:
    text = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        if line.startswith("run_id:"):
            return line[len("run_id:") :].strip()
    return ""  # a server that hides it: restarts go unnoticed


def executors(
    clients: Sequence[Client], events: Callable[[int], ServerEvents | None] | None = None
) -> tuple[list[Execute], list[FastConnections]]:
    """How to send commands to each client: fast for servers, redis-py for a Cluster.

    *events* gives the :class:`ServerEvents` of the client at an index, if any.
    """
    calls: list[Execute] = []
    fast: list[FastConnections] = []
    for index, client in enumerate(clients):
        if isinstance(client, Redis):
            connections = FastConnections(client, None if events is None else events(index))
            fast.append(connections)
            calls.append(connections.execute)
        else:
            calls.append(client.execute_command)
    return calls, fast


T = TypeVar("T")


class PerLoop(Generic[T]):
    """One ``T`` per running event loop, closed when that loop shuts down.

    :param factory: builds the value for a loop (called inside it).
    :param closer: releases a value (awaited inside its loop).
    """

    def __init__(
        self,
        factory: Callable[[asyncio.AbstractEventLoop], Awaitable[T]],
        closer: Callable[[T], Awaitable[None]],
    ) -> None:
        self._factory = factory
        self._closer = closer
        self._values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Entry[T]] = (
            weakref.WeakKeyDictionary()
        )
        # async_to_sync runs loops in other threads, which use this dict too.
        self._lock = threading.Lock()
        # The last loop served and its entry: the hot paths skip the weak
        # dictionary while one loop does all the work.
        self._last: tuple[asyncio.AbstractEventLoop, _Entry[T]] | None = None

    def peek(self) -> T | None:
        """The running loop's value when it is ready, without waiting (fast path)."""
        last = self._last
        if last is not None and last[0] is asyncio.get_running_loop():
            return last[1].value
        return None

    def current(self) -> T | None:
        """The value of the running loop, if it has one already."""
        entry = self._values.get(asyncio.get_running_loop())
        return None if entry is None else entry.value

    async def get(self) -> T:
        """The value of the running loop, made on first use."""
        loop = asyncio.get_running_loop()
        entry = self._values.get(loop)
        if entry is not None:
            if entry.value is not None:
                self._last = (loop, entry)
                return entry.value
            return await asyncio.shield(entry.ready)
        entry = _Entry(loop.create_future())
        with self._lock:
            self._values[loop] = entry
        try:
            value = await self._factory(loop)
        except BaseException as exc:
            with self._lock:
                if self._values.get(loop) is entry:
                    del self._values[loop]
            if isinstance(exc, Exception):
                entry.ready.set_exception(exc)
                # Marks the error as seen: nobody else may be waiting for it.
                entry.ready.exception()
            else:
                entry.ready.cancel()
            raise
        entry.value = value
        entry.ready.set_result(value)
        # Park a generator in the loop: its finally runs at shutdown_asyncgens().
        entry.watcher = self._watch(loop, entry)
        await entry.watcher.__anext__()
        self._last = (loop, entry)
        return value

    async def _watch(
        self, loop: asyncio.AbstractEventLoop, entry: _Entry[T]
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await self._release(loop, entry)

    async def _release(self, loop: asyncio.AbstractEventLoop, entry: _Entry[T]) -> None:
        with self._lock:
            if self._values.get(loop) is entry:
                del self._values[loop]
            last = self._last
            if last is not None and last[1] is entry:
                self._last = None
        if entry.value is not None and not entry.closed:
            entry.closed = True
            await self._closer(entry.value)

    async def close_current(self) -> None:
        """Close the running loop's value now (a later ``get()`` makes a new one)."""
        loop = asyncio.get_running_loop()
        entry = self._values.get(loop)
        if entry is None:
            return
        if entry.value is None:
            await asyncio.shield(entry.ready)
        watcher = entry.watcher
        if watcher is not None:
            entry.watcher = None
            await watcher.aclose()
        else:
            await self._release(loop, entry)

    def loops(self) -> list[asyncio.AbstractEventLoop]:
        with self._lock:
            return list(self._values.keys())


class _Entry(Generic[T]):
    __slots__ = ("closed", "ready", "value", "watcher")

    def __init__(self, ready: asyncio.Future[T]) -> None:
        self.ready = ready
        self.value: T | None = None
        self.watcher: AsyncGenerator[None, None] | None = None
        self.closed = False


def describe(hosts: Sequence[HostSpec]) -> str:
    return ", ".join(spec.address for spec in hosts)
