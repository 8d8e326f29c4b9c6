"""Compressed WebSockets (permessage-deflate, RFC 7692) over real sockets.

The clients are autobahn's (an independent implementation, with its own
permessage-deflate) and raw sockets with zlib, for what a well-behaved
client would not send. Every test runs on both event loops and both HTTP
parsers (the ``serve`` fixture).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib
import struct
import tracemalloc
import zlib
from types import SimpleNamespace
from typing import Any

import pytest

pytestmark = pytest.mark.asyncio

ANSWER = b"permessage-deflate; server_no_context_takeover; client_no_context_takeover"


async def _open(
    port: int, *extensions: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """A raw WebSocket handshake offering *extensions*; the reader, writer and response head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        + b"".join(b"Sec-WebSocket-Extensions: " + value + b"\r\n" for value in extensions)
        + b"\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return reader, writer, head


def _header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


# conftest.py has loaded the support package under this name.
_masked = importlib.import_module("channels_server_test_support.frames").client_frame


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One frame from the server (unmasked): its first byte and its payload."""
    first, length = await asyncio.wait_for(reader.readexactly(2), 5)
    length &= 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return first, await asyncio.wait_for(reader.readexactly(length), 5)


@pytest.mark.parametrize(
    ("offers", "answer"),
    [
        ((), None),
        # Chrome's and Firefox's offer.
        ((b"permessage-deflate; client_max_window_bits",), ANSWER),
        (
            (b"permessage-deflate; server_max_window_bits=10",),
            ANSWER + b"; server_max_window_bits=10",
        ),
        # Alternatives, over two header fields: the first acceptable one wins.
        (
            (
                b"permessage-deflate; server_max_window_bits=20",
                b"permessage-deflate; server_max_window_bits=9, permessage-deflate",
            ),
            ANSWER + b"; server_max_window_bits=9",
        ),
        ((b"permessage-deflate; no_such_parameter",), None),
        ((b"x-webkit-deflate-frame",), None),
        # A header that does not parse is ignored: no compression, still a WebSocket.
        ((b'permessage-deflate; ;=; "',), None),
    ],
)
async def test_negotiation(
    serve: Any,
    apps: SimpleNamespace,
    http: SimpleNamespace,
    offers: tuple[bytes, ...],
    answer: bytes | None,
) -> None:
    server = await serve(apps.echo)
    reader, writer, head = await _open(http.port_of(server), *offers)
    try:
        assert head.startswith(b"HTTP/1.1 101 ")
        assert _header(head, b"sec-websocket-extensions") == answer
        writer.write(_masked(0x81, b"still a websocket"))
        assert await _read_frame(reader) == (0x81, b"still a websocket")
    finally:
        writer.close()


async def test_switched_off_nothing_is_negotiated(
    serve: Any, apps: SimpleNamespace, http: SimpleNamespace
) -> None:
    server = await serve(apps.echo, ws_per_message_deflate=False)
    reader, writer, head = await _open(http.port_of(server), b"permessage-deflate")
    try:
        assert head.startswith(b"HTTP/1.1 101 ")
        assert _header(head, b"sec-websocket-extensions") is None
        writer.write(_masked(0x81, b"x" * 1000))
        assert await _read_frame(reader) == (0x81, b"x" * 1000)
        # A compressed frame where nothing was agreed breaks RFC 6455 §5.2.
        writer.write(_masked(0xC1, _deflate(b"x" * 1000)))
        first, payload = await _read_frame(reader)
        assert (first, payload[:2]) == (0x88, (1002).to_bytes(2, "big"))
    finally:
        writer.close()


async def test_compressed_frames_both_ways_on_the_wire(
    serve: Any, apps: SimpleNamespace, http: SimpleNamespace
) -> None:
    server = await serve(apps.echo)
    reader, writer, head = await _open(http.port_of(server), b"permessage-deflate")
    try:
        assert _header(head, b"sec-websocket-extensions") == ANSWER
        text = "compressed both ways; " * 200
        writer.write(_masked(0xC1, _deflate(text.encode())))
        first, payload = await _read_frame(reader)
        assert first == 0xC1  # FIN, RSV1 (compressed), text
        assert len(payload) < len(text) // 10
        # server_no_context_takeover: a fresh decompressor for each message.
        inflated = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        assert inflated.decode() == text
        writer.write(_masked(0x82, b"short and plain"))
        assert await _read_frame(reader) == (0x82, b"short and plain")
    finally:
        writer.close()


async def _autobahn_client(port: int, offers: list[Any]) -> tuple[Any, asyncio.Queue[Any]]:
    from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol
    from autobahn.websocket.compress import (
        PerMessageDeflateResponse,
        PerMessageDeflateResponseAccept,
    )

    loop = asyncio.get_running_loop()
    opened: asyncio.Future[Any] = loop.create_future()
    received: asyncio.Queue[Any] = asyncio.Queue()

    class Protocol(WebSocketClientProtocol):  # type: ignore[misc]
        def onOpen(self) -> None:
            opened.set_result(self)

        def onMessage(self, payload: bytes, is_binary: bool) -> None:
            received.put_nowait(payload if is_binary else payload.decode("utf-8"))

    def accept(response: Any) -> Any:
        if isinstance(response, PerMessageDeflateResponse):
            return PerMessageDeflateResponseAccept(response)
        return None

    factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}/")
    factory.setProtocolOptions(
        perMessageCompressionOffers=offers, perMessageCompressionAccept=accept
    )
    factory.protocol = Protocol
    await loop.create_connection(factory, "127.0.0.1", port)
    return await asyncio.wait_for(opened, 5), received


@pytest.mark.parametrize("server_window", [0, 9, 15])
async def test_round_trip_with_an_independent_client(
    serve: Any, apps: SimpleNamespace, http: SimpleNamespace, server_window: int
) -> None:
    from autobahn.websocket.compress import PerMessageDeflateOffer

    server = await serve(apps.echo)
    offer = PerMessageDeflateOffer(
        accept_no_context_takeover=True,
        accept_max_window_bits=True,
        request_max_window_bits=server_window,
    )
    client, received = await _autobahn_client(http.port_of(server), [offer])
    try:
        agreed = client._perMessageCompress
        assert agreed is not None, "permessage-deflate was not negotiated"
        assert agreed.server_no_context_takeover
        assert agreed.client_no_context_takeover
        messages: list[str | bytes] = [
            "tiny",
            "ünïcode text, " * 500,
            bytes(range(100)) * 500,
            b"",
            '{"type": "chat.message", "text": "hello"}' * 1000,
        ]
        for message in messages:
            if isinstance(message, str):
                client.sendMessage(message.encode("utf-8"), isBinary=False)
            else:
                client.sendMessage(message, isBinary=True)
        for message in messages:
            assert await asyncio.wait_for(received.get(), 5) == message
        stats = client.trafficStats
        app_bytes = sum(len(m.encode() if isinstance(m, str) else m) for m in messages)
        # Compressed on the way there and on the way back.
        assert stats.outgoingOctetsWebSocketLevel < app_bytes // 4
        assert stats.incomingOctetsWebSocketLevel < app_bytes // 4
    finally:
        client.sendClose(1000)


@functools.cache
def _bomb() -> bytes:
    """A binary frame of 64 MiB of zeros, deflated to about 64 KiB."""
    frame = _masked(0xC2, _deflate(bytes(64 << 20)))
    assert len(frame) < 100_000
    return frame


async def test_a_compression_bomb_is_closed_with_1009_and_memory_stays_flat(
    serve: Any, apps: SimpleNamespace, http: SimpleNamespace
) -> None:
    limit = 1 << 20
    server = await serve(apps.echo, websocket_max_message_size=limit)
    port = http.port_of(server)
    # Another client, served all along.
    from autobahn.websocket.compress import PerMessageDeflateOffer

    other, other_received = await _autobahn_client(port, [PerMessageDeflateOffer()])
    bomb = _bomb()
    reader, writer, _head = await _open(port, b"permessage-deflate")
    gc.collect()
    tracemalloc.start()
    try:
        writer.write(bomb)
        other.sendMessage(b"still here" * 100, isBinary=True)
        first, payload = await _read_frame(reader)
        assert first == 0x88
        assert int.from_bytes(payload[:2], "big") == 1009
        assert await asyncio.wait_for(other_received.get(), 5) == b"still here" * 100
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        writer.close()
        other.sendClose(1000)
    # The bomb as read, the 1 MiB allowed and zlib's buffers; far from 64 MiB.
    assert peak < 3 * len(bomb) + 4 * limit


async def test_an_application_cannot_claim_an_extension(serve: Any, http: SimpleNamespace) -> None:
    errors: list[Exception] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        try:
            await send(
                {
                    "type": "websocket.accept",
                    "headers": [(b"sec-websocket-extensions", b"permessage-deflate")],
                }
            )
        except Exception as exc:
            errors.append(exc)
            raise

    server = await serve(app)
    _reader, writer, head = await _open(http.port_of(server), b"permessage-deflate")
    writer.close()
    assert head.startswith(b"HTTP/1.1 500 ")
    assert "sec-websocket-extensions" in str(errors[0])
