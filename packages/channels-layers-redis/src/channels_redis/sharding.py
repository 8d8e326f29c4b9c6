"""Which shard holds a channel: a consistent hash of its name.

Every process must map a name to the same shard, so the hash is a stable
digest (BLAKE2b), never Python's per-process ``hash()``. The shard is chosen
with the jump consistent hash of Lamping and Veach ("A Fast, Minimal Memory,
Consistent Hash Algorithm", 2014): growing the host list from *n* to *n + 1*
shards moves only about ``1 / (n + 1)`` of the names, where a plain modulo
would move almost all of them.

In a Redis Cluster the "shards" are hash-tag buckets: keys of one bucket
share a hash tag, hence one hash slot, so that one Lua script may touch all of
them (Redis refuses scripts whose keys span slots). The tags are chosen so
that the buckets' slots are spread evenly over the 16384 slots, which Redis
assigns to the nodes in contiguous ranges.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from redis.crc import key_slot

__all__ = ["CLUSTER_SLOTS", "bucket_hash_tags", "jump_hash", "name_hash", "shard_index"]

CLUSTER_SLOTS = 16384


def name_hash(name: str) -> int:
    """A 64-bit digest of *name* that is the same in every process."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def jump_hash(key: int, buckets: int) -> int:
    """The bucket in ``range(buckets)`` of the 64-bit *key* (jump consistent hash)."""
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, not {buckets!r}")
    bucket, jump = -1, 0
    while jump < buckets:
        bucket = jump
        key = (key * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        jump = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


@lru_cache(maxsize=65536)
def shard_index(name: str, shards: int) -> int:
    """The shard of *name* among *shards* (cached: names repeat constantly)."""
    if shards == 1:
        return 0
    return jump_hash(name_hash(name), shards)


@lru_cache(maxsize=8)
def bucket_hash_tags(buckets: int) -> tuple[str, ...]:
    """One hash tag per bucket, the *i*-th landing in the *i*-th slice of slots.

    The tags are the shortest decimal strings whose CRC16 slot falls in each
    slice, found by counting up: deterministic, so every process agrees.
    """
    if not 1 <= buckets <= CLUSTER_SLOTS:
        raise ValueError(f"buckets must be between 1 and {CLUSTER_SLOTS}, not {buckets!r}")
    width = CLUSTER_SLOTS / buckets
    tags: list[str | None] = [None] * buckets
    missing = buckets
    candidate = 0
    while missing:
        tag = str(candidate)
        slice_index = int(key_slot(tag.encode()) // width)
        if tags[slice_index] is None:
            tags[slice_index] = tag
            missing -= 1
        candidate += 1
    return tuple(tag for tag in tags if tag is not None)
