"""The socket layer: what the accepted connections are set up with, and its flow control."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace
from typing import Any

import pytest

from channels_server.config import parse_endpoint
from channels_server.protocol.fast_http11 import MAX_PIPELINED
from channels_server.transport.tcp import bind, describe_socket

pytestmark = pytest.mark.asyncio


async def test_accepted_connections_disable_nagle(
    serve: Any, apps: SimpleNamespace, http: SimpleNamespace
) -> None:
    """Without TCP_NODELAY a keep-alive client waits ~40 ms for each response (delayed ACK)."""
    server = await serve(apps.hello)
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await http.read_response(reader)
    (connection,) = server.context.connections
    sock = connection.transport.get_extra_info("socket")  # type: ignore[attr-defined]
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    writer.close()


async def test_listening_socket_is_tcp() -> None:
    sock = bind(parse_endpoint("tcp:port=0:interface=127.0.0.1"), 16)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert describe_socket(sock).startswith("http://127.0.0.1:")
    finally:
        sock.close()


async def test_ipv6_endpoint(apps: SimpleNamespace, http: SimpleNamespace, serve: Any) -> None:
    if not socket.has_ipv6:  # pragma: no cover - the test machines have IPv6 loopback
        pytest.skip("no IPv6")
    server = await serve(apps.hello, endpoints=("tcp6:port=0:interface=\\:\\:1",))
    host, port = server.addresses[0]
    assert host == "::1"
    reader, writer = await asyncio.open_connection("::1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert http.parse(await asyncio.wait_for(reader.read(), 5))[0].status == 200
    writer.close()


async def test_pipelined_requests_pause_reading_until_the_response(
    serve: Any, http: SimpleNamespace
) -> None:
    """A client that pipelines many requests cannot make the server buffer them all."""
    seen: list[str] = []
    release = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        if scope["path"] == "/first":
            await release.wait()
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"x"})

    server = await serve(app)
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    pipelined = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n" * 20_000  # 620 kB
    writer.write(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n" + pipelined)
    await asyncio.sleep(0.3)
    assert seen == ["/first"]
    (connection,) = server.context.connections
    # At most what one read from the socket returns (256 KiB), not all that was sent.
    assert connection.http.buffered_size <= 256 * 1024  # type: ignore[attr-defined]
    release.set()
    writer.write(b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 60)
    responses = http.parse(data)
    assert all(response.status == 200 for response in responses)
    # h11 parses one request at a time and serves them all; llhttp parses a
    # whole read at once, so the httptools engine serves MAX_PIPELINED of
    # them and closes (RFC 9112 §9.3.2: the client retries the rest).
    assert len(responses) == 20_002 or (
        len(responses) == MAX_PIPELINED and responses[-1].header(b"connection") == b"close"
    )
    writer.close()
