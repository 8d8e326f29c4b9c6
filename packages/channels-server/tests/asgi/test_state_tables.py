"""The state tables: every state can reach its end, and the end is final.

And the rows the server reaches only when a client misbehaves, over a real socket.
"""

from __future__ import annotations

import asyncio
import struct
from types import SimpleNamespace
from typing import Any

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection

from channels_server.asgi.http_stream import (
    HTTP_RESPONSE_TRANSITIONS,
    ResponseEvent,
    ResponseState,
)
from channels_server.asgi.websocket_stream import (
    WEBSOCKET_TRANSITIONS,
    WebSocketEvent,
    WebSocketState,
)


def reachable(table: dict, start: object) -> set:
    seen = {start}
    frontier = [start]
    while frontier:
        state = frontier.pop()
        for (source, _), target in table.items():
            if source == state and target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


def test_every_response_state_is_reachable_and_leads_to_complete() -> None:
    assert reachable(HTTP_RESPONSE_TRANSITIONS, ResponseState.WAITING) == set(ResponseState)
    for state in ResponseState:
        assert ResponseState.COMPLETE in reachable(HTTP_RESPONSE_TRANSITIONS, state)


def test_complete_response_takes_no_events() -> None:
    assert not any(source is ResponseState.COMPLETE for source, _ in HTTP_RESPONSE_TRANSITIONS)


def test_response_must_start_before_its_body() -> None:
    assert (ResponseState.WAITING, ResponseEvent.BODY) not in HTTP_RESPONSE_TRANSITIONS
    assert (ResponseState.WAITING, ResponseEvent.LAST_BODY) not in HTTP_RESPONSE_TRANSITIONS
    assert (ResponseState.STREAMING, ResponseEvent.START) not in HTTP_RESPONSE_TRANSITIONS


def test_every_websocket_state_is_reachable_and_leads_to_closed() -> None:
    assert reachable(WEBSOCKET_TRANSITIONS, WebSocketState.CONNECTING) == set(WebSocketState)
    for state in WebSocketState:
        assert WebSocketState.CLOSED in reachable(WEBSOCKET_TRANSITIONS, state)


def test_losing_the_connection_closes_from_every_state() -> None:
    for state in WebSocketState:
        assert WEBSOCKET_TRANSITIONS[(state, WebSocketEvent.LOST)] is WebSocketState.CLOSED


def test_data_only_flows_while_open() -> None:
    sources = {source for source, event in WEBSOCKET_TRANSITIONS if event is WebSocketEvent.SEND}
    assert sources == {WebSocketState.OPEN}
    accepting = {s for s, event in WEBSOCKET_TRANSITIONS if event is WebSocketEvent.ACCEPT}
    assert accepting == {WebSocketState.CONNECTING}


def test_the_server_can_always_close_and_always_lose_the_connection() -> None:
    for state in WebSocketState:
        assert (state, WebSocketEvent.SERVER_CLOSE) in WEBSOCKET_TRANSITIONS
    for response_state in ResponseState:
        if response_state is not ResponseState.COMPLETE:
            key = (response_state, ResponseEvent.SERVER_ENDS)
            assert HTTP_RESPONSE_TRANSITIONS[key] is ResponseState.COMPLETE


def test_frames_from_the_client_count_only_once_accepted_and_until_closed() -> None:
    # Frames are parsed only after the accept, and not at all once closed
    # (the engine is closed, or the connection lingers and discards them).
    for event in (WebSocketEvent.CLIENT_CLOSE, WebSocketEvent.FAIL):
        sources = {source for source, other in WEBSOCKET_TRANSITIONS if other is event}
        assert sources == {WebSocketState.OPEN, WebSocketState.CLOSING}


@pytest.mark.asyncio
async def test_a_client_breaking_the_rules_while_the_server_closes_is_dropped(
    serve: Any, http: SimpleNamespace
) -> None:
    # CLOSING, then FAIL: the client answers the server's close frame with a
    # message over the limit instead of its own close frame.
    received: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        received.append(await receive())
        done.set()

    done = asyncio.Event()
    server = await serve(app, websocket_max_message_size=1000, websocket_max_frame_size=1000)
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101 ")
    frames = Connection(ConnectionType.CLIENT)
    events: list[Any] = []
    while not events:
        frames.receive_data(await asyncio.wait_for(reader.read(65536), 5))
        events = list(frames.events())
    assert isinstance(events[0], CloseConnection)
    # A masked binary frame (mask key 0) of 1001 bytes: RFC 6455 §5.2.
    writer.write(b"\x82\xfe" + struct.pack("!H", 1001) + bytes(4) + b"b" * 1001)
    while await asyncio.wait_for(reader.read(65536), 5):
        pass  # The server ends the connection.
    writer.close()
    await asyncio.wait_for(done.wait(), 5)
    assert received == [
        {"type": "websocket.disconnect", "code": 1009, "reason": "frame over 1000 bytes"}
    ]
