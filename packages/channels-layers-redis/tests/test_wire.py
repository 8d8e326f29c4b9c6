"""The layout of messages and keys in Redis (no Redis needed)."""

from __future__ import annotations

import pytest

from channels_redis.wire import (
    CAPACITY_LIMIT,
    KeySpace,
    expired_score,
    member_score,
    pack_element,
    queue_name,
    unpack_element,
)


def test_elements_round_trip() -> None:
    element = pack_element(1700000000123, None, b"payload\nwith newline")
    assert element == b"1700000000123:\npayload\nwith newline"
    assert unpack_element(element) == (1700000000123, None, b"payload\nwith newline")
    element = pack_element(5, "specific.ab__1!x", b"\x00")
    assert unpack_element(element) == (5, ["specific.ab__1!x"], b"\x00")
    assert unpack_element(b"7:!a.b__1!x,a.b__2!y\n") == (7, ["a.b__1!x", "a.b__2!y"], b"")


@pytest.mark.parametrize("bad", [b"no header", b"12\npayload", b"x:\n", b"1:?what\n"])
def test_bad_elements(bad: bytes) -> None:
    with pytest.raises(ValueError):
        unpack_element(bad)


def test_queue_names() -> None:
    assert queue_name("chat.room") == "chat.room"
    assert queue_name("single?reader") == "single?reader"
    # Names made by new_channel() share their process's queue ...
    assert queue_name("specific.0a1b2c__17!f00") == "specific.0a1b2c!"
    assert queue_name("conformance.custom.0a1b2c__3!x") == "conformance.custom.0a1b2c!"
    # ... any other process-specific name is a queue of its own.
    assert queue_name("daphne.response.X__1!abc") == "daphne.response.X__1!"
    assert queue_name("elsewhere.process!local") == "elsewhere.process!"
    assert queue_name("nodot__3!x") == "nodot__3!"


def test_key_space() -> None:
    assert KeySpace("asgi").channel_key("chat") == "asgi:ch:chat"
    tagged = KeySpace("asgi", "42")
    assert tagged.channel_key("chat") == "asgi:{42}:ch:chat"
    assert tagged.count_key("p!") == "asgi:{42}:cnt:p!"
    assert tagged.group_key("room") == "asgi:{42}:gr:room"


def test_key_space_names_the_pubsub_channels_and_the_flush_pattern() -> None:
    keys = KeySpace("asgi")
    assert keys.publish_name("chat") == "asgi:pub:chat"
    assert keys.group_publish_name("room") == "asgi:pubgr:room"
    # Every shard's keys, tagged or not; glob characters of the prefix are literal.
    assert KeySpace("asgi", "42").scan_pattern == "asgi:*"
    assert KeySpace("a*b?[c]\\d").scan_pattern == "a\\*b\\?\\[c\\]\\\\d:*"


def test_member_scores_order_by_time_and_carry_the_capacity() -> None:
    now = 1_800_000_000.7
    score = member_score(now, 100)
    assert score % 2**21 == 100
    assert member_score(now + 1, 1) > member_score(now, CAPACITY_LIMIT)
    assert member_score(now, 10**9) % 2**21 == CAPACITY_LIMIT
    # Exactly representable as a double, as Redis stores it.
    assert float(score) == score
    assert expired_score(now, 60) <= member_score(now - 60, 1)
    assert expired_score(now, 60) > member_score(now - 61, CAPACITY_LIMIT)
