"""RFC 9110 field syntax, shared by the HTTP engines and the WebSocket handshake."""

from __future__ import annotations

import re

import pytest

from channels_server.errors import ApplicationError
from channels_server.protocol.http11 import HTTP11Connection, HTTPLimits
from channels_server.protocol.syntax import (
    find_control_in_request_value,
    find_control_in_response_value,
    is_token,
    response_field,
)
from channels_server.protocol.websocket import Handshake, accept_response


@pytest.mark.parametrize("token", [b"GET", b"x-custom", b"!#$%&'*+-.^_`|~", b"a1"])
def test_tokens(token: bytes) -> None:
    assert is_token(token)


@pytest.mark.parametrize("text", [b"", b"a b", b"a:b", b"a,b", b"(x)", b'"x"', b"\xe9", b"a\t"])
def test_not_tokens(text: bytes) -> None:
    assert not is_token(text)


def test_control_characters_in_values() -> None:
    assert not find_control_in_response_value(b"text/html; charset=utf-8\t\xe9")
    for byte in [*range(0x09), *range(0x0A, 0x20), 0x7F]:
        assert find_control_in_response_value(b"a" + bytes([byte]))
        assert find_control_in_request_value(b"a" + bytes([byte]))
    # NEL is refused in requests only: it breaks lines once decoded as Latin-1.
    assert find_control_in_request_value(b"a\x85")
    assert not find_control_in_response_value(b"a\x85")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (b"x", "must be a (name, value) pair"),
        ((b"a", b"b", b"c"), "must be a (name, value) pair"),
        (("x-name", b"v"), "must be bytes"),
        ((b"bad name", b"v"), "Invalid response header name"),
        ((b"x-name", b"a\r\nb"), "a control character in its value"),
    ],
)
def test_response_field_refusals(item: object, message: str) -> None:
    with pytest.raises(ApplicationError, match=re.escape(message)):
        response_field(item, "response header")
    assert response_field((b"x-name", b"v\xe9"), "response header") == (b"x-name", b"v\xe9")


def _engine() -> HTTP11Connection:
    engine = HTTP11Connection(HTTPLimits())
    engine.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    engine.next_event()
    return engine


def _chunked_engine() -> HTTP11Connection:
    engine = _engine()
    engine.start_response(200, [(b"trailer", b"x-sum")], b"", more_body=True)
    return engine


def test_every_kind_of_field_an_application_sends_is_checked_alike() -> None:
    # Response headers, trailers and websocket.accept headers: the same rules.
    bad = (b"x-name", b"a\nb")
    with pytest.raises(ApplicationError, match="response header"):
        _engine().start_response(200, [bad], b"", more_body=False)
    with pytest.raises(ApplicationError, match="response trailer"):
        _chunked_engine().end_response([bad])
    # A trailer that is not a pair is the application's error too.
    with pytest.raises(ApplicationError, match="response trailer"):
        _chunked_engine().end_response([b"x-name"])  # type: ignore[list-item]
    handshake = Handshake(b"dGhlIHNhbXBsZSBub25jZQ==", [])
    with pytest.raises(ApplicationError, match=re.escape("websocket.accept header")):
        accept_response(handshake, None, [bad])
