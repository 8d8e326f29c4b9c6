"""redis-py asyncio clients for the hosts of a layer, and how to close them.

A client belongs to the event loop that made it: the layers make one set per
loop (:mod:`channels_redis.per_loop`). Commands on the hot paths go through
:mod:`channels_redis.link_pool` instead; the rest (a Cluster, Pub/Sub
subscriptions, ``connection()``) through these clients.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import ConnectionPool, SSLConnection
from redis.asyncio.sentinel import Sentinel

from .errors import InvalidConfiguration
from .hosts import HostSpec, SentinelSpec, ServerSpec

if TYPE_CHECKING:
    from .topology import Topology

__all__ = ["Client", "close_client", "make_client", "make_clients"]

Client = Redis | RedisCluster

# Options of a Redis server connection that a Cluster client takes otherwise.
_NOT_FOR_CLUSTER = frozenset({"host", "port", "connection_class", "db", "path"})


def make_clients(topology: Topology) -> list[Client]:
    """New clients for *topology*, for use in the running loop only."""
    if topology.cluster:
        return [_make_cluster(topology.hosts)]
    return [make_client(spec) for spec in topology.hosts]


def make_client(spec: HostSpec) -> Redis:
    """A new client for one server (or Sentinel master), for the running loop only."""
    if isinstance(spec, SentinelSpec):
        # Through Any: redis-py annotates Sentinel from 6 on, not before, and
        # we support both (nox -s typecheck_oldest).
        sentinel_class: Any = Sentinel
        sentinel = sentinel_class(
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
    # Through Any: redis-py 5's annotations call RedisCluster abstract.
    cluster_class: Any = RedisCluster
    cluster: RedisCluster = cluster_class(startup_nodes=nodes, **options)
    return cluster


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
