"""Clients that do not read, or send what they should not, over real sockets.

Each test runs an attack and a well-behaved client against the same server,
and checks both that the attack is cut off and that the other client is
served meanwhile. Memory is measured as the server's own buffered bytes
(the write buffers of its transports), which is exact where RSS is noisy.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import socket
from types import SimpleNamespace
from typing import Any

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Ping, TextMessage

from channels_server.server import Server

pytestmark = pytest.mark.asyncio

BIG = b"x" * (1 << 20)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/big``: 1 MiB in one message; ``/slow``: a WebSocket that reads only when told."""
    if scope["type"] == "http":
        body = BIG if scope["path"] == "/big" else b"ok"
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": body})
        return
    if scope["type"] != "websocket":
        return
    await receive()
    if scope["path"] == "/never-accept":
        # Neither accepts nor denies: waits until the client is gone.
        assert (await receive())["type"] == "websocket.disconnect"
        return
    await send({"type": "websocket.accept"})
    if scope["path"] == "/slow":
        await RELEASE[0].wait()
        count = 0
        while (message := await receive())["type"] == "websocket.receive":
            count += 1
            if message.get("text") == "last":
                await send({"type": "websocket.send", "text": f"got {count}"})
        return
    while (message := await receive())["type"] == "websocket.receive":
        await send({"type": "websocket.send", "text": message.get("text") or ""})


# The /slow WebSocket waits on this (a fresh event per test, made on its loop).
RELEASE: list[asyncio.Event] = []


@pytest.fixture(autouse=True)
def _release_event() -> Any:
    RELEASE[:] = [asyncio.Event()]
    yield
    RELEASE.clear()


def buffered(server: Server) -> int:
    """Bytes the server holds for its clients in its transports' write buffers."""
    return sum(
        connection.transport.get_write_buffer_size()  # type: ignore[attr-defined]
        for connection in list(server.context.connections)
    )


def high_water(server: Server) -> int:
    connection = next(iter(server.context.connections))
    return int(connection.transport.get_write_buffer_limits()[1])  # type: ignore[attr-defined]


async def open_non_reader(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client with a small receive buffer, so that the kernel holds little for it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await asyncio.open_connection(sock=sock)


async def wait_for_connections(server: Server, count: int, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(server.context.connections) != count:
        if loop.time() > deadline:
            raise AssertionError(
                f"{len(server.context.connections)} connections open after {timeout}s, "
                f"expected {count}"
            )
        await asyncio.sleep(0.01)


def shrink_server_send_buffer(server: Server) -> None:
    """Make the kernel hold little on the server's side of each connection too."""
    for connection in server.context.connections:
        sock = connection.transport.get_extra_info("socket")  # type: ignore[attr-defined]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


async def served(http: SimpleNamespace, port: int) -> None:
    data = await http.exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert http.parse(data)[0].body == b"ok"


async def dropped(reader: asyncio.StreamReader, timeout: float) -> None:
    """Read (and discard) until the server ends the connection."""

    async def read_all() -> None:
        with contextlib.suppress(ConnectionError):
            while await reader.read(1 << 16):
                pass

    await asyncio.wait_for(read_all(), timeout)


# -- 1. pipelined requests and a client that does not read -----------------------------------


async def test_pipelined_requests_wait_for_a_client_that_does_not_read(
    serve: Any, http: SimpleNamespace
) -> None:
    server = await serve(app, write_timeout=1.0)
    port = http.port_of(server)
    reader, writer = await open_non_reader(port)
    await wait_for_connections(server, 1, 5)
    shrink_server_send_buffer(server)
    limit = high_water(server)
    writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n" * 300)
    loop = asyncio.get_running_loop()
    most = 0
    started = loop.time()
    # The server never holds more than the response being written and its
    # high-water mark, however many requests wait; others are served meanwhile.
    while server.context.connections:
        most = max(most, buffered(server))
        assert most <= len(BIG) + 2 * limit, f"{most} bytes buffered"
        if loop.time() - started < 0.5:
            await served(http, port)
        await asyncio.sleep(0.01)
        assert loop.time() - started < 5, "the connection was never dropped"
    # ... and the connection that read nothing is dropped after the write timeout.
    assert loop.time() - started > 0.9
    assert most > limit  # (the attack did fill the buffer)
    await dropped(reader, 1)
    await served(http, port)
    writer.close()


async def test_a_closing_connection_that_is_never_read_is_dropped(
    serve: Any, http: SimpleNamespace
) -> None:
    """The keep-alive timer closes the connection, and the bytes queued under the
    high-water mark never go out: the write timeout ends it all the same."""
    server = await serve(app, keep_alive_timeout=0.3, header_timeout=0.2, write_timeout=0.5)
    port = http.port_of(server)
    reader, writer = await open_non_reader(port)
    await wait_for_connections(server, 1, 5)
    shrink_server_send_buffer(server)
    (connection,) = server.context.connections
    # The whole response fits under the mark: writing never pauses.
    connection.transport.set_write_buffer_limits(high=4 * len(BIG))
    writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    loop = asyncio.get_running_loop()
    sent = loop.time()
    while not buffered(server):
        await asyncio.sleep(0.01)
        assert loop.time() - sent < 5, "the response was never buffered"
    started = loop.time()
    await served(http, port)
    await wait_for_connections(server, 0, 3)
    assert loop.time() - started > 0.6
    await dropped(reader, 1)
    writer.close()


# -- WebSockets -------------------------------------------------------------------------------


def _upgrade(path: bytes) -> bytes:
    return (
        b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )


# conftest.py has loaded the support package under this name.
_client_frame = importlib.import_module("channels_server_test_support.frames").client_frame


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A masked client frame (the mask is zero, so the payload goes as is)."""
    return _client_frame((0x80 if fin else 0) | opcode, payload)


async def echo_works(port: int) -> None:
    """A well-behaved WebSocket client: handshake, one message echoed, clean close."""
    client = Connection(ConnectionType.CLIENT)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_upgrade(b"/echo"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101 ")
        writer.write(client.send(TextMessage(data="hello")))
        while True:
            client.receive_data(await asyncio.wait_for(reader.read(1 << 16), 5))
            texts = [event.data for event in client.events() if isinstance(event, TextMessage)]
            if texts:
                assert texts == ["hello"]
                break
        writer.write(client.send(CloseConnection(code=1000)))
    finally:
        writer.close()


async def test_bytes_before_the_accept_are_capped(serve: Any, http: SimpleNamespace) -> None:
    """A handshake followed at once by a 1 MiB frame is not held for the connect timeout."""
    server = await serve(app, websocket_connect_timeout=10)
    port = http.port_of(server)
    loop = asyncio.get_running_loop()
    for together in (True, False):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = loop.time()
        big = frame(0x2, b"z" * (1 << 20))
        if together:
            writer.write(_upgrade(b"/never-accept") + big)
        else:
            writer.write(_upgrade(b"/never-accept"))
            await asyncio.sleep(0.05)
            writer.write(big)
        await echo_works(port)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        await dropped(reader, 3)
        assert loop.time() - started < 3
        writer.close()
    await wait_for_connections(server, 0, 3)


async def test_pongs_to_a_client_that_does_not_read_are_bounded(
    serve: Any, http: SimpleNamespace
) -> None:
    server = await serve(app, write_timeout=1.0)
    port = http.port_of(server)
    reader, writer = await open_non_reader(port)
    writer.write(_upgrade(b"/echo"))
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    shrink_server_send_buffer(server)
    limit = high_water(server)
    pings = frame(0x9, b"p" * 125) * 512

    async def flood() -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                writer.write(pings)
                await writer.drain()

    flooding = asyncio.ensure_future(flood())
    loop = asyncio.get_running_loop()
    started = loop.time()
    most = 0
    try:
        await echo_works(port)
        while server.context.connections:
            most = max(most, buffered(server))
            # The high-water mark, plus the pongs for one read of pings.
            assert most <= limit + 512 * 1024, f"{most} bytes buffered"
            await asyncio.sleep(0.01)
            assert loop.time() - started < 5, "the connection was never dropped"
    finally:
        flooding.cancel()
    assert most > limit  # (the pongs did fill the buffer)
    await dropped(reader, 1)
    await echo_works(port)
    writer.close()


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        # Empty fragments cost FRAGMENT_COST bytes each toward the message limit.
        ({"websocket_max_message_size": 4096}, b"4096 bytes"),
        ({"websocket_max_fragments": 100}, b"100 frames"),
    ],
)
async def test_empty_fragments_count_toward_the_limits(
    serve: Any, http: SimpleNamespace, options: dict[str, int], reason: bytes
) -> None:
    server = await serve(app, **options)
    port = http.port_of(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_upgrade(b"/echo"))
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.write(frame(0x1, b"a", fin=False) + frame(0x0, b"", fin=False) * 5000)
    await echo_works(port)
    data = await asyncio.wait_for(reader.read(), 5)
    assert data[0] == 0x88  # a close frame
    assert int.from_bytes(data[2:4], "big") == 1009
    assert reason in data
    writer.close()


async def test_a_client_that_answers_pings_is_kept_while_the_server_does_not_read(
    serve: Any, http: SimpleNamespace
) -> None:
    """The application is behind, so the server stopped reading: the client's
    pongs wait unread in the socket, and that is no reason to drop it."""
    server = await serve(app, ping_interval=0.1, ping_timeout=0.2)
    port = http.port_of(server)
    client = Connection(ConnectionType.CLIENT)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_upgrade(b"/slow"))
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    # Enough messages to make the server stop reading (QUEUE_MAX_MESSAGES).
    for index in range(200):
        writer.write(client.send(TextMessage(data=str(index))))
    writer.write(client.send(TextMessage(data="last")))
    pings = 0
    texts: list[str] = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not texts:
        assert loop.time() - started < 10
        if loop.time() - started > 1.0 and not RELEASE[0].is_set():
            # Five ping timeouts later, the application catches up.
            assert pings >= 1
            RELEASE[0].set()
        try:
            data = await asyncio.wait_for(reader.read(1 << 16), 0.1)
        except asyncio.TimeoutError:
            continue
        assert data, "the server dropped a client that answered every ping"
        client.receive_data(data)
        for event in client.events():
            if isinstance(event, Ping):
                pings += 1
                writer.write(client.send(event.response()))
            elif isinstance(event, TextMessage):
                texts.append(event.data)
        await echo_works(port)
    assert texts == ["got 201"]
    writer.write(client.send(CloseConnection(code=1000)))
    writer.close()
