"""``limit_concurrency``: beyond N connections served, 503 for HTTP and 1013 for WebSockets."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, TextMessage

from channels_server import Config
from channels_server.cli import build_parser, config_from_arguments
from channels_server.errors import ConfigurationError

HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class Echo:
    """HTTP: 200 with the path; WebSocket: *echo* (accept, then every message back)."""

    def __init__(self, echo: Any) -> None:
        self.calls = 0
        self.echo = echo

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.calls += 1
        if scope["type"] == "websocket":
            await self.echo(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": scope["path"].encode()})


async def open_websocket(
    port: int,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Connection, bytes]:
    """Open a WebSocket; the client state machine and the response head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HANDSHAKE)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    client = Connection(ConnectionType.CLIENT)
    return reader, writer, client, head


async def next_ws_event(reader: asyncio.StreamReader, client: Connection) -> Any:
    while True:
        for event in client.events():
            return event
        data = await asyncio.wait_for(reader.read(65536), 5)
        client.receive_data(data or None)


async def places_taken(server: Any, count: int) -> None:
    """Return once the server counts *count* connections against the limit."""
    # Polled (the caller bounds it with wait_for): the server has no event
    # for a connection's place being given back, and needs none.
    while len(server.context.admitted) != count:  # noqa: ASYNC110
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_over_the_limit_http_gets_503_and_websockets_1013(
    serve: Any, http: SimpleNamespace, apps: SimpleNamespace
) -> None:
    app = Echo(apps.echo)
    server = await serve(app, limit_concurrency=2)
    port = http.port_of(server)

    # Two connections are served and stay open: a keep-alive HTTP one and a WebSocket.
    kept_reader, kept_writer = await asyncio.open_connection("127.0.0.1", port)
    kept_writer.write(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await http.read_response(kept_reader)).endswith(b"\r\n\r\n/first")
    ws_reader, ws_writer, ws_client, head = await open_websocket(port)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert app.calls == 2

    # A third HTTP request: 503, a short body, and the connection closed.
    data = await http.exchange(port, b"GET /third HTTP/1.1\r\nHost: x\r\n\r\n")
    (response,) = http.parse(data)
    assert response.status == 503
    assert response.header(b"connection") == b"close"
    assert 0 < len(response.body) < 200
    assert b"/third" not in response.body

    # A third WebSocket: the handshake completes, then a close frame with 1013.
    reader, writer, client, head = await open_websocket(port)
    assert head.startswith(b"HTTP/1.1 101 ")
    event = await next_ws_event(reader, client)
    assert isinstance(event, CloseConnection)
    assert event.code == 1013
    writer.write(client.send(event.response()))
    assert await asyncio.wait_for(reader.read(), 5) == b""  # The server closes.
    writer.close()
    assert app.calls == 2  # Neither refusal reached the application.

    # Meanwhile the first two are still served.
    kept_writer.write(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await http.read_response(kept_reader)).endswith(b"\r\n\r\n/again")
    ws_writer.write(ws_client.send(TextMessage("still here")))
    echoed = await next_ws_event(ws_reader, ws_client)
    assert isinstance(echoed, TextMessage)
    assert echoed.data == "still here"

    # Once one of them closes, its place goes to the next client.
    kept_writer.close()
    await asyncio.wait_for(places_taken(server, 1), 5)
    request = b"GET /later HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    (response,) = http.parse(await http.exchange(port, request))
    assert (response.status, response.body) == (200, b"/later")
    ws_writer.close()


@pytest.mark.asyncio
async def test_a_connection_waiting_for_its_first_request_takes_no_place(
    serve: Any, http: SimpleNamespace, apps: SimpleNamespace
) -> None:
    """A connection is counted from its first request, so idle sockets cannot lock clients out."""
    server = await serve(Echo(apps.echo), limit_concurrency=1)
    port = http.port_of(server)
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    request = b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    (response,) = http.parse(await http.exchange(port, request))
    assert (response.status, response.body) == (200, b"/a")
    for _, writer in idle:
        writer.close()


@pytest.mark.asyncio
async def test_no_limit_by_default(
    serve: Any, http: SimpleNamespace, apps: SimpleNamespace
) -> None:
    server = await serve(Echo(apps.echo))
    port = http.port_of(server)
    held = []
    for index in range(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % index)
        assert b" 200 " in await http.read_response(reader)
        held.append(writer)
    assert server.context.admitted == set()
    for writer in held:
        writer.close()


@pytest.mark.parametrize("value", [0, -1, True, 2.5, "3"])
def test_limit_must_be_a_positive_int(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="limit_concurrency must be a positive int"):
        Config(limit_concurrency=value)


def test_command_line_flag() -> None:
    arguments = build_parser().parse_args(["--limit-concurrency", "500", "app:application"])
    assert config_from_arguments(arguments).limit_concurrency == 500
    default = build_parser().parse_args(["app:application"])
    assert config_from_arguments(default).limit_concurrency is None
