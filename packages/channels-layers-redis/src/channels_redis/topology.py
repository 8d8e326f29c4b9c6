"""Where the layer's data lives: :class:`Topology` and :class:`Shard`.

Whether ``hosts`` is a list of independent servers (shards) or the nodes of
one Redis Cluster is asked of the first host once per layer
(``INFO cluster``), unless the host entry says ``"cluster": True/False``.
The answer is the same in every event loop, so the layer keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.connection import ConnectionPool

from .errors import InvalidConfiguration, map_redis_errors
from .hosts import HostSpec, ServerSpec
from .redis_clients import close_client
from .sharding import bucket_hash_tags
from .wire import KeySpace

__all__ = ["CLUSTER_BUCKETS", "Shard", "Topology", "detect_topology"]

#: Hash-tag buckets a Cluster's keys are spread over. More buckets spread
#: the data more evenly over more nodes; each group_send runs one small
#: script per bucket (batched into one round trip per node).
CLUSTER_BUCKETS = 16


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
