"""permessage-deflate (RFC 7692) in the sans-IO engine: negotiation, both directions, limits.

The client side is wsproto's own extension (``wsproto.extensions.PerMessageDeflate``
on a client ``Connection``), or frames built here with zlib where a client
would not send them.
"""

from __future__ import annotations

import gc
import importlib
import random
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, Ping, TextMessage
from wsproto.extensions import PerMessageDeflate

from channels_server.errors import ApplicationError
from channels_server.protocol.deflate import (
    COMPRESS_MIN_SIZE,
    DeflateAgreement,
    compress_message,
    negotiate_deflate,
    parse_extensions,
)
from channels_server.protocol.http11 import HTTP11Connection, RequestHead
from channels_server.protocol.websocket import (
    FRAGMENT_COST,
    MESSAGE_TOO_BIG,
    ConnectionFailed,
    Handshake,
    WebSocketConnection,
    accept_response,
    validate_handshake,
)

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
ANSWER = b"permessage-deflate; server_no_context_takeover; client_no_context_takeover"


# -- Sec-WebSocket-Extensions syntax -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (b"permessage-deflate", [("permessage-deflate", [])]),
        (
            b"permessage-deflate; client_max_window_bits, x-webkit-deflate-frame",
            [
                ("permessage-deflate", [("client_max_window_bits", None)]),
                ("x-webkit-deflate-frame", []),
            ],
        ),
        (
            b'Permessage-Deflate ;Server_Max_Window_Bits = "10" ; a=b',
            [("permessage-deflate", [("server_max_window_bits", "10"), ("a", "b")])],
        ),
        # Empty list elements and a quoted pair (RFC 9110 §5.6.1, §5.6.4).
        (b' , foo; x="a\\"b",, bar ,', [("foo", [("x", 'a"b')]), ("bar", [])]),
        (b"", []),
    ],
)
def test_extension_lists_parse(value: bytes, parsed: object) -> None:
    assert parse_extensions(value) == parsed


@pytest.mark.parametrize(
    "value",
    [
        b";",
        b"permessage-deflate;",
        b"permessage-deflate; =10",
        b"permessage-deflate; a=",
        b"permessage-deflate; a==1",
        b"permessage-deflate a",
        b'permessage-deflate; a="unterminated',
        b"permessage-deflate; a=\x01",
        b'"quoted"; a',
        b"permessage-deflate; a=1 b",
        b"permessage-deflate; [x]",
    ],
)
def test_malformed_extension_lists_give_none(value: bytes) -> None:
    assert parse_extensions(value) is None
    assert negotiate_deflate(value) is None


# -- negotiation (RFC 7692 §7.1) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("offer", "answer", "window"),
    [
        (b"permessage-deflate", ANSWER, 15),
        # What browsers send.
        (b"permessage-deflate; client_max_window_bits", ANSWER, 15),
        (b"permessage-deflate; client_max_window_bits=9", ANSWER, 15),
        (b"permessage-deflate; server_no_context_takeover", ANSWER, 15),
        (b"permessage-deflate; client_no_context_takeover", ANSWER, 15),
        (
            b"permessage-deflate; server_max_window_bits=10",
            ANSWER + b"; server_max_window_bits=10",
            10,
        ),
        (
            b'permessage-deflate; server_max_window_bits="12"',
            ANSWER + b"; server_max_window_bits=12",
            12,
        ),
        (
            b"permessage-deflate; server_max_window_bits=8",
            ANSWER + b"; server_max_window_bits=8",
            8,
        ),
        # Several alternatives: the first the server can honour wins.
        (
            b"permessage-deflate; server_max_window_bits=16, "
            b"permessage-deflate; server_max_window_bits=11; client_max_window_bits, "
            b"permessage-deflate",
            ANSWER + b"; server_max_window_bits=11",
            11,
        ),
        (b"x-webkit-deflate-frame, permessage-deflate", ANSWER, 15),
    ],
)
def test_offers_the_server_accepts(offer: bytes, answer: bytes, window: int) -> None:
    agreement = negotiate_deflate(offer)
    assert agreement is not None
    assert agreement.response == answer
    assert agreement.server_window_bits == window


@pytest.mark.parametrize(
    "offer",
    [
        b"x-webkit-deflate-frame",
        b"permessage-deflate; server_max_window_bits",  # needs a value
        b"permessage-deflate; server_max_window_bits=16",
        b"permessage-deflate; server_max_window_bits=7",
        b"permessage-deflate; server_max_window_bits=010",
        b"permessage-deflate; client_max_window_bits=16",
        b"permessage-deflate; server_no_context_takeover=1",
        b"permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        b"permessage-deflate; unknown_parameter",
    ],
)
def test_offers_the_server_declines(offer: bytes) -> None:
    # RFC 7692 §7: unknown or repeated parameters and bad values decline the offer.
    assert negotiate_deflate(offer) is None


def _request(*lines: bytes) -> RequestHead:
    engine = HTTP11Connection()
    engine.receive_data(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: "
        + KEY
        + b"\r\nSec-WebSocket-Version: 13\r\n"
        + b"".join(line + b"\r\n" for line in lines)
        + b"\r\n"
    )
    event = engine.next_event()
    assert isinstance(event, RequestHead)
    return event


def test_the_handshake_keeps_every_extensions_header() -> None:
    handshake = validate_handshake(
        _request(
            b"Sec-WebSocket-Extensions: x-foo",
            b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9",
        )
    )
    assert handshake.extensions == b"x-foo, permessage-deflate; server_max_window_bits=9"
    assert validate_handshake(_request()).extensions == b""


def test_the_101_names_the_agreement() -> None:
    agreement = negotiate_deflate(b"permessage-deflate")
    assert agreement is not None
    data = accept_response(Handshake(KEY, []), None, [], b"", agreement.response)
    assert b"\r\nsec-websocket-extensions: " + ANSWER + b"\r\n" in data
    assert b"sec-websocket-extensions" not in accept_response(Handshake(KEY, []), None, [])


@pytest.mark.parametrize("name", [b"sec-websocket-extensions", b"Sec-WebSocket-Extensions"])
def test_an_application_cannot_set_the_extensions_header(name: bytes) -> None:
    with pytest.raises(ApplicationError, match="sec-websocket-extensions"):
        accept_response(Handshake(KEY, []), None, [(name, b"permessage-deflate")])


# -- what the server sends ----------------------------------------------------------------------


def test_compressed_messages_inflate_alone_and_alike() -> None:
    # No context taken over: each message inflates with a fresh decompressor,
    # and comes out the same whatever the shared compressor did before (what
    # one socket sends cannot depend on another's messages).
    first = b'{"user": "alice", "text": "a secret shared by nobody"}' * 20
    second = b'{"user": "bob", "text": "a secret shared by nobody else"}' * 20
    alone = compress_message(second, 15)
    compress_message(first, 15)
    after = compress_message(second, 15)
    assert alone is not None
    assert alone == after
    assert len(alone) < len(second) // 4
    assert zlib.decompressobj(-15).decompress(after + b"\x00\x00\xff\xff") == second


@pytest.mark.parametrize("bits", [8, 9, 12, 15])
def test_compressed_messages_fit_the_window_the_client_asked_for(bits: int) -> None:
    data = bytes(range(256)) * 64 + b"hello world " * 500
    compressed = compress_message(data, bits)
    assert compressed is not None
    assert len(compressed) < len(data)
    # zlib refuses to inflate a distance beyond its window.
    assert zlib.decompressobj(-bits).decompress(compressed + b"\x00\x00\xff\xff") == data


def test_incompressible_messages_go_as_they_are() -> None:
    noise = random.Random(0).randbytes(2000)
    assert compress_message(noise, 15) is None


def _client(agreement: DeflateAgreement) -> Connection:
    extension = PerMessageDeflate()
    extension.finalize(agreement.response.decode())
    return Connection(ConnectionType.CLIENT, extensions=[extension])


def _pair(
    max_message_size: int = 1 << 20, max_frame_size: int = 1 << 20, max_fragments: int = 4096
) -> tuple[Connection, WebSocketConnection]:
    agreement = negotiate_deflate(b"permessage-deflate")
    assert agreement is not None
    server = WebSocketConnection(max_message_size, max_frame_size, max_fragments, agreement)
    return _client(agreement), server


def test_messages_round_trip_compressed() -> None:
    client, server = _pair()
    text = "ünïcode and more " * 100
    data = bytes(range(256)) * 40
    events, reply = server.receive_data(
        client.send(TextMessage(data=text)) + client.send(BytesMessage(data=data))
    )
    assert (events, reply) == ([text, data], b"")
    for frame, expected in ((server.send_text(text), text), (server.send_bytes(data), data)):
        assert frame[0] & 0x40, "RSV1: compressed"
        assert len(frame) < len(text) // 4
        client.receive_data(frame)
        (event,) = client.events()
        assert event.data == expected


def test_short_messages_are_sent_uncompressed() -> None:
    client, server = _pair()
    for text in ("", "x" * (COMPRESS_MIN_SIZE - 1)):
        frame = server.send_text(text)
        assert frame[0] == 0x81
        client.receive_data(frame)
        (event,) = client.events()
        assert event.data == text
    # A client may send uncompressed messages too (RFC 7692 §6).
    events, _ = server.receive_data(_masked(0x82, b"plain"))
    assert events == [b"plain"]


def test_an_engine_without_the_agreement_sends_plain_frames() -> None:
    engine = WebSocketConnection(1 << 20, 1 << 20)
    assert engine.send_text("x" * 1000)[0] == 0x81
    # RSV1 on a socket that did not negotiate it is a protocol error (RFC 6455 §5.2).
    events, _ = engine.receive_data(_masked(0xC1, _deflate(b"x" * 1000)))
    assert isinstance(events[0], ConnectionFailed)
    assert events[0].code == 1002


# -- what the client sends ---------------------------------------------------------------------


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


# conftest.py has loaded the support package under this name.
_masked = importlib.import_module("channels_server_test_support.frames").client_frame


def test_a_compression_bomb_fails_with_1009_and_stays_small() -> None:
    # 64 MiB of zeros deflate to about 64 KiB; the limit is 1 MiB.
    bomb = _deflate(bytes(64 << 20))
    assert len(bomb) < 100_000
    frame = _masked(0xC2, bomb)
    _, server = _pair(max_message_size=1 << 20, max_frame_size=64 << 20)
    gc.collect()
    tracemalloc.start()
    try:
        events, reply = server.receive_data(frame)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    (event,) = events
    assert isinstance(event, ConnectionFailed)
    assert (event.code, event.reason) == (MESSAGE_TOO_BIG, f"message over {1 << 20} bytes")
    assert reply[0] == 0x88
    assert reply[2:4] == b"\x03\xf1"
    # The frame itself, the 1 MiB allowed and zlib's state: not 64 MiB.
    assert peak < len(frame) * 3 + (3 << 20)


def test_a_bomb_split_in_chunks_and_fragments_fails_too() -> None:
    bomb = _deflate(bytes(8 << 20))
    fragments = [bomb[i : i + 1000] for i in range(0, len(bomb), 1000)]
    frames = [_masked(0x42, fragments[0])]
    frames += [_masked(0x00, piece) for piece in fragments[1:-1]]
    frames.append(_masked(0x80, fragments[-1]))
    _, server = _pair(max_message_size=1 << 20, max_frame_size=1 << 20)
    events: list[object] = []
    data = b"".join(frames)
    for start in range(0, len(data), 512):
        found, _ = server.receive_data(data[start : start + 512])
        events += found
        if found:
            break
    (event,) = events
    assert isinstance(event, ConnectionFailed)
    assert event.code == MESSAGE_TOO_BIG


@pytest.mark.parametrize("size", [1000, 1001])
def test_the_limit_counts_inflated_bytes(size: int) -> None:
    _, server = _pair(max_message_size=1000, max_frame_size=1000)
    events, _ = server.receive_data(_masked(0xC2, _deflate(b"a" * size)))
    if size <= 1000:
        assert events == [b"a" * size]
    else:
        assert isinstance(events[0], ConnectionFailed)
        assert events[0].code == MESSAGE_TOO_BIG


def _compressed_fragments(data: bytes, count: int) -> bytes:
    compressed = _deflate(data)
    step = max(1, len(compressed) // count)
    pieces = [compressed[i : i + step] for i in range(0, step * (count - 1), step)]
    pieces.append(compressed[step * (count - 1) :])
    frames = [_masked(0x41, pieces[0])]
    frames += [_masked(0x00, piece) for piece in pieces[1:-1]]
    frames.append(_masked(0x80, pieces[-1]))
    return b"".join(frames)


def test_fragments_of_a_compressed_message_still_cost() -> None:
    text = "fragmented " * 200
    _, server = _pair(max_fragments=10)
    assert server.receive_data(_compressed_fragments(text.encode(), 9))[0] == [text]
    _, server = _pair(max_fragments=10)
    (event,) = server.receive_data(_compressed_fragments(text.encode(), 11))[0]
    assert isinstance(event, ConnectionFailed)
    assert event.code == MESSAGE_TOO_BIG
    # Each fragment but the last counts FRAGMENT_COST toward the message limit.
    limit = len(text) + 4 * FRAGMENT_COST
    _, server = _pair(max_message_size=limit)
    assert server.receive_data(_compressed_fragments(text.encode(), 5))[0] == [text]
    _, server = _pair(max_message_size=limit)
    (event,) = server.receive_data(_compressed_fragments(text.encode(), 6))[0]
    assert isinstance(event, ConnectionFailed)
    assert event.code == MESSAGE_TOO_BIG


def test_a_ping_between_compressed_fragments_leaves_the_message_whole() -> None:
    text = "between the fragments " * 50
    compressed = _deflate(text.encode())
    half = len(compressed) // 2
    client, server = _pair()
    frames = (
        _masked(0x41, compressed[:half])
        + _masked(0x89, b"ping")
        + _masked(0x80, compressed[half:])
        + _masked(0xC1, _deflate(b"next message " * 20))
    )
    events, reply = server.receive_data(frames)
    assert events == [text, "next message " * 20]
    client.receive_data(reply)
    assert [type(event).__name__ for event in client.events()] == ["Pong"]


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        (lambda: _masked(0xC9, b""), 1002),  # RSV1 on a ping
        (
            lambda: _masked(0x41, _deflate(b"ab")) + _masked(0xC0, b"\x00"),
            1002,
        ),  # on a continuation
        (lambda: _masked(0xC1, b"\xff\xff\xff\xff"), 1007),  # not deflate
        (lambda: _masked(0xC1, _deflate(b"\xff\xfe")), 1007),  # inflates to invalid UTF-8
    ],
)
def test_broken_compressed_frames_fail_with_the_rfc_codes(frames: object, code: int) -> None:
    _, server = _pair()
    events, _ = server.receive_data(frames())  # type: ignore[operator]
    assert isinstance(events[-1], ConnectionFailed)
    assert events[-1].code == code


def test_a_final_block_ends_the_message() -> None:
    # A client may end a message with BFINAL (RFC 7692 §7.2.3.3); what follows
    # in the same message is not kept.
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    payload = compressor.compress(b"final " * 30) + compressor.flush(zlib.Z_FINISH)
    _, server = _pair()
    events, _ = server.receive_data(_masked(0x41, payload) + _masked(0x80, b"\x00" * 5000))
    assert events == ["final " * 30]


def test_engines_keep_no_zlib_state_between_messages() -> None:
    # A decompressor with its 32 KiB window would be about 40 KiB per socket.
    agreement = negotiate_deflate(b"permessage-deflate")
    assert agreement is not None
    message = _masked(0xC1, _deflate(b"hello " * 1000))
    reply = "answer " * 1000
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        engines = [WebSocketConnection(1 << 20, 1 << 20, 4096, agreement) for _ in range(50)]
        for engine in engines:
            assert engine.receive_data(message)[0] == ["hello " * 1000]
            engine.send_text(reply)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown / len(engines) < 4096


def test_wsproto_client_pings_and_closes_on_a_compressed_socket() -> None:
    client, server = _pair()
    events, reply = server.receive_data(client.send(Ping(b"x")))
    assert events == []
    client.receive_data(reply)
    (pong,) = client.events()
    assert pong.payload == b"x"


# -- whatever arrives -----------------------------------------------------------------------------


@given(st.binary(max_size=200) | st.text(alphabet=' ;,="\\\tpermsgdflatx_1590', max_size=80))
def test_any_extensions_header_negotiates_or_not_without_raising(value: bytes | str) -> None:
    header = value if isinstance(value, bytes) else value.encode()
    parsed = parse_extensions(header)
    assert parsed is None or isinstance(parsed, list)
    agreement = negotiate_deflate(header)
    assert agreement is None or agreement.response.startswith(b"permessage-deflate")


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0x00, 0x01, 0x02, 0x09, 0x41, 0x42, 0x80, 0x81, 0xC1, 0xC2, 0xC0]),
            st.binary(max_size=300) | st.builds(_deflate, st.binary(max_size=3000)),
        ),
        max_size=6,
    ),
    st.integers(min_value=1, max_value=64),
)
def test_any_frames_on_a_compressed_socket_give_events_not_exceptions(
    frames: list[tuple[int, bytes]], chunk: int
) -> None:
    _, server = _pair(max_message_size=2000, max_frame_size=2000, max_fragments=4)
    data = b"".join(_masked(first, payload) for first, payload in frames)
    for start in range(0, len(data), chunk):
        events, _ = server.receive_data(data[start : start + chunk])
        for event in events:
            assert isinstance(event, (str, bytes, ConnectionFailed))
