"""Hostile and broken clients, over real sockets.

Every refusal here happens without calling the application, and the server
keeps serving other clients.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, TextMessage

pytestmark = pytest.mark.asyncio


async def refused_with(http: SimpleNamespace, port: int, request: bytes) -> int:
    data = await http.exchange(port, request)
    (response,) = http.parse(data)
    assert response.header(b"connection") == b"close"
    return response.status


async def test_request_line_too_long(serve: Any, http: SimpleNamespace, recorder: Any) -> None:
    server = await serve(recorder, max_request_line_size=1000)
    port = http.port_of(server)
    assert (
        await refused_with(http, port, b"GET /" + b"a" * 1000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        == 414
    )
    # A request line that never ends is cut off at the head limit, still 414.
    assert await refused_with(http, port, b"GET /" + b"a" * 20000) == 414
    assert recorder.scopes == []


async def test_header_block_too_large(serve: Any, http: SimpleNamespace, recorder: Any) -> None:
    server = await serve(recorder, max_header_size=4096, max_request_line_size=1000)
    port = http.port_of(server)
    big = b"X-Big: " + b"a" * 5000 + b"\r\n"
    assert await refused_with(http, port, b"GET / HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n") == 431
    # Headers that never end are cut off too.
    assert await refused_with(http, port, b"GET / HTTP/1.1\r\nHost: x\r\n" + big * 4) == 431
    assert recorder.scopes == []


async def test_too_many_headers(serve: Any, http: SimpleNamespace, recorder: Any) -> None:
    server = await serve(recorder, max_header_count=20)
    headers = b"".join(b"X-%d: v\r\n" % index for index in range(25))
    status = await refused_with(
        http, http.port_of(server), b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"
    )
    assert status == 431
    assert recorder.scopes == []


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",  # a TLS ClientHello
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
        b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET / HTTP/1.1\r\n folded: continuation-first\r\nHost: x\r\n\r\n",
    ],
)
async def test_invalid_requests_are_400_without_calling_the_application(
    serve: Any, http: SimpleNamespace, request_bytes: bytes, recorder: Any
) -> None:
    server = await serve(recorder)
    assert await refused_with(http, http.port_of(server), request_bytes) == 400
    assert [
        call for call in recorder.scopes if call["type"] == "http" and call["path"] != "/"
    ] == []


async def test_content_length_with_transfer_encoding(
    serve: Any, http: SimpleNamespace, recorder: Any
) -> None:
    """The request-smuggling shape: a front end and the server would disagree on the body."""
    server = await serve(recorder)
    request = (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    data = await http.exchange(http.port_of(server), request)
    assert data.startswith(b"HTTP/1.1 400 ")
    assert data.count(b"HTTP/1.1") == 1
    assert recorder.scopes == []


@pytest.mark.parametrize("control", [b"\x00", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x85"])
@pytest.mark.parametrize("where", ["value", "name"])
async def test_control_characters_in_headers(
    serve: Any, http: SimpleNamespace, control: bytes, where: str, recorder: Any
) -> None:
    server = await serve(recorder)
    line = b"X-Test: a" + control + b"b" if where == "value" else b"X-Te" + control + b"st: ab"
    status = await refused_with(
        http, http.port_of(server), b"GET / HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n\r\n"
    )
    assert status == 400
    assert recorder.scopes == []


@pytest.mark.parametrize("control", [b"\x00", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x85"])
async def test_control_characters_on_the_websocket_upgrade(
    serve: Any, http: SimpleNamespace, control: bytes, recorder: Any
) -> None:
    """CVE-2026-44546's class: header injection through the WebSocket handshake."""
    server = await serve(recorder)
    request = (
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Cookie: sessionid=abc" + control + b"X-Injected: 1\r\n\r\n"
    )
    assert await refused_with(http, http.port_of(server), request) == 400
    assert recorder.scopes == []


async def test_slow_headers_are_cut_off_while_others_are_served(
    serve: Any, http: SimpleNamespace, recorder: Any
) -> None:
    server = await serve(recorder, header_timeout=0.5)
    port = http.port_of(server)
    slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", port)
    slow_writer.write(b"GET / HTTP/1.1\r\n")
    started = asyncio.get_running_loop().time()

    async def dribble() -> None:
        for _ in range(20):
            await asyncio.sleep(0.1)
            if slow_writer.is_closing():
                return
            slow_writer.write(b"X-Slow: 1\r\n")

    dribbling = asyncio.ensure_future(dribble())
    # Meanwhile other clients are served at once.
    for _ in range(3):
        data = await http.exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert http.parse(data)[0].body == b"ok"
    answer = await asyncio.wait_for(slow_reader.read(), 5)
    elapsed = asyncio.get_running_loop().time() - started
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert 0.4 < elapsed < 1.6
    dribbling.cancel()
    slow_writer.close()


async def test_after_a_408_the_server_reads_on_until_the_client_stops(
    serve: Any, http: SimpleNamespace, recorder: Any
) -> None:
    """After a head timeout the server ends its side but reads on (and discards)
    for a while: a client still sending its head would otherwise get a reset,
    which can destroy the 408 before the client reads it."""
    server = await serve(recorder, header_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    writer.write(b"GET / HTTP/1.1\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    assert answer.startswith(b"HTTP/1.1 408 ")
    # The client goes on sending; a closed socket would answer with a reset,
    # and the second write would fail.
    for _ in range(3):
        writer.write(b"X-Late: 1\r\n")
        await writer.drain()
        await asyncio.sleep(0.1)
    assert not writer.is_closing()
    writer.close()


async def test_idle_keep_alive_connections_are_closed(
    serve: Any, http: SimpleNamespace, recorder: Any
) -> None:
    server = await serve(recorder, keep_alive_timeout=0.3, header_timeout=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await http.read_response(reader)).endswith(b"ok")
    started = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert 0.25 < asyncio.get_running_loop().time() - started < 1.5
    writer.close()


async def test_silent_new_connections_are_closed(
    serve: Any, http: SimpleNamespace, recorder: Any
) -> None:
    server = await serve(recorder, header_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


def _upgrade(frames: bytes) -> bytes:
    return (
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" + frames
    )


@pytest.mark.parametrize("fragmented", [False, True])
async def test_websocket_message_over_the_limit_is_1009(
    serve: Any, http: SimpleNamespace, fragmented: bool, recorder: Any
) -> None:
    """CVE-2026-44545's class: an unbounded message held in memory."""
    server = await serve(recorder, websocket_max_message_size=4096, websocket_max_frame_size=4096)
    client = Connection(ConnectionType.CLIENT)
    if fragmented:
        frames = b"".join(
            client.send(BytesMessage(data=b"x" * 1000, message_finished=False)) for _ in range(10)
        )
    else:
        frames = client.send(BytesMessage(data=b"x" * 100_000))
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    writer.write(_upgrade(b""))
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.write(frames)
    data = await asyncio.wait_for(reader.read(), 5)
    client.receive_data(data)
    (close,) = list(client.events())
    assert close.code == 1009
    writer.close()


async def test_oversized_frame_header_alone_is_enough(
    serve: Any, http: SimpleNamespace, recorder: Any
) -> None:
    server = await serve(recorder, websocket_max_frame_size=1024)
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    writer.write(_upgrade(b""))
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    # A frame that claims 2**62 bytes, then the first 2000 of them.
    writer.write(b"\x82\xff" + (2**62).to_bytes(8, "big") + b"\x00\x00\x00\x00" + b"z" * 2000)
    data = await asyncio.wait_for(reader.read(), 5)
    assert data[0] == 0x88  # a close frame
    assert int.from_bytes(data[2:4], "big") == 1009
    writer.close()


async def test_text_frame_with_invalid_utf8_is_1007(
    serve: Any, http: SimpleNamespace, recorder: Any
) -> None:
    server = await serve(recorder)
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    writer.write(_upgrade(b"\x81\x82\x00\x00\x00\x00\xc3\x28"))
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    data = await asyncio.wait_for(reader.read(), 5)
    assert int.from_bytes(data[2:4], "big") == 1007
    writer.close()


async def test_server_keeps_serving_after_protocol_errors(
    serve: Any, http: SimpleNamespace, recorder: Any
) -> None:
    server = await serve(recorder)
    port = http.port_of(server)
    for garbage in (b"\x00" * 100, b"GET / HTTP/9.9\r\n\r\n", _upgrade(b"\xff\xff\xff")):
        await http.exchange(port, garbage)
    client = Connection(ConnectionType.CLIENT)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_upgrade(client.send(TextMessage(data="still here"))))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101 ")
    writer.close()
