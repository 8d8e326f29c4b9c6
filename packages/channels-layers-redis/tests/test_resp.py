"""RESP2 packing and parsing, without sockets."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.exceptions import NoScriptError, ReadOnlyError, ResponseError

from channels_redis.resp import NOTHING, ProtocolError, Push, ReplyParser, pack_command


def encode(value: Any) -> bytes:
    """The server's side: a reply in RESP2 (what the parser must read back)."""
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, bytes):
        return b"$%d\r\n%b\r\n" % (len(value), value)
    return b"*%d\r\n" % len(value) + b"".join(encode(item) for item in value)


replies = st.recursive(
    st.none() | st.integers(-(2**63), 2**63 - 1) | st.binary(max_size=300),
    lambda children: st.lists(children, max_size=6),
    max_leaves=30,
)


def parse_all(parser: ReplyParser) -> list[Any]:
    found = []
    while (reply := parser.next()) is not NOTHING:
        found.append(reply)
    return found


def test_pack_command() -> None:
    assert pack_command(["SET", b"k\r\n", 12, 1.5]) == (
        b"*4\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$2\r\n12\r\n$3\r\n1.5\r\n"
    )
    assert pack_command(["ECHO", "é"]) == b"*2\r\n$4\r\nECHO\r\n$2\r\n\xc3\xa9\r\n"
    with pytest.raises(TypeError, match="cannot send dict"):
        pack_command(["SET", {}])


@given(st.lists(replies, max_size=8), st.data())
def test_replies_come_back_whole_however_the_bytes_are_split(
    values: list[Any], data: st.DataObject
) -> None:
    stream = b"".join(encode(value) for value in values)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    parser = ReplyParser()
    found: list[Any] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        parser.feed(stream[start:cut])
        start = cut
        found += parse_all(parser)
    assert found == values


def test_simple_strings_errors_and_nulls() -> None:
    parser = ReplyParser()
    parser.feed(b"+OK\r\n*-1\r\n-NOSCRIPT No matching script.\r\n-ERR unknown command 'X'\r\n")
    parser.feed(b"-READONLY You can't write against a read only replica.\r\n")
    ok, null_array, noscript, generic, readonly = parse_all(parser)
    assert ok == b"OK"
    assert null_array is None
    assert isinstance(noscript, NoScriptError)
    assert str(noscript) == "No matching script."
    assert type(generic) is ResponseError
    assert str(generic) == "unknown command 'X'"
    assert isinstance(readonly, ReadOnlyError)


def test_resp3_types() -> None:
    parser = ReplyParser()
    parser.feed(b"%2\r\n+a\r\n:1\r\n$1\r\nb\r\n_\r\n~2\r\n#t\r\n#f\r\n,1.5\r\n")
    parser.feed(b"(123456789012345678901234567890\r\n=9\r\ntxt:hello\r\n!9\r\nERR oops!\r\n")
    parser.feed(b">2\r\n+invalidate\r\n*0\r\n|1\r\n+ttl\r\n:3\r\n+after\r\n")
    found = parse_all(parser)
    assert found[:5] == [
        {b"a": 1, b"b": None},
        [True, False],
        1.5,
        123456789012345678901234567890,
        b"hello",
    ]
    assert isinstance(found[5], ResponseError)
    assert str(found[5]) == "oops!"
    assert isinstance(found[6], Push)
    assert found[6] == [b"invalidate", []]
    assert found[7] == b"after"  # an attribute is skipped


def test_a_large_reply_in_small_pieces_is_not_parsed_again_each_time() -> None:
    payload = b"x" * 1_000_000
    stream = encode([payload, 7])
    parser = ReplyParser()
    for start in range(0, len(stream) - 1, 4096):
        parser.feed(stream[start : start + 4096])
        if start + 4096 < len(stream):
            assert parser.next() is NOTHING
    assert parse_all(parser) == [[payload, 7]]


@pytest.mark.parametrize("garbage", [b"?what\r\n", b"$abc\r\n", b":12x\r\n", b"*z\r\n"])
def test_bytes_that_are_not_resp_raise(garbage: bytes) -> None:
    parser = ReplyParser()
    parser.feed(garbage)
    with pytest.raises(ProtocolError):
        parser.next()
