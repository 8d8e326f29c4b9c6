"""Each known HTTP/2 attack, over a real socket: the attacking connection is closed
(GOAWAY with the expected error code) and a well-behaved client on the same server is
served meanwhile."""

from __future__ import annotations

import asyncio
import importlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import hpack
import pytest
import pytest_asyncio
from h2.settings import SettingCodes

from channels_server import Server

h2_client = importlib.import_module("channels_server_test_support.h2_client")
servers = importlib.import_module("channels_server_test_support.servers")
H2Client = h2_client.H2Client

pytestmark = pytest.mark.asyncio

PROTOCOL_ERROR = 0x1
FRAME_SIZE_ERROR = 0x6
ENHANCE_YOUR_CALM = 0xB


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    started = servers.StartedServers(http="h11")
    yield started.start
    await started.shutdown()


class Counting:
    """Answers ``ok`` (``?N``: N bytes in one message); counts the tasks it ran."""

    def __init__(self) -> None:
        self.started = 0
        self.sending = 0
        self.sent = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.started += 1
        await send({"type": "http.response.start", "status": 200})
        query = scope["query_string"]
        body = b"x" * int(query) if query.isdigit() else b"ok"
        self.sending += 1
        await send({"type": "http.response.body", "body": body})
        self.sent += 1


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One raw frame (RFC 9113 §4.1)."""
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream_id)
        + payload
    )


def request_block(encoder: hpack.Encoder, path: bytes = b"/", extra: Any = ()) -> bytes:
    return encoder.encode(
        [
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":authority", b"localhost"),
            (b":path", path),
            *extra,
        ]
    )


async def assert_goaway(attacker: Any, code: int) -> None:
    """The attacker got GOAWAY with *code* and its connection was closed."""
    await attacker.closed()
    assert attacker.goaway == code


async def assert_served(port: int) -> None:
    client = await H2Client.connect(port)
    try:
        result = await client.get("/")
    finally:
        await client.close()
    assert result.status == 200
    assert bytes(result.body) == b"ok"


async def test_rapid_reset(serve: Any) -> None:
    app = Counting()
    server = await serve(app, http2_max_concurrent_streams=10)
    port = servers.port_of(server)
    attacker = await H2Client.connect(port)
    try:
        # CVE-2023-44487: open a stream and cancel it at once, again and again.
        for _ in range(1000):
            stream_id = attacker.request("GET", "/")
            attacker.conn.reset_stream(stream_id, 8)
        attacker.flush()
        await assert_served(port)
        await assert_goaway(attacker, ENHANCE_YOUR_CALM)
    finally:
        await attacker.close()
    # Never more application tasks than the concurrency limit at once, and far
    # fewer than the streams opened.
    assert app.started <= 250
    await assert_served(port)


async def test_rapid_reset_cannot_exceed_the_task_limit(serve: Any) -> None:
    release = asyncio.Event()
    running = 0
    most = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await release.wait()
        finally:
            running -= 1

    server = await serve(app, http2_max_concurrent_streams=5, application_close_timeout=30)
    attacker = await H2Client.connect(servers.port_of(server))
    try:
        ids = []
        for _ in range(50):
            stream_id = attacker.request("GET", "/")
            attacker.conn.reset_stream(stream_id, 8)
            ids.append(stream_id)
        attacker.flush()
        await attacker.ping()
        # Streams past the limit were refused while the reset ones still ran.
        assert most == 5
        assert len(server.context.tasks) == 5
    finally:
        release.set()
        await attacker.close()


async def test_continuation_flood(serve: Any) -> None:
    server = await serve(Counting())
    port = servers.port_of(server)
    attacker = await H2Client.connect(port)
    try:
        # CVE-2024-27316: a header block that never ends, CONTINUATION after CONTINUATION.
        block = request_block(hpack.Encoder())
        attacker.write_raw(frame(0x1, 0x0, 1, block))  # HEADERS without END_HEADERS
        junk = b"\x00" * 4000
        for _ in range(20):
            attacker.write_raw(frame(0x9, 0x0, 1, junk))
        await assert_served(port)
        await assert_goaway(attacker, ENHANCE_YOUR_CALM)
    finally:
        await attacker.close()


async def test_continuation_flood_of_empty_frames(serve: Any) -> None:
    server = await serve(Counting())
    port = servers.port_of(server)
    attacker = await H2Client.connect(port)
    try:
        attacker.write_raw(frame(0x1, 0x0, 1, request_block(hpack.Encoder())))
        for _ in range(5000):
            attacker.write_raw(frame(0x9, 0x0, 1))
        await assert_served(port)
        await assert_goaway(attacker, ENHANCE_YOUR_CALM)
    finally:
        await attacker.close()


async def test_oversized_frame_is_refused_before_it_is_buffered(serve: Any) -> None:
    server = await serve(Counting())
    port = servers.port_of(server)
    attacker = await H2Client.connect(port)
    try:
        # A 16 MiB DATA frame header, and only the start of its payload.
        attacker.write_raw(struct.pack(">I", 0xFFFFFF)[1:] + b"\x00\x00\x00\x00\x00\x01")
        attacker.write_raw(b"\x00" * 1000)
        await assert_goaway(attacker, FRAME_SIZE_ERROR)
    finally:
        await attacker.close()
    await assert_served(port)


async def test_hpack_table_size_bomb(serve: Any) -> None:
    server = await serve(Counting())
    port = servers.port_of(server)
    attacker = await H2Client.connect(port)
    try:
        # A dynamic table size update far over the SETTINGS_HEADER_TABLE_SIZE announced.
        encoder = hpack.Encoder()
        encoder.header_table_size = 1 << 30
        attacker.write_raw(frame(0x1, 0x5, 1, request_block(encoder)))
        await assert_served(port)
        # (RFC 9113 §4.3 would say COMPRESSION_ERROR; h2 answers PROTOCOL_ERROR.)
        await assert_goaway(attacker, PROTOCOL_ERROR)
    finally:
        await attacker.close()


async def test_hpack_header_list_bomb(serve: Any) -> None:
    server = await serve(Counting())
    port = servers.port_of(server)
    attacker = await H2Client.connect(port)
    try:
        # One 4000-byte field stored in the dynamic table, then referenced by
        # one-byte indexes: a small block that decodes to far more than
        # max_header_size (16 KiB; under h2's own default limit of 64 KiB, so
        # that it is the server's limit that is tested).
        encoder = hpack.Encoder()
        bomb = [(b"x-bomb", b"a" * 4000)] * 12
        block = request_block(encoder, extra=bomb)
        assert len(block) < 4100  # a small block: the decoder must catch it
        attacker.write_raw(frame(0x1, 0x5, 1, block))
        await assert_served(port)
        await assert_goaway(attacker, ENHANCE_YOUR_CALM)
    finally:
        await attacker.close()


@pytest.mark.parametrize(
    "flood",
    [
        pytest.param(lambda: frame(0x4, 0x0, 0), id="settings"),
        pytest.param(lambda: frame(0x6, 0x0, 0, b"pingpong"), id="ping"),
        pytest.param(lambda: frame(0x2, 0x0, 3, b"\x00\x00\x00\x00\x10"), id="priority"),
        pytest.param(lambda: frame(0x8, 0x0, 0, b"\x00\x00\x00\x01"), id="window-update"),
    ],
)
async def test_control_frame_flood(serve: Any, flood: Callable[[], bytes]) -> None:
    server = await serve(Counting())
    port = servers.port_of(server)
    attacker = await H2Client.connect(port)
    try:
        attacker.write_raw(flood() * 5000)
        await assert_served(port)
        await assert_goaway(attacker, ENHANCE_YOUR_CALM)
    finally:
        await attacker.close()


async def test_empty_data_flood(serve: Any) -> None:
    received: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/upload":
            while (message := await receive())["type"] != "http.disconnect":
                received.append(message)
            return
        await Counting()(scope, receive, send)

    server = await serve(app)
    port = servers.port_of(server)
    attacker = await H2Client.connect(port)
    try:
        stream_id = attacker.request("POST", "/upload", end_stream=False)
        attacker.write_raw(frame(0x0, 0x0, stream_id) * 5000)
        await assert_served(port)
        await assert_goaway(attacker, ENHANCE_YOUR_CALM)
    finally:
        await attacker.close()
    # Empty DATA frames never reached the application as messages.
    assert all(message["body"] for message in received)


async def test_window_that_never_opens(serve: Any) -> None:
    chunks_sent = 0
    disconnected = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal chunks_sent
        if scope["path"] != "/stream":
            await Counting()(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
                chunks_sent += 1
        except OSError:
            disconnected.set()

    server = await serve(app, write_timeout=1)
    port = servers.port_of(server)
    # Windows of 0: the server may send no DATA at all until the client opens them.
    attacker = await H2Client.connect(port, settings={SettingCodes.INITIAL_WINDOW_SIZE: 0})
    try:
        stream_id = attacker.request("GET", "/stream")
        await attacker.wait_for(lambda: attacker.streams[stream_id].status == 200)
        # The application's send() waits (back-pressure): its first chunk is
        # all the server holds for the stream.
        await assert_served(port)
        assert chunks_sent == 0
        assert not attacker.streams[stream_id].body
        # The write timeout drops the connection that opens no window.
        await attacker.closed(timeout=10)
    finally:
        await attacker.close()
    await asyncio.wait_for(disconnected.wait(), 10)
    await assert_served(port)
