"""The sans-IO WebSocket engine and handshake: no sockets, no event loop."""

from __future__ import annotations

import base64
import hashlib
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    TextMessage,
)

from channels_server.errors import ApplicationError, HTTPProtocolError
from channels_server.protocol.http11 import HTTP11Connection, RequestHead
from channels_server.protocol.websocket import (
    CloseReceived,
    ConnectionFailed,
    Handshake,
    WebSocketConnection,
    accept_response,
    validate_close_code,
    validate_handshake,
)

fixtures = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def head(*extra: bytes, method: bytes = b"GET", version: bytes = b"1.1") -> RequestHead:
    engine = HTTP11Connection()
    engine.receive_data(
        method
        + b" /ws HTTP/"
        + version
        + b"\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + b"".join(line + b"\r\n" for line in extra)
        + b"\r\n"
    )
    event = engine.next_event()
    assert isinstance(event, RequestHead)
    return event


def valid_head(*extra: bytes) -> RequestHead:
    return head(b"Sec-WebSocket-Key: " + KEY, b"Sec-WebSocket-Version: 13", *extra)


# -- the handshake -------------------------------------------------------------------------------


def test_valid_handshake() -> None:
    handshake = validate_handshake(
        valid_head(b"Sec-WebSocket-Protocol: chat, superchat", b"Sec-WebSocket-Protocol: v2")
    )
    assert handshake.key == KEY
    assert handshake.subprotocols == ["chat", "superchat", "v2"]


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        (lambda: head(b"Sec-WebSocket-Key: " + KEY, b"Sec-WebSocket-Version: 8"), 426),
        (lambda: head(b"Sec-WebSocket-Key: " + KEY), 426),
        (lambda: head(b"Sec-WebSocket-Version: 13"), 400),
        (lambda: head(b"Sec-WebSocket-Key: not base64!", b"Sec-WebSocket-Version: 13"), 400),
        (lambda: head(b"Sec-WebSocket-Key: YWJj", b"Sec-WebSocket-Version: 13"), 400),
        (
            lambda: head(
                b"Sec-WebSocket-Key: " + KEY,
                b"Sec-WebSocket-Key: " + KEY,
                b"Sec-WebSocket-Version: 13",
            ),
            400,
        ),
        (lambda: valid_head(b"Sec-WebSocket-Protocol: a b"), 400),
        (
            lambda: head(
                b"Sec-WebSocket-Key: " + KEY, b"Sec-WebSocket-Version: 13", method=b"POST"
            ),
            400,
        ),
    ],
)
def test_invalid_handshakes(request_head: Any, status: int) -> None:
    with pytest.raises(HTTPProtocolError) as info:
        validate_handshake(request_head())
    assert info.value.status_code == status


def test_accept_response() -> None:
    handshake = Handshake(KEY, ["chat"])
    data = accept_response(handshake, "chat", [(b"x-extra", b"1")], b"server: s\r\n")
    expected = base64.b64encode(
        hashlib.sha1(KEY + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
    )
    # RFC 6455 §1.3's worked example.
    assert expected == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert data.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"sec-websocket-accept: " + expected + b"\r\n" in data
    assert b"sec-websocket-protocol: chat\r\n" in data
    assert b"x-extra: 1\r\n" in data
    assert b"server: s\r\n" in data
    assert data.endswith(b"\r\n\r\n")


@pytest.mark.parametrize(
    ("subprotocol", "headers", "match"),
    [
        ("other", [], "was not offered"),
        (5, [], "must be a str"),
        (None, [(b"sec-websocket-protocol", b"chat")], "subprotocol"),
        (None, [(b"upgrade", b"x")], "must not set"),
        (None, [(b"x", b"a\nb")], "Invalid"),
        (None, [("x", "y")], "bytes"),
        (None, [b"x"], "pair"),
    ],
)
def test_invalid_accepts(subprotocol: Any, headers: Any, match: str) -> None:
    with pytest.raises(ApplicationError, match=match):
        accept_response(Handshake(KEY, ["chat"]), subprotocol, headers)


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1011, 1012, 1014, 3000, 4999])
def test_close_codes_an_application_may_send(code: int) -> None:
    assert validate_close_code(code) == code


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, "1000", 1000.0])
def test_close_codes_an_application_may_not_send(code: Any) -> None:
    with pytest.raises(ApplicationError):
        validate_close_code(code)


# -- frames ----------------------------------------------------------------------------------------


def test_text_and_binary_messages(pairs: SimpleNamespace) -> None:
    pair = pairs.websocket()
    events, reply = pair.client_sends(TextMessage(data="héllo"), BytesMessage(data=b"\x00\x01"))
    assert events == ["héllo", b"\x00\x01"]
    assert reply == b""


def test_fragmented_messages_are_joined(pairs: SimpleNamespace) -> None:
    pair = pairs.websocket()
    events, _ = pair.client_sends(
        TextMessage(data="a", message_finished=False),
        TextMessage(data="b", message_finished=False),
        TextMessage(data="c", message_finished=True),
    )
    assert events == ["abc"]


def test_pings_are_answered(pairs: SimpleNamespace) -> None:
    pair = pairs.websocket()
    events, reply = pair.client_sends(Ping(payload=b"xyz"))
    assert events == []
    (pong,) = pair.client_receives(reply)
    assert isinstance(pong, Pong)
    assert pong.payload == b"xyz"


def test_server_frames_parse_in_an_independent_client(pairs: SimpleNamespace) -> None:
    pair = pairs.websocket()
    big = "x" * 70000
    data = (
        pair.server.send_text("hi")
        + pair.server.send_bytes(b"b" * 300)
        + pair.server.send_text(big)
    )
    events = pair.client_receives(data)
    assert [(type(event), event.data) for event in events] == [
        (TextMessage, "hi"),
        (BytesMessage, b"b" * 300),
        (TextMessage, big),
    ]


def test_client_close_is_echoed(pairs: SimpleNamespace) -> None:
    pair = pairs.websocket()
    events, reply = pair.client_sends(CloseConnection(code=1001, reason="bye"))
    (event,) = events
    assert isinstance(event, CloseReceived)
    assert (event.code, event.reason) == (1001, "bye")
    (echo,) = pair.client_receives(reply)
    assert isinstance(echo, CloseConnection)
    assert echo.code == 1001
    assert pair.server.closed


def test_close_without_code_reports_1005(pairs: SimpleNamespace) -> None:
    pair = pairs.websocket()
    events, _ = pair.server.receive_data(b"\x88\x80\x00\x00\x00\x00")
    assert events[0].code == 1005


def test_server_initiated_close_handshake(pairs: SimpleNamespace) -> None:
    pair = pairs.websocket()
    frame = pair.server.close(1000, "done")
    assert not pair.server.open
    (received,) = pair.client_receives(frame)
    assert (received.code, received.reason) == (1000, "done")
    events, reply = pair.server.receive_data(pair.client.send(received.response()))
    assert isinstance(events[0], CloseReceived)
    assert reply == b""
    assert pair.server.closed
    assert pair.server.close(1000) == b""


def test_data_after_close_is_ignored(pairs: SimpleNamespace) -> None:
    pair = pairs.websocket()
    pair.client_sends(CloseConnection(code=1000))
    assert pair.server.receive_data(b"\x81\x85garbage") == ([], b"")


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x81\x05hello", 1002),  # unmasked client frame
        (b"\x83\x80\x00\x00\x00\x00", 1002),  # reserved opcode
        (b"\xc1\x80\x00\x00\x00\x00", 1002),  # RSV1 without an extension
        (b"\x09\x80\x00\x00\x00\x00", 1002),  # fragmented ping
        (b"\x81\x82\x00\x00\x00\x00\xff\xfe", 1007),  # invalid UTF-8
        (b"\x80\x80\x00\x00\x00\x00", 1002),  # continuation without a start
        (b"\x88\x82\x00\x00\x00\x00\x03\xed", 1002),  # close code 1005 sent on the wire
    ],
)
def test_protocol_violations_fail_the_connection(frame: bytes, code: int) -> None:
    engine = WebSocketConnection(1 << 20, 1 << 20)
    events, reply = engine.receive_data(frame)
    (event,) = events
    assert isinstance(event, ConnectionFailed)
    assert event.code == code
    assert reply[:2] == b"\x88" + bytes([len(reply) - 2])
    assert int.from_bytes(reply[2:4], "big") == code


def test_message_over_the_limit_is_1009_before_it_is_buffered(pairs: SimpleNamespace) -> None:
    pair = pairs.websocket(max_message_size=100, max_frame_size=1000)
    events, reply = pair.client_sends(
        TextMessage(data="a" * 60, message_finished=False), TextMessage(data="b" * 60)
    )
    (event,) = events
    assert isinstance(event, ConnectionFailed)
    assert event.code == 1009
    (close,) = pair.client_receives(reply)
    assert close.code == 1009
    assert pair.server._parts is None


def test_frame_over_the_limit_is_1009_while_it_arrives() -> None:
    engine = WebSocketConnection(1 << 20, 100)
    # Only the header and part of a 1000-byte frame arrive: the declared size
    # is not trusted, the bytes received are counted.
    header = b"\x82\xfe" + (1000).to_bytes(2, "big") + b"\x00\x00\x00\x00"
    events, _ = engine.receive_data(header + b"a" * 50)
    assert events == []
    events, reply = engine.receive_data(b"a" * 60)
    assert isinstance(events[0], ConnectionFailed)
    assert events[0].code == 1009
    assert int.from_bytes(reply[2:4], "big") == 1009


def test_non_ascii_text_counts_utf8_bytes(pairs: SimpleNamespace) -> None:
    pair = pairs.websocket(max_message_size=10, max_frame_size=10)
    events, _ = pair.client_sends(TextMessage(data="ééééé"))  # 10 bytes
    assert events == ["ééééé"]
    events, _ = pair.client_sends(TextMessage(data="éééééé"))  # 12 bytes, 6 characters
    assert isinstance(events[0], ConnectionFailed)


def test_connection_lost() -> None:
    engine = WebSocketConnection(100, 100)
    engine.connection_lost()
    assert engine.closed
    assert engine.close(1000) == b""


@fixtures
@given(
    messages=st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=300)), max_size=10),
    cuts=st.lists(st.integers(0, 5000), max_size=10),
    fragment=st.integers(1, 64),
)
def test_any_messages_in_any_pieces_arrive_whole(
    messages: list[Any],
    cuts: list[int],
    fragment: int,
    pairs: SimpleNamespace,
    strategies: SimpleNamespace,
) -> None:
    pair = pairs.websocket()
    wire = b""
    for message in messages:
        pieces = [message[i : i + fragment] for i in range(0, len(message), fragment)] or [message]
        for index, piece in enumerate(pieces):
            event_type = TextMessage if isinstance(message, str) else BytesMessage
            wire += pair.client.send(
                event_type(data=piece, message_finished=index == len(pieces) - 1)
            )
    received: list[Any] = []
    for chunk in strategies.split_bytes(wire, cuts):
        events, _ = pair.server.receive_data(chunk)
        received.extend(events)
    assert received == messages


@fixtures
@given(garbage=st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_engine(garbage: bytes) -> None:
    engine = WebSocketConnection(1000, 1000)
    events, _ = engine.receive_data(garbage)
    for event in events:
        assert isinstance(event, (str, bytes, CloseReceived, ConnectionFailed))
