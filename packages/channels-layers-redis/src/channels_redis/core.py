"""The Redis channel layer: ``"channels_redis.core.RedisChannelLayer"``.

Channels are Redis lists and groups sorted sets (the layout is in
:mod:`channels_redis.wire`); every operation is one round trip:

* ``send()`` runs one Lua script that checks the capacity, appends the message
  and renews the list's expiry (sends made together share one call);
* ``receive()`` collects messages that a background reader pops in batches
  (:mod:`channels_redis.local_buffer`);
* ``group_add()`` and ``group_discard()`` each run one command on the shard of
  the channel: group members are stored next to their channel's queue;
* ``group_send()`` runs one script per shard (per Cluster node, batched),
  which reads the members and queues the message for each of them.

Scripts are called by digest (``EVALSHA``); ``flush()`` walks the prefix with
``SCAN``; nothing uses ``KEYS``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any, ClassVar

import redis.exceptions
from redis.asyncio import ConnectionPool

from channels._cache import BoundedCache

from .batching import ShardWriter, close_writers, refused
from .commands import Commands, shard_commands
from .errors import (
    RedisLayerError,
    map_redis_errors,
    unanswered,
)
from .hosts import HostSpec
from .layer_base import DEFAULT_MAX_MESSAGE_SIZE, LayerLoopState, RedisLayerBase
from .link_pool import LinkCommands
from .local_buffer import QueueReader
from .redis_clients import Client, close_client, make_client, make_clients
from .resp import pack_command
from .scripts import GROUP_ADD, GROUP_SEND, SEND
from .sharding import shard_index
from .topology import Shard, Topology
from .utils import create_pool
from .wire import (
    expired_score,
    member_score,
    non_local_part,
    now_ms,
    pack_element,
    queue_name,
)

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "RedisChannelLayer"]

logger = logging.getLogger("channels_redis")

#: How many channel names the per-name caches (capacities, acknowledgement
#: targets) keep: names come from peers, so the caches are bounded.
_CACHED_NAMES = 10000


class RedisChannelLayer(RedisLayerBase["_LoopState"]):
    """A channel layer on Redis lists, with groups, sharding and Cluster support.

    :param hosts: the Redis servers: a list of URLs, ``(host, port)``
        tuples, dicts of connection options, or Sentinel dicts (see
        :mod:`channels_redis.hosts`). Several servers shard the data by a
        consistent hash of the channel name; the nodes of a Redis Cluster are
        detected and used as one cluster. Default ``[("localhost", 6379)]``.
    :param prefix: the start of every key, so that several layers can share
        a Redis (``"asgi"``).
    :param expiry: seconds a message waits unread before it is dropped (60).
    :param group_expiry: seconds a group membership lasts after its last
        ``group_add`` (86400).
    :param capacity: messages a channel may hold before ``send()`` raises
        :class:`~channels.exceptions.ChannelFull` (100).
    :param channel_capacity: per-channel capacities, a mapping of glob
        strings or compiled regular expressions to integers.
    :param symmetric_encryption_keys: encrypt messages with Fernet; the first
        key encrypts, every key decrypts (needs ``cryptography``).
    :param serializer_format: ``"msgpack"`` (default), ``"json"``, or a name
        registered with :data:`channels_redis.serializers.registry`.
    :param random_prefix_length: characters of the random, per-process part
        of names made by :meth:`new_channel` (12).
    :param max_message_size: the most bytes a serialized message may take
        (before encryption); larger ones raise
        :class:`~channels_redis.errors.MessageTooLarge`. ``None``: no limit.
    :param on_disconnect: what to do when a connection to a server is lost:
        a message type sent to every channel being received in the event
        loop, or a callable (see :mod:`channels_redis.hooks`).
    :param on_reconnect: the same, once the server answers again and, if it
        restarted without its data, the groups joined through this layer are
        back.

    Every message goes through :meth:`serialize` on its way to Redis and
    :meth:`deserialize` on its way back: a subclass that overrides them
    (to compress, say) changes what is stored.
    """

    #: The most seconds one blocking pop of a receive loop waits before it
    #: asks again (less when a host's ``socket_timeout`` is short).
    brpop_timeout: ClassVar[float] = QueueReader.BLOCK_SECONDS

    def _set_up(self) -> None:
        # fast path: bench/redis_layer.py "round trips, serial" looks a capacity
        # up per send; saves 0.05-0.4 us a call (0 to 3 channel_capacity patterns,
        # timeit), under that row's noise.
        self._capacities: BoundedCache[str, int] = BoundedCache(_CACHED_NAMES)
        self._connections: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[int, Client]
        ] = weakref.WeakKeyDictionary()
        #: (group, channel) -> when group_add last added it (epoch seconds),
        #: for as long as no group_discard removed it: what a server that
        #: restarted without its data gets back.
        self._memberships: dict[tuple[str, str], float] = {}
        self._prune_memberships_at = 1024
        #: The run_id of each server (by client index) when last seen.
        self._server_ids: dict[int, str] = {}

    # -- the specification's coroutines ------------------------------------------

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Queue *message* on *channel*.

        Raises :class:`~channels.exceptions.ChannelFull` if the channel holds
        ``capacity`` messages, :class:`~channels_redis.errors.MessageTooLarge`
        above ``max_message_size``, ``TypeError`` for a bad name or a value
        that cannot be serialized, and
        :class:`~channels_redis.errors.RedisConnectionError` when Redis is
        unreachable.
        """
        self._check_channel(channel)
        payload = self.serialize(message)
        state = await self._state()
        queue = queue_name(channel)
        shard = state.shard_for(queue)
        keys = shard.keys
        queue_key = keys.channel_key(queue)
        capacity = self._capacity(channel)
        deadline = now_ms() + self._expiry_ms
        if "!" not in channel:
            element = pack_element(deadline, None, payload)
            future = state.writers[shard.index].submit(
                (queue_key, queue_key), (element, capacity, "")
            )
        else:
            element = pack_element(deadline, channel, payload)
            future = state.writers[shard.index].submit(
                (queue_key, keys.count_key(queue)),
                (element, capacity, non_local_part(channel)),
            )
        status = await future
        if status != 1:
            raise refused(channel, capacity, status)

    async def receive(self, channel: str) -> dict[str, Any]:
        """The next message on *channel*, waiting as long as it takes.

        Cancelling a waiting ``receive()`` loses nothing: a message already
        taken from Redis stays for the next ``receive()`` on the channel.

        Raises :class:`~channels_redis.errors.UnknownProcessChannel` at once
        for a process-specific name (with ``!``) that this layer did not make
        with :meth:`new_channel`.
        """
        self._check_channel(channel)
        state = await self._state()
        queue = queue_name(channel)
        reader = state.readers.get(queue)
        if reader is None:
            self._refuse_unknown_process_channel(channel, queue)
            shard = state.shard_for(queue)
            reader = QueueReader(
                queue,
                shard.keys.channel_key(queue),
                state.commands[shard.client_index],
                state.buffer,
                state.decoder,
                persistent="!" in channel,
                block_seconds=state.block_seconds[shard.client_index],
            )
            state.readers[queue] = reader
        box = state.buffer.mailboxes.get(channel)
        if box is None or not box.messages:
            reader.start()
        return await state.buffer.get(channel)

    async def receive_single(self, channel: str) -> tuple[str, dict[str, Any]]:
        """``(channel, message)``: the next message on *channel*, as channels_redis returns it.

        *channel* is an ordinary name or a whole process-specific one;
        channels_redis also took the non-local part alone (``"specific.abc!"``)
        and returned whichever of its channels got a message, but here each
        process-specific channel has a mailbox of its own, so that form
        raises ``TypeError``.
        """
        if channel.endswith("!"):
            raise TypeError(
                f"receive_single({channel!r}): give a whole channel name; this layer "
                "hands each process-specific channel its own messages, so receive() "
                "on each channel made by new_channel()"
            )
        return channel, await self.receive(channel)

    # -- groups ----------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        """Add *channel* to *group* (or renew its membership for ``group_expiry``)."""
        self._check_group(group)
        self._check_channel(channel)
        state = await self._state()
        shard = state.shard_for(queue_name(channel))
        now = time.time()
        with map_redis_errors(f"adding {channel!r} to the group {group!r}"):
            await GROUP_ADD.run(
                state.commands[shard.client_index],
                [shard.keys.group_key(group)],
                [
                    channel,
                    member_score(now, self._capacity(channel)),
                    int(self.group_expiry * 1000),
                    expired_score(now, self.group_expiry),
                ],
            )
        memberships = self._memberships
        memberships[(group, channel)] = now
        if len(memberships) >= self._prune_memberships_at:
            oldest = now - self.group_expiry
            for key, added in list(memberships.items()):
                if added <= oldest:
                    memberships.pop(key, None)
            self._prune_memberships_at = max(1024, 2 * len(memberships))

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove *channel* from *group*; nothing happens if it is not a member."""
        self._check_group(group)
        self._check_channel(channel)
        state = await self._state()
        shard = state.shard_for(queue_name(channel))
        self._memberships.pop((group, channel), None)
        with map_redis_errors(f"removing {channel!r} from the group {group!r}"):
            await state.commands[shard.client_index].execute(
                "ZREM", shard.keys.group_key(group), channel
            )

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Queue *message* for every member of *group*; full channels miss it.

        One script per shard (or per Cluster node) reads the members and
        queues the message; never raises ``ChannelFull``.
        """
        self._check_group(group)
        payload = self.serialize(message)
        state = await self._state()
        now = time.time()
        now_milliseconds = int(now * 1000)
        common = [
            now_milliseconds,
            self._expiry_ms + 1000,
            expired_score(now, self.group_expiry),
        ]
        tail = [now_milliseconds + self._expiry_ms, payload]
        with map_redis_errors(f"sending to the group {group!r}", sending=True):
            if state.topology.cluster:
                replies = await self._group_send_cluster(state, group, common, tail)
            elif len(state.shards) == 1:
                shard = state.shards[0]
                replies = [
                    await GROUP_SEND.run(
                        state.commands[0],
                        [shard.keys.group_key(group)],
                        [*common, shard.keys.channel_prefix, shard.keys.count_prefix, *tail],
                    )
                ]
            else:
                replies = await asyncio.gather(
                    *(
                        GROUP_SEND.run(
                            state.commands[shard.client_index],
                            [shard.keys.group_key(group)],
                            [*common, shard.keys.channel_prefix, shard.keys.count_prefix, *tail],
                        )
                        for shard in state.shards
                    )
                )
        skipped = sum(reply[1] for reply in replies)
        if skipped:
            # Members whose keys hold what this layer did not write (by hand,
            # or another program): the others got the message.
            logger.warning(
                "group_send to %r skipped %d member(s) whose keys in Redis hold values "
                "this layer did not write",
                group,
                skipped,
            )

    async def _group_send_cluster(
        self, state: _LoopState, group: str, common: list[Any], tail: list[Any]
    ) -> list[Any]:
        # redis-py's cluster pipeline sends the commands of each node together:
        # one round trip per node, all nodes at once.
        cluster = state.clients[0]
        for attempt in range(2):
            pipeline = cluster.pipeline(transaction=False)
            for shard in state.shards:
                pipeline.execute_command(
                    "EVALSHA",
                    GROUP_SEND.sha,
                    *GROUP_SEND.args(
                        [shard.keys.group_key(group)],
                        [*common, shard.keys.channel_prefix, shard.keys.count_prefix, *tail],
                    ),
                )
            try:
                results = await pipeline.execute(raise_on_error=False)
            except redis.exceptions.NoScriptError:
                results = [redis.exceptions.NoScriptError()]
            except _LOST as exc:
                # redis-py cannot say whether the scripts ran.
                raise unanswered(exc) from exc
            errors = [result for result in results if isinstance(result, Exception)]
            if not errors:
                return list(results)
            if attempt or not all(isinstance(e, redis.exceptions.NoScriptError) for e in errors):
                raise unanswered(errors[0]) if isinstance(errors[0], _LOST) else errors[0]
            # A node lost its script cache (restart, failover): load it on
            # every primary, then send again.
            await cluster.script_load(GROUP_SEND.source)
        raise AssertionError("unreachable: the second attempt returns or raises")

    # -- flush extension ---------------------------------------------------------

    async def flush(self) -> None:
        """Delete every key under the prefix, and every message held locally.

        Walks the keys with ``SCAN`` (never ``KEYS``) on every server or
        Cluster primary; receivers already waiting keep waiting. Messages
        Redis had handed to this process but it had not read yet are dropped
        too: nothing sent before the flush is received after it.
        """
        state = await self._state()
        # A blocking pop in flight may be carrying messages Redis handed over
        # before the flush: the receive loops stop (dropping what they carry)
        # and start again afterwards.
        readers = list(state.readers.values())
        await asyncio.gather(*(reader.halt() for reader in readers))
        state.buffer.clear()
        self._memberships.clear()
        try:
            await self._delete_keys(state.clients, cluster=state.topology.cluster)
        finally:
            for reader in readers:
                if reader.wanted():
                    reader.start()

    # -- connections -------------------------------------------------------------

    async def close_pools(self) -> None:
        """Stop this event loop's receive loops and close its connections.

        Messages of ordinary channels that reached this process but no
        ``receive()`` go back to Redis first. Using the layer afterwards
        opens new connections. The clients :meth:`connection` gave in this
        loop are closed too.
        """
        await super().close_pools()
        await self._close_connections(asyncio.get_running_loop())

    # -- channels_redis's helpers ------------------------------------------------------

    def create_pool(self, index: int) -> ConnectionPool:
        """A new redis-py connection pool for ``hosts[index]``, with only its own options."""
        return create_pool(self.hosts[index])

    def connection(self, index: int) -> Any:
        """A redis-py asyncio client for ``hosts[index]``, in the running event loop.

        One client per server and loop, with the layer's connection options,
        for commands of your own (``connection(consistent_hash(key))``);
        :meth:`close_pools` closes it. In a Redis Cluster, the cluster client
        (whichever the index) once the layer has connected.
        """
        if not 0 <= index < self.ring_size:
            raise ValueError(f"There are {self.ring_size} hosts, so no index {index}")
        loop = asyncio.get_running_loop()
        clients = self._connections.get(loop)
        if clients is None:
            clients = self._connections[loop] = {}
        client = clients.get(index)
        if client is None:
            topology = self._topology
            if topology is not None and topology.cluster:
                client = clients.setdefault(-1, make_clients(topology)[0])
            else:
                client = make_client(self._host_specs[index])
            clients[index] = client
        return client

    async def _close_connections(self, loop: asyncio.AbstractEventLoop) -> None:
        clients = self._connections.pop(loop, None)
        if clients:
            for client in {id(client): client for client in clients.values()}.values():
                await close_client(client)

    # -- internals ---------------------------------------------------------------

    def _capacity(self, channel: str) -> int:
        capacity = self._capacities.get(channel)
        if capacity is None:
            capacity = self._capacities.put(channel, self.get_capacity(channel))
        return capacity

    def _new_loop_state(self, loop: asyncio.AbstractEventLoop, topology: Topology) -> _LoopState:
        return _LoopState(self, loop, topology)


class _LoopState(LayerLoopState):
    """Everything the layer holds in one event loop."""

    layer: RedisChannelLayer

    def __init__(
        self,
        layer: RedisChannelLayer,
        loop: asyncio.AbstractEventLoop,
        topology: Topology,
    ) -> None:
        super().__init__(layer, loop, layer._capacity)
        self.topology = topology
        self.shards: tuple[Shard, ...] = topology.shards
        self.clients: list[Client] = make_clients(topology)
        # (self.tasks: callbacks and restorations under way.)
        self.watches = [_ServerWatch(self, index) for index in range(len(self.clients))]
        #: The path of each client's commands, chosen here once.
        self.commands: list[Commands] = [
            shard_commands(client, watch, link=layer._link_to_servers)
            for client, watch in zip(self.clients, self.watches, strict=True)
        ]
        self.readers: dict[str, QueueReader] = {}
        #: channel -> (writer, counter key, counted field), for acknowledgements.
        # fast path: bench/redis_layer.py "round trips, 50 in flight" acknowledges
        # every message received; saves 0.5 us a message (timeit), under that row's noise.
        self.ack_targets: BoundedCache[str, tuple[ShardWriter, str, str]] = BoundedCache(
            _CACHED_NAMES
        )
        self.block_seconds = [_block_seconds(spec, layer.brpop_timeout) for spec in topology.hosts]
        if topology.cluster:
            self.block_seconds = [self.block_seconds[0]]
        ttl_ms = layer._expiry_ms + 1000
        self.writers = [
            ShardWriter(loop, self.commands[shard.client_index], SEND, ttl_ms)
            for shard in self.shards
        ]

    def shard_for(self, queue: str) -> Shard:
        shards = self.shards
        return shards[shard_index(queue, len(shards))]

    def acknowledge(self, channel: str, count: int) -> None:
        """*count* messages of the process-specific *channel* left this process."""
        target = self.ack_targets.get(channel)
        if target is None:
            queue = queue_name(channel)
            shard = self.shard_for(queue)
            target = self.ack_targets.put(
                channel,
                (self.writers[shard.index], shard.keys.count_key(queue), non_local_part(channel)),
            )
        target[0].acknowledge(target[1], target[2], count)

    async def aclose(self) -> None:
        await self.cancel_tasks()
        readers = list(self.readers.values())
        self.readers.clear()
        await asyncio.gather(*(reader.stop() for reader in readers), return_exceptions=True)
        self.buffer.release_counted()
        # A frozen or dead server must not hold the closing up: what it has
        # not answered in time is abandoned.
        deadline = self.loop.time() + self.layer.close_timeout
        await close_writers(self.writers, self.layer.close_timeout)
        for reader in readers:
            try:
                await asyncio.wait_for(
                    reader.return_unclaimed(), max(0.0, deadline - self.loop.time())
                )
            except (RedisLayerError, asyncio.TimeoutError) as exc:
                logger.warning(
                    "Messages that reached this process were lost: %s",
                    str(exc) or "Redis did not answer in time",
                )
        for commands in self.commands:
            await commands.aclose()
        for client in self.clients:
            await close_client(client)
        await self.layer._close_connections(self.loop)
        self.release_names()


_LOST = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class _ServerWatch:
    """One server as one event loop sees it: outages, and restarts that lost data.

    Redis without persistence comes back from a restart empty: the groups
    this layer joined there are gone, and a ``group_send`` would reach
    nobody. The server's ``run_id`` (asked on every new connection) tells a
    restart from a broken connection; after one, the memberships the layer
    still holds go back before any other command uses the new connection.
    """

    def __init__(self, state: _LoopState, index: int) -> None:
        self.state = state
        self.index = index
        self.down = False
        #: The run_id being restored for, and the restoration.
        self.restoring: tuple[str, asyncio.Future[None]] | None = None

    def lost(self) -> None:
        if not self.down:
            self.down = True
            self.state.announce(self.state.layer.on_disconnect)

    async def connected(self, run_id: str, connections: LinkCommands) -> None:
        layer = self.state.layer
        known = layer._server_ids.get(self.index)
        if known is None or not run_id:
            if run_id:
                layer._server_ids[self.index] = run_id
        elif known != run_id:
            restoring = self.restoring
            if restoring is None or restoring[0] != run_id or _failed(restoring[1]):
                task = self.state.loop.create_task(self._restore(run_id, connections))
                task.add_done_callback(_retrieve)
                # Owned by the loop's state: closing the layer cancels it.
                self.state.tasks.add(task)
                task.add_done_callback(self.state.tasks.discard)
                restoring = self.restoring = (run_id, task)
            await asyncio.shield(restoring[1])
        if self.down:
            self.down = False
            self.state.announce(layer.on_reconnect)

    async def _restore(self, run_id: str, connections: LinkCommands) -> None:
        state = self.state
        layer = state.layer
        now = time.time()
        oldest = now - layer.group_expiry
        entries = []
        for (group, channel), added in list(layer._memberships.items()):
            shard = state.shard_for(queue_name(channel))
            if added > oldest and shard.client_index == self.index:
                entries.append((shard.keys.group_key(group), channel, added))
        if entries:
            link = await connections.open_unwatched()
            try:
                # Pipelined on one connection, after the script (the restart
                # emptied Redis's script cache too).
                replies = [link.send(pack_command(("SCRIPT", "LOAD", GROUP_ADD.source)))]
                ttl_ms = int(layer.group_expiry * 1000)
                lowest = expired_score(now, layer.group_expiry)
                for key, channel, added in entries:
                    # The original score: the membership expires when it would have.
                    score = member_score(added, layer._capacity(channel))
                    arguments = GROUP_ADD.args([key], [channel, score, ttl_ms, lowest])
                    replies.append(link.send(pack_command(("EVALSHA", GROUP_ADD.sha, *arguments))))
                results = await asyncio.gather(*replies, return_exceptions=True)
            finally:
                link.close()
                connections.every.discard(link)
            lost = [result for result in results if isinstance(result, _LOST)]
            if lost:
                raise lost[0]
            refused = [result for result in results if isinstance(result, Exception)]
            logger.warning(
                "Redis at %s restarted and lost its data: %d group membership(s) of this "
                "process restored%s",
                state.topology.hosts[self.index].address,
                len(entries) - len(refused),
                f" ({len(refused)} refused: {refused[0]})" if refused else "",
            )
        layer._server_ids[self.index] = run_id


def _failed(future: asyncio.Future[None]) -> bool:
    return future.done() and (future.cancelled() or future.exception() is not None)


def _retrieve(future: asyncio.Future[None]) -> None:
    # Whoever waited got the error; with nobody waiting it is not news.
    if not future.cancelled():
        future.exception()


def _block_seconds(spec: HostSpec, longest: float) -> float:
    # A blocking pop must return before the socket times out.
    timeout: float | None = spec.options.get("socket_timeout")
    if timeout is None or timeout >= 2 * longest:
        return longest
    return max(0.1, timeout / 2)
