"""The consistent hash that places channels on shards (no Redis needed)."""

from __future__ import annotations

import collections

import pytest
from redis.crc import key_slot

from channels_redis.sharding import CLUSTER_SLOTS, bucket_hash_tags, jump_hash, shard_index


def test_shard_index_is_stable_and_in_range() -> None:
    names = [f"channel.{number}" for number in range(2000)]
    first = [shard_index(name, 5) for name in names]
    assert first == [shard_index(name, 5) for name in names]
    assert set(first) == {0, 1, 2, 3, 4}
    counts = collections.Counter(first)
    assert min(counts.values()) > 300, counts


def test_known_values_do_not_change_between_releases() -> None:
    # Processes of different versions must agree on where a channel lives:
    # these values are part of the storage format.
    names = ("chat", "specific.ab12!", "a", "room-1", "x" * 50)
    assert [shard_index(name, 3) for name in names] == [2, 0, 0, 1, 0]
    assert [shard_index(name, 16) for name in names] == [8, 0, 11, 10, 14]


def test_jump_hash_matches_the_reference_implementation() -> None:
    # Values computed with the C code of Lamping and Veach's paper.
    assert [jump_hash(key, 10) for key in (0, 1, 2**63, 2**64 - 1)] == [0, 6, 5, 9]
    key = 12345678901234567
    assert [jump_hash(key, buckets) for buckets in (1, 2, 3, 10, 1000)] == [0, 0, 0, 5, 368]


def test_adding_a_shard_moves_few_names() -> None:
    names = [f"group.member.{number}" for number in range(3000)]
    moved = sum(shard_index(name, 4) != shard_index(name, 5) for name in names)
    # A consistent hash moves about 1/5 of the names; a modulo would move 4/5.
    assert moved < 3000 * 0.3, moved
    # And a name only ever moves to the new shard.
    assert all(shard_index(name, 5) in (shard_index(name, 4), 4) for name in names)


def test_one_shard() -> None:
    assert shard_index("anything", 1) == 0


def test_jump_hash_needs_buckets() -> None:
    with pytest.raises(ValueError):
        jump_hash(1, 0)


@pytest.mark.parametrize("buckets", [1, 3, 16, 64])
def test_bucket_hash_tags_spread_over_the_slots(buckets: int) -> None:
    tags = bucket_hash_tags(buckets)
    assert len(tags) == len(set(tags)) == buckets
    width = CLUSTER_SLOTS / buckets
    for index, tag in enumerate(tags):
        slot = key_slot(f"asgi:{{{tag}}}:ch:x".encode())
        assert slot == key_slot(tag.encode())
        assert index * width <= slot < (index + 1) * width
