"""How a layer sends commands to one shard: :class:`Commands`, chosen once per client.

There are two paths to Redis, and which one a shard takes is decided when
its clients are made (:func:`shard_commands`), never per command:

* our pipelined :class:`~channels_redis.link.Link`\\ s, for a plain server
  (:class:`~channels_redis.link_pool.LinkCommands`) or a Sentinel master
  (:class:`~channels_redis.link_pool.SentinelLinkCommands`), where the hot
  paths would otherwise spend most of their time in redis-py's command
  machinery;
* redis-py's own client, for a Redis Cluster (:class:`ClusterCommands`),
  which knows the slots, redirections and nodes.

Every implementation can both run a command and wait for its reply
(:meth:`Commands.execute`) and write one now, handing back the future of its
raw reply (:meth:`Commands.start`), or hand it to a function as it is read
(:meth:`Commands.start_then`): the batching writers use the latter, so that
a lone send costs no task and no extra turn of the event loop where the path
allows it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionLost
from redis.exceptions import TimeoutError as RedisTimeout

from .errors import Unanswered, unanswered
from .link import OnReply
from .link_pool import LinkCommands, SentinelLinkCommands, ServerEvents, reply_to
from .redis_clients import Client

__all__ = ["ClusterCommands", "Commands", "RedisPyCommands", "shard_commands"]


class Commands(Protocol):
    """Commands to one shard's Redis (a server, a Sentinel master, or a Cluster)."""

    async def execute(self, *args: Any) -> Any:
        """Send one command and return its reply: ``await execute("GET", "key")``.

        Raises redis-py's exceptions; a connection that failed after the
        command was written raises one marked
        :class:`~channels_redis.errors.Unanswered`.
        """

    async def execute_at(self, key: str, *args: Any) -> Any:
        """:meth:`execute` on the node that holds *key* (the same server but in a Cluster)."""

    def start(self, *args: Any) -> asyncio.Future[Any]:
        """Send one command as soon as possible; the future of its reply.

        Written at once when the path allows it (no task, no extra turn of the
        event loop). An error reply is the future's redis-py exception.
        """

    def start_then(self, on_reply: OnReply, *args: Any) -> asyncio.Task[Any] | None:
        """Send one command as soon as possible; ``on_reply(reply, failure)`` gets its answer.

        Called once: with the reply and ``None``, or ``None`` and the
        exception (an error reply's redis-py exception, a failure, or
        ``CancelledError``). Where the path writes at once, *on_reply* runs
        as the reply is read, and this returns ``None``; otherwise it returns
        the task that sends the command, which the caller may cancel.
        """

    async def aclose(self) -> None:
        """Close the connections of this path (the redis-py client is closed apart)."""


class RedisPyCommands:
    """Commands through redis-py's asyncio client for one server.

    Not used by the layers on their own: :func:`shard_commands` gives it to
    plain servers only when asked (``bench/redis_layer.py --client redis-py``
    measures it against our link).
    """

    def __init__(self, client: Redis | RedisCluster) -> None:
        self.client = client

    async def execute(self, *args: Any) -> Any:
        try:
            return await self.client.execute_command(*args)
        except (RedisConnectionLost, RedisTimeout) as exc:
            # redis-py does not say whether the command had been written
            # when the connection failed: it may have been applied.
            if isinstance(exc, Unanswered):
                raise
            raise unanswered(exc) from exc

    async def execute_at(self, key: str, *args: Any) -> Any:
        return await self.execute(*args)

    def start(self, *args: Any) -> asyncio.Future[Any]:
        return asyncio.ensure_future(self.execute(*args))

    def start_then(self, on_reply: OnReply, *args: Any) -> asyncio.Task[Any] | None:
        return reply_to(on_reply, self.execute(*args))

    async def aclose(self) -> None:
        pass  # the client is closed with the others (close_client)


class ClusterCommands(RedisPyCommands):
    """Commands through redis-py's Cluster client, which routes each by its keys."""

    client: RedisCluster

    def __init__(self, client: RedisCluster) -> None:
        super().__init__(client)

    async def execute_at(self, key: str, *args: Any) -> Any:
        # redis-py would ask a node where a blocking command's key is
        # (COMMAND GETKEYS) on every call; the key's node is known here.
        client = self.client
        await client.initialize()
        return await client.execute_command(*args, target_nodes=client.get_node_from_key(key))


def shard_commands(
    client: Client, events: ServerEvents | None = None, *, link: bool = True
) -> Commands:
    """The path of *client*'s commands: our link for a server, redis-py's client for a Cluster.

    *events* hears of a server's lost connections and restarts (our link
    only); ``link=False`` sends a server's commands through redis-py too.
    """
    if isinstance(client, RedisCluster):
        return ClusterCommands(client)
    if not link:
        return RedisPyCommands(client)
    if isinstance(client.connection_pool, SentinelConnectionPool):
        return SentinelLinkCommands(client, events)
    return LinkCommands(client, events)
