"""The Pub/Sub channel layer: ``"channels_redis.pubsub.RedisPubSubChannelLayer"``.

Messages travel by Redis ``PUBLISH``: each process subscribes to the channels
it receives and Redis pushes every message straight to it, with no polling
and no list in between. Compared with :class:`~channels_redis.core.RedisChannelLayer`:

* **Groups cost Redis nothing per member.** A process that has members in a
  group subscribes to the group once; ``group_send`` is one ``PUBLISH``
  whatever the group's size, and each process hands the message to its own
  members. A group message is delivered only to processes connected at that
  moment (Pub/Sub keeps nothing), and ``group_add`` is for channels received
  by the calling process (as consumers do for themselves).
* **Channels keep what nobody is listening to.** A message to a channel that
  no process is subscribed to goes to a backlog list, which the receiving
  process reads when it subscribes, so sending before the first
  ``receive()`` loses nothing. Capacities and expiry apply as in the list
  layer. An ordinary channel should be received by one process: several
  subscribed processes each get every message.
* **Redis restarts are survived.** When the connection drops, each process
  reconnects with backoff, subscribes again to every channel and group it
  had, and reads the backlogs, so channel messages sent meanwhile still
  arrive. ``on_disconnect`` and ``on_reconnect`` report the outage: a string
  is sent as ``{"type": <string>}`` to every channel being received in the
  process (consumers handle it like any message, e.g. to resynchronise
  their clients with what group messages they may have missed); a callable
  is called with no arguments (and awaited if it returns an awaitable).

Sharding, Sentinel, TLS, encryption and serializers work as in the list
layer; Redis Cluster does not (use the list layer, which supports it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from typing import Any

import redis.exceptions
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import ConnectionPool

from .batching import ShardWriter, close_writers, refused
from .commands import Commands, shard_commands
from .errors import (
    InvalidConfiguration,
    RedisConnectionError,
    map_redis_errors,
)
from .hosts import HostSpec
from .layer_base import LayerLoopState, RedisLayerBase
from .link import open_link
from .local_buffer import stop_task
from .redis_clients import Client, close_client, make_clients
from .resp import NOTHING, ProtocolError, ReplyParser, pack_command
from .scripts import DRAIN, PUBSUB_SEND
from .sharding import shard_index
from .topology import Topology
from .wire import (
    non_local_part,
    now_ms,
    pack_element,
    queue_name,
    unpack_element,
)

__all__ = ["RedisPubSubChannelLayer"]

logger = logging.getLogger("channels_redis")


class RedisPubSubChannelLayer(RedisLayerBase["_PubSubLoopState"]):
    """A channel layer on Redis Pub/Sub, with groups, sharding and Sentinel.

    Takes the arguments of :class:`~channels_redis.core.RedisChannelLayer`
    (``hosts``, ``prefix``, ``expiry``, ``group_expiry``, ``capacity``,
    ``channel_capacity``, ``symmetric_encryption_keys``,
    ``serializer_format``, ``random_prefix_length``, ``max_message_size``)
    and:

    :param on_disconnect: what to do when a connection to Redis is lost: a
        message type sent to every channel being received, or a callable.
    :param on_reconnect: the same, once the subscriptions are restored.

    Every message goes through :meth:`serialize` when sent and
    :meth:`deserialize` when received: a subclass that overrides them
    changes what travels.
    """

    # -- channels ----------------------------------------------------------------

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Publish *message* to *channel* (kept in its backlog if nobody listens).

        Raises :class:`~channels.exceptions.ChannelFull` when the channel has
        ``capacity`` unreceived messages.
        """
        self._check_channel(channel)
        payload = self.serialize(message)
        state = await self._state()
        queue = queue_name(channel)
        shard = state.shard_of(queue)
        keys = self._keys
        if "!" in channel:
            element = pack_element(now_ms() + self._expiry_ms, channel, payload)
            field = non_local_part(channel)
        else:
            element = pack_element(now_ms() + self._expiry_ms, None, payload)
            field = channel
        capacity = self.get_capacity(channel)
        future = state.writers[shard].submit(
            (keys.channel_key(queue), keys.count_key(queue)),
            (element, capacity, field, keys.publish_name(queue)),
        )
        status = await future
        if status != 1:
            raise refused(channel, capacity, status)

    async def receive(self, channel: str) -> dict[str, Any]:
        """The next message on *channel*, subscribing to it on first use.

        A process-specific name (with ``!``) must come from this layer's
        :meth:`new_channel`: any other raises
        :class:`~channels_redis.errors.UnknownProcessChannel` at once.
        """
        self._check_channel(channel)
        state = await self._state()
        queue = queue_name(channel)
        if queue not in state.queues:
            self._refuse_unknown_process_channel(channel, queue)
            state.queues.add(queue)
            # Once asked for, a queue's subscription is kept (and restored
            # after outages) for as long as the loop's state lives.
            await state.subscribe_queue(queue, wait=False)
        return await state.buffer.get(channel)

    # -- groups --------------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        """Add *channel*, received in this process, to *group*.

        Returns once this process is subscribed to the group, so that a
        ``group_send`` that follows reaches the channel.
        """
        self._check_group(group)
        self._check_channel(channel)
        state = await self._state()
        state.groups.setdefault(group, {})[channel] = time.monotonic()
        await state.subscribe_group(group)

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove *channel* from *group*; the last member's leaving unsubscribes."""
        self._check_group(group)
        self._check_channel(channel)
        state = await self._state()
        members = state.groups.get(group)
        if members is None:
            return
        members.pop(channel, None)
        if not members:
            del state.groups[group]
            await state.unsubscribe_group(group)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Publish *message* to every process with members in *group*: one ``PUBLISH``."""
        self._check_group(group)
        payload = self.serialize(message)
        state = await self._state()
        element = pack_element(now_ms() + self._expiry_ms, None, payload)
        shard = shard_index(group, len(state.clients))
        with map_redis_errors(f"sending to the group {group!r}", sending=True):
            await state.commands[shard].execute(
                "PUBLISH", self._keys.group_publish_name(group), element
            )

    # -- flush, close ----------------------------------------------------------------

    async def flush(self) -> None:
        """Forget every group and message: backlogs, counts, local messages.

        Messages published before the flush but still on their way to this
        process are dropped too: nothing sent before it is received after it.
        """
        state = await self._state()
        state.buffer.clear()
        groups = list(state.groups)
        state.groups.clear()
        for group in groups:
            await state.unsubscribe_group(group)
        await self._delete_keys(state.clients, cluster=False)
        # Messages published before the flush may still be on their way to
        # this process: wait until every subscription has read up to now,
        # then drop them too.
        await asyncio.gather(*(subscriber.barrier() for subscriber in state.subscribers))
        state.buffer.clear()

    # -- internals ---------------------------------------------------------------------

    def _check_topology(self, topology: Topology) -> None:
        if topology.cluster:
            raise InvalidConfiguration(
                "RedisPubSubChannelLayer does not support Redis Cluster; use "
                "channels_redis.core.RedisChannelLayer, which does"
            )

    def _new_loop_state(
        self, loop: asyncio.AbstractEventLoop, topology: Topology
    ) -> _PubSubLoopState:
        return _PubSubLoopState(self, loop, topology)

    async def _process_queue_made(self, state: _PubSubLoopState, queue: str) -> None:
        # Subscribed to at once, so that what is sent to it is not backlogged.
        state.queues.add(queue)
        await state.subscribe_queue(queue, wait=False)


class _PubSubLoopState(LayerLoopState):
    """Connections, subscriptions and local messages of one event loop."""

    layer: RedisPubSubChannelLayer

    def __init__(
        self,
        layer: RedisPubSubChannelLayer,
        loop: asyncio.AbstractEventLoop,
        topology: Topology,
    ) -> None:
        super().__init__(layer, loop, layer.get_capacity)
        #: Queues receive() has been checked for (or new_channel() made).
        self.queues: set[str] = set()
        self.clients: list[Client] = make_clients(topology)
        #: The path of each client's commands, chosen here once.
        self.commands: list[Commands] = [
            shard_commands(client, link=layer._link_to_servers) for client in self.clients
        ]
        #: group -> {local channel: time of its last group_add (monotonic)}
        self.groups: dict[str, dict[str, float]] = {}
        ttl_ms = layer._expiry_ms + 1000
        self.writers = [
            ShardWriter(loop, commands, PUBSUB_SEND, ttl_ms, "publishing messages")
            for commands in self.commands
        ]
        self.subscribers = [
            _ShardSubscriber(self, index, self.commands[index], _server_pool(client), spec)
            for index, (client, spec) in enumerate(zip(self.clients, topology.hosts, strict=True))
        ]
        # (self.tasks: unsubscriptions and callbacks under way.)
        # Pub/Sub names -> what they carry.
        self.queue_names: dict[str, str] = {}
        self.group_names: dict[str, str] = {}

    def shard_of(self, queue: str) -> int:
        return shard_index(queue, len(self.clients))

    def acknowledge(self, channel: str, count: int) -> None:
        queue = queue_name(channel)
        field = non_local_part(channel) if "!" in channel else channel
        self.writers[self.shard_of(queue)].acknowledge(
            self.layer._keys.count_key(queue), field, count
        )

    async def subscribe_queue(self, queue: str, wait: bool) -> None:
        name = self.layer._keys.publish_name(queue)
        if name not in self.queue_names:
            self.queue_names[name] = queue
        await self.subscribers[self.shard_of(queue)].subscribe(name, wait=wait)

    async def subscribe_group(self, group: str) -> None:
        name = self.layer._keys.group_publish_name(group)
        self.group_names[name] = group
        subscriber = self.subscribers[shard_index(group, len(self.clients))]
        await subscriber.subscribe(name, wait=True)

    async def unsubscribe_group(self, group: str) -> None:
        if self.groups.get(group):
            return  # a member joined again meanwhile
        name = self.layer._keys.group_publish_name(group)
        self.group_names.pop(name, None)
        await self.subscribers[shard_index(group, len(self.clients))].unsubscribe(name)

    # -- delivery ------------------------------------------------------------------

    def deliver_queue(self, queue: str, element: bytes) -> None:
        """A message published (or backlogged) on a queue this process reads."""
        try:
            deadline, channels, payload = unpack_element(element)
            if channels is not None and any(
                "!" not in channel or queue_name(channel) != queue for channel in channels
            ):
                raise ValueError("its header names channels this queue does not serve")
        except ValueError as exc:
            # Whatever was published there by hand or by another program:
            # dropped, and the subscription goes on.
            logger.warning("Dropped a message on %r that cannot be decoded: %s", queue, exc)
            return
        targets = [queue] if channels is None else channels
        if deadline <= now_ms():
            self._release(targets)
            return
        self._hand_out(targets, deadline, payload, counted=True)

    def deliver_group(self, group: str, element: bytes) -> None:
        """A group message: every local member that is still a member gets it."""
        members = self.groups.get(group)
        if not members:
            return
        oldest = time.monotonic() - self.layer.group_expiry
        for channel, added in list(members.items()):
            if added < oldest:
                del members[channel]
        if not members:
            del self.groups[group]
            task = self.loop.create_task(self.unsubscribe_group(group))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            return
        try:
            deadline, _, payload = unpack_element(element)
        except ValueError as exc:
            logger.warning("Dropped a message of group %r that cannot be decoded: %s", group, exc)
            return
        self._hand_out(list(members), deadline, payload, counted=False)

    def _hand_out(self, channels: list[str], deadline: int, payload: bytes, counted: bool) -> None:
        decoder = self.decoder
        try:
            plain = decoder.open(payload)
        except Exception as exc:  # noqa: BLE001 - a serializer may raise anything
            logger.warning("Dropped a message on %r that cannot be decoded: %s", channels[0], exc)
            if counted:
                self._release(channels)
            return
        for position, channel in enumerate(channels):
            try:
                message = decoder.decode(plain)
                if not isinstance(message, dict):
                    raise TypeError(f"it decodes to {type(message).__name__!r}, not to a dict")
            except Exception as exc:  # noqa: BLE001 - a serializer may raise anything
                # Whatever a serializer (or a layer's deserialize()) raises,
                # the subscription goes on.
                logger.warning("Dropped a message on %r that cannot be decoded: %r", channel, exc)
                if counted:
                    self._release(channels[position:])
                return
            self.buffer.put(channel, deadline, message, counted=counted)

    def _release(self, channels: list[str]) -> None:
        for channel in channels:
            self.acknowledge(channel, 1)

    async def aclose(self) -> None:
        await self.cancel_tasks()
        await asyncio.gather(
            *(subscriber.stop() for subscriber in self.subscribers), return_exceptions=True
        )
        self.buffer.release_counted()
        await close_writers(self.writers, self.layer.close_timeout)
        for commands in self.commands:
            await commands.aclose()
        for client in self.clients:
            await close_client(client)
        self.release_names()


def _server_pool(client: Client) -> ConnectionPool:
    """The connection pool of a server's (or Sentinel master's) client."""
    if isinstance(client, RedisCluster):  # (refused by _check_topology already)
        raise InvalidConfiguration("RedisPubSubChannelLayer does not support Redis Cluster")
    return client.connection_pool


class _Subscription(asyncio.Protocol):
    """One subscribed socket, parsed as it arrives (:mod:`channels_redis.resp`).

    Every reply is handed to the subscriber as soon as its last byte is read,
    inside ``data_received``: a message costs no task and no turn of the
    event loop before it reaches its mailbox. (redis-py's ``PubSub`` reads
    each message in a coroutine with a timeout around it: about a third of
    the layer's time per message in ``bench/redis_layer.py``'s pubsub rows.)

    :meth:`hold` stops the handing over (and the reading) while a backlog is
    read, so that what was published later comes after it; :meth:`release`
    goes on with the replies already read.
    """

    def __init__(self, subscriber: _ShardSubscriber, writer: Any) -> None:
        self.subscriber = subscriber
        self.parser = ReplyParser()
        self.transport: Any = None
        #: The stream writer the socket came from: when collected it would
        #: close the socket, so it is kept for as long as the socket is used.
        self.writer = writer
        self.held = False
        #: Why the connection ended, once it has: set by :meth:`fail`.
        self.failure: Exception | None = None
        self.lost: asyncio.Future[None] = subscriber.state.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        if not self.held:
            self.hand_over()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f": {exc}" if exc is not None else ""
        self.fail(redis.exceptions.ConnectionError(f"Connection closed by server{reason}."))

    def hand_over(self) -> None:
        """Hand every whole reply read so far to the subscriber, unless held."""
        parser = self.parser
        handle = self.subscriber.handle
        while not self.held and self.failure is None:
            try:
                reply = parser.next()
            except ProtocolError as exc:
                self.fail(redis.exceptions.ConnectionError(str(exc)))
                return
            if reply is NOTHING:
                return
            if isinstance(reply, redis.exceptions.RedisError):
                # A refused SUBSCRIBE (an ACL, say): start again, with backoff.
                self.fail(reply)
                return
            try:
                handle(self, reply)
            except Exception:
                # A bug, not bad data (deliveries drop that): the shard's
                # other channels must still be served.
                logger.exception("Handling a message from %s failed", self.subscriber.spec.address)

    def write(self, *command: Any) -> None:
        if self.failure is None:
            self.transport.write(pack_command(command))

    def hold(self) -> None:
        self.held = True
        self.transport.pause_reading()

    def release(self) -> None:
        self.held = False
        if self.failure is None:
            self.transport.resume_reading()
            self.hand_over()

    def fail(self, failure: Exception) -> None:
        if self.failure is None:
            self.failure = failure
        if not self.lost.done():
            self.lost.set_result(None)
        if self.transport is not None:
            self.transport.abort()


class _ShardSubscriber:
    """One Pub/Sub connection to one shard, kept subscribed through outages.

    A task (:meth:`run`) connects, subscribes to every name wanted, and then
    only waits for the connection to end, reading backlogs that failed
    meanwhile; the replies themselves are handled as they arrive
    (:class:`_Subscription`).
    """

    BACKOFF_MIN = 0.05
    BACKOFF_MAX = 2.0
    #: Messages a backlog read takes at a time.
    DRAIN_BATCH = 1000
    #: Seconds between attempts to read a backlog whose reading failed.
    DRAIN_RETRY = 1.0

    def __init__(
        self,
        state: _PubSubLoopState,
        index: int,
        commands: Commands,
        pool: ConnectionPool,
        spec: HostSpec,
    ) -> None:
        self.state = state
        self.index = index
        #: For commands (reading backlogs).
        self.commands = commands
        #: Opens the subscribed connections: each a new one, never one the
        #: pool kept (it may be dead after an outage).
        self.pool = pool
        self.spec = spec
        #: The Pub/Sub channels this process wants, subscribed or not yet.
        self.names: set[str] = set()
        #: Futures waiting for a subscription's confirmation.
        self.confirmations: dict[str, list[asyncio.Future[None]]] = {}
        self.confirmed: set[str] = set()
        self.connection: _Subscription | None = None
        self.task: asyncio.Task[None] | None = None
        #: The backlog read under way, which holds the connection's replies.
        self.draining: asyncio.Task[None] | None = None
        self.wakeup = asyncio.Event()
        self.failing = False
        self.stopped = False
        #: Backlogs to read again: reading them failed after a subscription.
        self.pending_drains: set[str] = set()
        #: Barriers waiting for their PONG, by token.
        self.pongs: dict[str, asyncio.Future[None]] = {}

    async def subscribe(self, name: str, wait: bool) -> None:
        if name in self.names and (name in self.confirmed or not wait):
            return
        future: asyncio.Future[None] | None = None
        if wait:
            future = self.state.loop.create_future()
            self.confirmations.setdefault(name, []).append(future)
        new = name not in self.names
        self.names.add(name)
        if self.task is None or self.task.done():
            self.task = self.state.loop.create_task(
                self.run(), name=f"channels_redis pubsub shard {self.index}"
            )
        # The task may be idle, waiting for something to subscribe to.
        self.wakeup.set()
        if new and self.connection is not None:
            # (A connection that failed: the task subscribes everything again.)
            self.connection.write("SUBSCRIBE", name)
        if future is not None:
            if self.failing:
                self._forget(name, future)
                raise RedisConnectionError(
                    f"Redis at {self.spec.address} is unavailable; the subscription is kept "
                    "and restored when it is back"
                )
            timeout = self.spec.options.get("socket_timeout") or 10.0
            try:
                await asyncio.wait_for(asyncio.shield(future), timeout)
            except asyncio.TimeoutError:
                raise RedisConnectionError(
                    f"Redis at {self.spec.address} did not confirm a subscription in {timeout}s"
                ) from None
            finally:
                self._forget(name, future)

    async def barrier(self) -> None:
        """Return once every message Redis published to this process before the call is read.

        A ``PING`` on the subscribed connection is answered in order with
        the messages, so its ``PONG`` comes after all of them. Without a
        connection (an outage) nothing published before can still arrive.
        """
        connection = self.connection
        if connection is None or connection.failure is not None or not self.names:
            return  # (with no subscription nothing arrives)
        token = f"channels_redis.barrier.{os.urandom(8).hex()}"
        future: asyncio.Future[None] = self.state.loop.create_future()
        self.pongs[token] = future
        timeout = self.spec.options.get("socket_timeout") or 10.0
        try:
            connection.write("PING", token)
            # The connection's end answers too: nothing more can arrive.
            await asyncio.wait(
                [future, connection.lost], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            self.pongs.pop(token, None)

    def _forget(self, name: str, future: asyncio.Future[None]) -> None:
        waiting = self.confirmations.get(name)
        if waiting is not None and future in waiting:
            waiting.remove(future)
            if not waiting:
                del self.confirmations[name]

    async def unsubscribe(self, name: str) -> None:
        self.names.discard(name)
        self.confirmed.discard(name)
        if self.connection is not None:
            self.connection.write("UNSUBSCRIBE", name)

    async def stop(self) -> None:
        self.stopped = True
        await stop_task(self.task)
        await stop_task(self.draining)
        self._disconnect()

    def _disconnect(self) -> None:
        connection, self.connection = self.connection, None
        self.confirmed.clear()
        if connection is not None:
            connection.fail(redis.exceptions.ConnectionError("The connection was closed."))

    async def run(self) -> None:
        attempt = 0
        while not self.stopped:
            if not self.names and self.connection is None:
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            try:
                if self.connection is None:
                    await self._connect()
                    attempt = 0
                connection = self.connection
                assert connection is not None
                if self.pending_drains:
                    await self._retry_drains()
                    await asyncio.wait([connection.lost], timeout=self.DRAIN_RETRY)
                else:
                    await asyncio.shield(connection.lost)
                if connection.failure is not None:
                    raise connection.failure
            except (redis.exceptions.RedisError, OSError, ConnectionError) as exc:
                self._disconnect()
                attempt += 1
                if not self.failing:
                    self.failing = True
                    logger.warning(
                        "Lost Redis at %s (%s); resubscribing in the background",
                        self.spec.address,
                        exc,
                    )
                    self._fail_waiting()
                    self.state.announce(self.state.layer.on_disconnect)
                delay = min(self.BACKOFF_MAX, self.BACKOFF_MIN * 2 ** min(attempt, 10))
                await asyncio.sleep(delay * (0.5 + random.random() / 2))

    async def _connect(self) -> None:
        # A connection of the client's own class connects and does the
        # handshake (TLS, AUTH, SELECT, the master a Sentinel names); the
        # subscription then takes its socket over.
        link = await open_link(self.pool)
        connection = _Subscription(self, link.writer)
        link.transport.set_protocol(connection)
        connection.connection_made(link.transport)
        if self.names:  # (all unsubscribed while connecting: nothing to ask for)
            connection.write("SUBSCRIBE", *self.names)
        self.connection = connection
        if self.failing:
            self.failing = False
            logger.warning("Redis at %s is back: subscriptions restored", self.spec.address)
            self.state.announce(self.state.layer.on_reconnect)

    def _fail_waiting(self) -> None:
        for futures in self.confirmations.values():
            for future in futures:
                if not future.done():
                    future.set_exception(RedisConnectionError(f"Lost Redis at {self.spec.address}"))
                    future.exception()  # retrieved: the waiter may have gone

    def handle(self, connection: _Subscription, reply: Any) -> None:
        """One reply of the subscribed *connection*: a message, a confirmation, a PONG."""
        if not isinstance(reply, list):
            # RESP3 answers PING on a subscribed connection with the bare token.
            self._pong(reply)
            return
        kind = reply[0]
        if kind == b"message":
            name = reply[1].decode()
            state = self.state
            queue = state.queue_names.get(name)
            if queue is not None:
                state.deliver_queue(queue, reply[2])
                return
            group = state.group_names.get(name)
            if group is not None:
                state.deliver_group(group, reply[2])
        elif kind == b"subscribe":
            name = reply[1].decode()
            if name not in self.names:
                return
            self.confirmed.add(name)
            queue = self.state.queue_names.get(name)
            if queue is None:
                self._confirm(name)
                return
            # What was sent while nobody listened is read before anything
            # published after the subscription is handed out.
            connection.hold()
            self.draining = self.state.loop.create_task(
                self._drain_then_go_on(connection, queue, name)
            )
        elif kind == b"pong":
            self._pong(reply[1])

    def _pong(self, data: Any) -> None:
        token = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        barrier = self.pongs.get(token)
        if barrier is not None and not barrier.done():
            barrier.set_result(None)

    def _confirm(self, name: str) -> None:
        for future in self.confirmations.get(name, ()):
            if not future.done():
                future.set_result(None)

    async def _drain_then_go_on(self, connection: _Subscription, queue: str, name: str) -> None:
        try:
            await self._drain(queue)
        except redis.exceptions.ResponseError as exc:
            # Not a list (written by hand, or by another program): reading it
            # again would fail again.
            logger.warning("The backlog of %r cannot be read: %s", queue, exc)
        except (redis.exceptions.RedisError, OSError) as exc:
            # The subscription stands; only the backlog read failed.
            logger.debug("Reading the backlog of %r failed (%s); retrying", queue, exc)
            self.pending_drains.add(queue)
            self.wakeup.set()
        finally:
            self.draining = None
        self._confirm(name)
        connection.release()

    async def _retry_drains(self) -> None:
        for queue in list(self.pending_drains):
            try:
                await self._drain(queue)
            except redis.exceptions.ResponseError as exc:
                logger.warning("The backlog of %r cannot be read: %s", queue, exc)
            except (redis.exceptions.RedisError, OSError):
                return
            self.pending_drains.discard(queue)

    async def _drain(self, queue: str) -> None:
        key = self.state.layer._keys.channel_key(queue)
        while True:
            elements: list[bytes] = await DRAIN.run(self.commands, [key], [self.DRAIN_BATCH])
            for element in elements:
                self.state.deliver_queue(queue, element)
            if len(elements) < self.DRAIN_BATCH:
                return
