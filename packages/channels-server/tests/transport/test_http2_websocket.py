"""WebSockets over HTTP/2 (RFC 8441, extended CONNECT) over a real socket.

The client is independent of the server: h2's client side for the stream,
wsproto's frame protocol (client side, masked frames) for what it carries.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from wsproto.frame_protocol import CloseReason, FrameProtocol, Opcode

from channels.generic.websocket import AsyncWebsocketConsumer
from channels_server import Server

h2_client = importlib.import_module("channels_server_test_support.h2_client")
servers = importlib.import_module("channels_server_test_support.servers")
apps = importlib.import_module("channels_server_test_support.apps")
websocket_client = importlib.import_module("channels_server_test_support.websocket_client")
H2Client = h2_client.H2Client

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    started = servers.StartedServers(http="h11")
    yield started.start
    await started.shutdown()


class WebSocketOverH2:
    """One WebSocket on an extended CONNECT stream of *client*."""

    def __init__(self, client: Any, stream_id: int) -> None:
        self.client = client
        self.stream_id = stream_id
        self.frames = FrameProtocol(client=True, extensions=[])
        self._parsed = 0

    @classmethod
    async def open(
        cls, client: Any, path: str = "/ws", headers: Any = ()
    ) -> tuple[WebSocketOverH2, Any]:
        stream_id = client.request(
            "CONNECT",
            path,
            headers=[(b"sec-websocket-version", b"13"), *headers],
            end_stream=False,
            extra_pseudo=[(b":protocol", b"websocket")],
        )
        result = client.streams[stream_id]
        await client.wait_for(lambda: result.status is not None or result.reset is not None)
        return cls(client, stream_id), result

    def send_text(self, text: str) -> None:
        self.client.send_body(
            self.stream_id, self.frames.send_data(text, fin=True), end_stream=False
        )

    def send_close(self, code: int = 1000) -> None:
        self.client.send_body(self.stream_id, self.frames.close(code), end_stream=False)

    async def receive(self) -> Any:
        """The next frame from the server."""
        result = self.client.streams[self.stream_id]
        while True:
            frames = list(self.frames.received_frames())
            if frames:
                return frames[0]
            await self.client.wait_for(lambda: len(result.body) > self._parsed or result.ended)
            new = bytes(result.body[self._parsed :])
            self._parsed = len(result.body)
            if not new and result.ended:
                raise ConnectionError("stream ended")
            self.frames.receive_bytes(new)


async def test_extended_connect_echo(serve: Any) -> None:
    server = await serve(apps.echo)
    client = await H2Client.connect(servers.port_of(server))
    try:
        ws, result = await WebSocketOverH2.open(client)
        assert result.status == 200  # RFC 8441 §5: 200 accepts, not 101
        ws.send_text("hello over h2")
        frame = await ws.receive()
        assert frame.opcode is Opcode.TEXT
        assert frame.payload == "hello over h2"
        ws.send_close(1000)
        reply = await ws.receive()
        assert reply.opcode is Opcode.CLOSE
        assert reply.payload[0] == CloseReason.NORMAL_CLOSURE
        # The server ends its side of the stream after the close handshake.
        await client.wait_for(lambda: result.ended)
        # The connection goes on serving other streams.
        other = await client.response(client.request("POST", "/", body=b"still here"))
        assert bytes(other.body) == b"still here"
    finally:
        await client.close()


async def test_subprotocols_and_scope(serve: Any) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "superchat"})
        await receive()

    server = await serve(app)
    client = await H2Client.connect(servers.port_of(server))
    try:
        ws, result = await WebSocketOverH2.open(
            client, "/chat?room=1", headers=[(b"sec-websocket-protocol", b"chat, superchat")]
        )
        assert result.status == 200
        assert dict(result.headers)[b"sec-websocket-protocol"] == b"superchat"
        ws.send_close()
        await client.wait_for(lambda: result.ended)
    finally:
        await client.close()
    scope = scopes[0]
    assert scope["type"] == "websocket"
    assert scope["http_version"] == "2"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/chat"
    assert scope["query_string"] == b"room=1"
    assert scope["subprotocols"] == ["chat", "superchat"]
    assert scope["headers"][0] == (b"host", b"localhost")


async def test_rejected_handshake_is_a_403(serve: Any) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close"})

    server = await serve(app)
    client = await H2Client.connect(servers.port_of(server))
    try:
        _, result = await WebSocketOverH2.open(client)
        await client.wait_for(lambda: result.ended)
        assert result.status == 403
        _, again = await WebSocketOverH2.open(client)  # the connection goes on
        await client.wait_for(lambda: again.ended)
        assert again.status == 403
    finally:
        await client.close()


async def test_denial_response(serve: Any) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"who are you"})

    server = await serve(app)
    client = await H2Client.connect(servers.port_of(server))
    try:
        _, result = await WebSocketOverH2.open(client)
        await client.wait_for(lambda: result.ended)
    finally:
        await client.close()
    assert result.status == 401
    assert bytes(result.body) == b"who are you"


async def test_client_reset_disconnects_the_application(serve: Any) -> None:
    disconnected: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        disconnected.append(await receive())

    server = await serve(app)
    client = await H2Client.connect(servers.port_of(server))
    try:
        ws, result = await WebSocketOverH2.open(client)
        assert result.status == 200
        client.reset(ws.stream_id)
        await client.ping()
        await client.wait_for(lambda: len(server.context.tasks) == 0)
    finally:
        await client.close()
    assert disconnected == [{"type": "websocket.disconnect", "code": 1006, "reason": ""}]


class Recording(AsyncWebsocketConsumer):
    scopes: list[dict[str, Any]] = []

    async def connect(self) -> None:
        self.scopes.append(dict(self.scope))
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=f"echo: {text_data}")


async def test_a_consumer_sees_the_same_scope_as_over_http11(serve: Any) -> None:
    Recording.scopes = []
    server = await serve(Recording.as_asgi())
    port = servers.port_of(server)
    client = await H2Client.connect(port)
    try:
        ws, result = await WebSocketOverH2.open(client, "/consumer")
        ws.send_text("hi")
        frame = await ws.receive()
        assert frame.payload == "echo: hi"
        ws.send_close()
        await client.wait_for(lambda: result.ended)
    finally:
        await client.close()
    connection = await websocket_client.ws_connect(port, "/consumer")
    connection.send_text("hi")
    assert await connection.receive() == "echo: hi"
    connection.close()
    await connection.wait_closed()
    over_h2, over_http11 = Recording.scopes
    assert set(over_h2) == set(over_http11)
    for key in ("type", "scheme", "path", "raw_path", "query_string", "root_path", "subprotocols"):
        assert over_h2[key] == over_http11[key], key
    assert over_h2["http_version"] == "2"
    assert over_http11["http_version"] == "1.1"


async def test_shutdown_closes_websockets_with_1012_then_goaway(serve: Any) -> None:
    server = await serve(apps.echo)
    client = await H2Client.connect(servers.port_of(server))
    try:
        ws, result = await WebSocketOverH2.open(client)
        assert result.status == 200
        shutdown = asyncio.get_running_loop().create_task(server.shutdown())
        close = await ws.receive()
        assert close.opcode is Opcode.CLOSE
        assert close.payload[0] == 1012  # Service Restart
        ws.send_close(1012)
        await client.closed()
        assert client.goaway == 0
        await asyncio.wait_for(shutdown, 10)
    finally:
        await client.close()


async def test_permessage_deflate_is_negotiated_as_over_http11(serve: Any) -> None:
    server = await serve(apps.echo)
    client = await H2Client.connect(servers.port_of(server))
    try:
        _, result = await WebSocketOverH2.open(
            client, headers=[(b"sec-websocket-extensions", b"permessage-deflate")]
        )
        assert result.status == 200
        assert dict(result.headers)[b"sec-websocket-extensions"].startswith(b"permessage-deflate")
    finally:
        await client.close()
