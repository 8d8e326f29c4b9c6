"""channels._cache.BoundedCache: the bounded memo the hot paths of every package share."""

from __future__ import annotations

import pytest

from channels._cache import BoundedCache


def test_a_full_cache_forgets_its_oldest_entry_and_keeps_the_rest() -> None:
    cache: BoundedCache[str, int] = BoundedCache(3)
    for index, key in enumerate("abcd"):
        assert cache.put(key, index) == index
    assert dict(cache) == {"b": 1, "c": 2, "d": 3}


def test_storing_a_key_again_replaces_its_value_and_evicts_nothing() -> None:
    cache: BoundedCache[str, int] = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)
    assert dict(cache) == {"a": 10, "b": 2}


def test_endless_distinct_keys_cost_at_most_size_entries() -> None:
    # What a peer that never repeats a header or channel name can make us keep.
    cache: BoundedCache[int, int] = BoundedCache(100)
    for key in range(100_000):
        cache.put(key, key)
    assert len(cache) == 100
    assert cache.get(99_999) == 99_999
    assert cache.get(0) is None


def test_a_cache_of_no_entries_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one entry, not 0"):
        BoundedCache(0)
