"""A WebSocket scope lives as long as its socket: common header bytes are shared."""

from __future__ import annotations

from channels_server.asgi.scope import build_scope
from channels_server.config import Config
from channels_server.protocol.http11 import RequestHead


def _fresh(data: bytes) -> bytes:
    return bytes(bytearray(data))


def _head() -> RequestHead:
    # Each request's bytes are fresh objects, as a parser makes them.
    headers = [
        (_fresh(b"host"), _fresh(b"example.com")),
        (_fresh(b"upgrade"), _fresh(b"websocket")),
        (_fresh(b"connection"), _fresh(b"Upgrade")),
        (_fresh(b"sec-websocket-version"), _fresh(b"13")),
        (_fresh(b"x-custom"), _fresh(b"kept as sent")),
    ]
    return RequestHead(b"GET", b"/ws/", b"1.1", headers, True, False, b"websocket")


def _scope(head: RequestHead, *, websocket: bool) -> dict[str, object]:
    return build_scope(
        head,
        websocket=websocket,
        client=("127.0.0.1", 1),
        server=("127.0.0.1", 80),
        trusted=False,
        config=Config(),
        state={},
    )


def test_websocket_scopes_share_common_header_bytes() -> None:
    first_head, second_head = _head(), _head()
    first = _scope(first_head, websocket=True)["headers"]
    second = _scope(second_head, websocket=True)["headers"]
    assert first == second == first_head.headers
    pairs = list(zip(first, second, strict=True))
    for (name, _), (other_name, _) in pairs[:4]:
        assert name is other_name
    for (_, value), (_, other_value) in pairs[1:4]:
        assert value is other_value
    # What is not common is kept as sent.
    assert first[4] == (b"x-custom", b"kept as sent")
    assert first[4][1] is first_head.headers[4][1]


def test_http_scopes_keep_the_parsed_headers() -> None:
    head = _head()
    assert _scope(head, websocket=False)["headers"] is head.headers
