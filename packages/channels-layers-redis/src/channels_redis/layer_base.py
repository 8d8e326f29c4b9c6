"""What the two Redis channel layers share: :class:`RedisLayerBase`.

:class:`~channels_redis.core.RedisChannelLayer` (lists) and
:class:`~channels_redis.pubsub.RedisPubSubChannelLayer` (Pub/Sub) take the
same options, check them the same way, serialize the same way and keep the
same per-event-loop state (connections, process-specific names, locally held
messages, ``on_disconnect``/``on_reconnect`` tasks). That part lives here,
once; each layer keeps how it sends, receives and runs groups.

Each layer has a loop-state class, a subclass of :class:`LayerLoopState`:
the layer makes one per event loop (:meth:`RedisLayerBase._new_loop_state`)
and closes it when the loop ends or :meth:`~RedisLayerBase.close_pools` is
awaited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from channels.layers import BaseChannelLayer, CapacityPattern
from channels.layers.base import require_positive_seconds

from .batching import ShardWriter
from .errors import UnknownProcessChannel, map_redis_errors
from .hooks import ConnectionCallback, announce, check_callbacks
from .hosts import HostSpec, parse_hosts
from .local_buffer import LocalBuffer
from .options import check_shared_options, name_checks
from .per_loop import PerLoop
from .redis_clients import Client
from .serializers import (
    MessageSerializer,
    overriding_method,
    payload_decoder,
    registry,
    serialize_message,
)
from .topology import Topology, detect_topology
from .utils import _consistent_hash, decode_hosts
from .wire import KeySpace, ProcessParts, process_channel_name, queue_name, random_process_part

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "LayerLoopState", "RedisLayerBase"]

#: The default limit on a serialized message: twice the 1 MB that the
#: Channel Layer Specification requires layers to carry (as JSON).
DEFAULT_MAX_MESSAGE_SIZE = 2 * 1024 * 1024

StateT = TypeVar("StateT", bound="LayerLoopState")


class RedisLayerBase(BaseChannelLayer, Generic[StateT]):
    """The options, serialization, per-loop state and closing of both Redis layers.

    Not a layer by itself: a subclass implements the specification's
    coroutines and :meth:`_new_loop_state`. The options are those of
    :class:`~channels_redis.core.RedisChannelLayer`.
    """

    extensions: ClassVar[list[str]] = ["groups", "flush"]

    #: The most seconds :meth:`close_pools` waits for Redis to answer what is
    #: still on its way (sends, acknowledgements, messages going back).
    close_timeout: float = 5.0

    #: Private: whether a plain server's (or Sentinel master's) commands go
    #: over our pipelined link (:mod:`channels_redis.link_pool`) rather than
    #: redis-py's client; ``bench/redis_layer.py --client redis-py`` sets it
    #: to ``False`` to compare the two. Read when a loop's clients are made.
    _link_to_servers: bool = True

    def __init__(
        self,
        hosts: Sequence[Any] | None = None,
        prefix: str = "asgi",
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: Mapping[CapacityPattern, int] | None = None,
        symmetric_encryption_keys: Sequence[str | bytes] | None = None,
        random_prefix_length: int = 12,
        serializer_format: str = "msgpack",
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        on_disconnect: ConnectionCallback = None,
        on_reconnect: ConnectionCallback = None,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        self.group_expiry = require_positive_seconds("group_expiry", group_expiry)
        check_shared_options(prefix, random_prefix_length, max_message_size)
        check_callbacks(on_disconnect, on_reconnect)
        self.on_disconnect = on_disconnect
        self.on_reconnect = on_reconnect
        self._check_channel, self._check_group = name_checks(self)
        self._host_specs: list[HostSpec] = parse_hosts(hosts)
        #: ``hosts`` as channels_redis decodes it: one dict per server (see
        #: :func:`channels_redis.utils.decode_hosts`).
        self.hosts: list[dict[str, Any]] = decode_hosts(hosts)
        self.prefix = prefix
        self.random_prefix_length = random_prefix_length
        self.max_message_size = max_message_size
        self.serializer_format = serializer_format
        self.serializer: MessageSerializer = registry.get_serializer(
            serializer_format,
            symmetric_encryption_keys=symmetric_encryption_keys,
            random_prefix_length=random_prefix_length,
            expiry=expiry,
        )
        #: The random part of this layer's process-specific channel names
        #: (in the first event loop that uses it; each loop has its own).
        self.client_prefix = random_process_part(random_prefix_length)
        self._process_parts = ProcessParts(self.client_prefix, random_prefix_length)
        self._expiry_ms = int(expiry * 1000)
        #: The key names of an unsharded layout (one server, or Sentinel).
        self._keys = KeySpace(prefix)
        self._topology: Topology | None = None
        self._loops: PerLoop[StateT] = PerLoop(self._open_loop, self._close_loop_state)
        self._set_up()

    @property
    def ring_size(self) -> int:
        """How many entries ``hosts`` has (the ring of :meth:`consistent_hash`)."""
        return len(self._host_specs)

    def __str__(self) -> str:
        # The addresses, never the passwords that hosts may hold.
        addresses = [spec.address for spec in self._host_specs]
        return f"{type(self).__name__}(hosts={addresses})"

    async def new_channel(self, prefix: str = "specific") -> str:
        """A new process-specific channel: ``<prefix>.<process>__<n>!<random>``.

        Each name has a non-local part, hence a capacity, of its own; the
        channels made here in one event loop share one Redis list (or one
        subscription), read once and handed out locally.
        """
        state = await self._state()
        name = process_channel_name(prefix, state.client_prefix, next(state.channel_numbers))
        queue = queue_name(name)
        self._process_parts.queues.add(queue)
        await self._process_queue_made(state, queue)
        return name

    async def close_pools(self) -> None:
        """Stop this event loop's receiving and close its connections.

        What is on its way to Redis gets :attr:`close_timeout` seconds.
        Using the layer afterwards opens new connections.
        """
        await self._loops.close_current()

    async def close(self) -> None:
        """Same as :meth:`close_pools`."""
        await self.close_pools()

    async def wait_received(self) -> None:
        """Return once Redis knows of every message received so far in this loop.

        Receivers' acknowledgements (which free room in channels) ride with
        the next send, or leave within 10 ms; this sends them now and waits
        for Redis's answer.
        """
        state = self._loops.current()
        if state is not None:
            await asyncio.gather(*(writer.drain() for writer in state.writers))

    # -- channels_redis's helpers ------------------------------------------------------

    def serialize(self, message: dict[str, Any]) -> bytes:
        """*message* as the bytes the layer hands to Redis (every send and group_send).

        Uses the layer's serializer (``serializer_format``, with encryption),
        then checks ``max_message_size``. Override it, with
        :meth:`deserialize`, to change the format of everything the layer
        stores and sends.
        """
        return serialize_message(self.serializer, message, self.max_message_size)

    def deserialize(self, data: bytes) -> dict[str, Any]:
        """The message that :meth:`serialize` turned into *data* (every receive)."""
        return self.serializer.deserialize(data)

    def consistent_hash(self, value: str | bytes) -> int:
        """The shard index channels_redis gives *value*: ``0 <= index < ring_size``.

        The result of :func:`channels_redis.utils._consistent_hash`, for
        spreading keys of your own over ``hosts``, as with channels_redis.
        (The layers place their own keys by a hash that moves fewer of them
        when servers are added: :mod:`channels_redis.sharding`.)
        """
        return _consistent_hash(value, self.ring_size)

    # -- what each layer provides --------------------------------------------------------

    def _new_loop_state(self, loop: asyncio.AbstractEventLoop, topology: Topology) -> StateT:
        """The layer's state in *loop* (its connections to *topology*)."""
        raise NotImplementedError

    def _set_up(self) -> None:
        """Set the layer's own attributes (at the end of ``__init__``)."""

    def _check_topology(self, topology: Topology) -> None:
        """Raise if the layer cannot work with the servers found (once, on first use)."""

    async def _process_queue_made(self, state: StateT, queue: str) -> None:
        """:meth:`new_channel` made a name on the process queue *queue*."""

    # -- internals -------------------------------------------------------------------------

    def _refuse_unknown_process_channel(self, channel: str, queue: str) -> None:
        # A process-specific name made elsewhere would wait forever here: its
        # messages go to the process that made it.
        if "!" in channel and queue not in self._process_parts.queues:
            raise UnknownProcessChannel(channel)

    async def _state(self) -> StateT:
        return self._loops.peek() or await self._loops.get()

    async def _open_loop(self, loop: asyncio.AbstractEventLoop) -> StateT:
        topology = self._topology
        if topology is None:
            topology = await detect_topology(self._host_specs, self.prefix)
            self._check_topology(topology)
            self._topology = topology
        return self._new_loop_state(loop, topology)

    @staticmethod
    async def _close_loop_state(state: StateT) -> None:
        await state.aclose()

    async def _delete_keys(self, clients: Sequence[Client], cluster: bool) -> None:
        """Delete every key under the prefix on *clients* (``flush()``)."""
        pattern = self._keys.scan_pattern
        with map_redis_errors("flushing the layer"):
            if cluster:
                await _delete_cluster_keys(clients[0], pattern)
            else:
                await asyncio.gather(*(_delete_server_keys(client, pattern) for client in clients))


class LayerLoopState:
    """What a layer holds in one event loop, whichever the layer.

    A subclass sets :attr:`writers` and implements :meth:`acknowledge` and
    :meth:`aclose` (which ends with :meth:`release_names`).
    """

    #: One batching writer per shard.
    writers: list[ShardWriter]

    def __init__(
        self,
        layer: RedisLayerBase[Any],
        loop: asyncio.AbstractEventLoop,
        capacity: Callable[[str], int],
    ) -> None:
        self.layer = layer
        self.loop = loop
        #: Callbacks and other tasks under way: closing cancels them.
        self.tasks: set[asyncio.Task[None]] = set()
        # Each loop reads its own process queues: two loops reading one list
        # would take each other's messages.
        self.client_prefix, self.channel_numbers = layer._process_parts.claim()
        self.decoder = payload_decoder(
            layer.serializer, overriding_method(layer, RedisLayerBase, "deserialize")
        )
        #: Messages that reached this process, by channel.
        self.buffer = LocalBuffer(capacity, self.acknowledge)

    def acknowledge(self, channel: str, count: int) -> None:
        """*count* messages of *channel* left this process (free room in Redis)."""
        raise NotImplementedError

    def announce(self, callback: ConnectionCallback) -> None:
        """Run on_disconnect / on_reconnect."""
        announce(callback, self.buffer, self.layer._expiry_ms, self.loop, self.tasks)

    async def cancel_tasks(self) -> None:
        """Cancel the callbacks and other tasks under way, and wait for them to end."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def release_names(self) -> None:
        """Give this loop's process part back, for another loop to use."""
        self.layer._process_parts.release(self.client_prefix, self.channel_numbers)

    async def aclose(self) -> None:
        """Stop everything and close every connection of this loop."""
        raise NotImplementedError


async def _delete_server_keys(client: Client, pattern: str) -> None:
    cursor: Any = 0
    while True:
        cursor, keys = await client.execute_command("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
        if keys:
            await client.execute_command("UNLINK", *keys)
        if int(cursor) == 0:
            return


async def _delete_cluster_keys(cluster: Any, pattern: str) -> None:
    for node in cluster.get_primaries():
        cursor: Any = 0
        while True:
            reply = await cluster.execute_command(
                "SCAN", cursor, "MATCH", pattern, "COUNT", 1000, target_nodes=node
            )
            # redis-py answers a command sent to chosen nodes per node.
            if isinstance(reply, dict):
                reply = next(iter(reply.values()))
            cursor, keys = reply
            if isinstance(cursor, dict):
                cursor = next(iter(cursor.values()))
            # Keys of different slots cannot share one UNLINK in a Cluster.
            for key in keys:
                await cluster.execute_command("UNLINK", key)
            if int(cursor) == 0:
                break
