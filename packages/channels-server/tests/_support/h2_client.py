"""An independent HTTP/2 client for the tests: h2's client side over a real socket.

h2c with prior knowledge (httpx speaks HTTP/2 only over TLS) or TLS with
ALPN ``h2``. Besides well-behaved requests it can write raw frames, so that
the attack tests can send what no real client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Iterable
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

__all__ = ["H2Client", "StreamResult"]


class StreamResult:
    """What came back on one stream."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.informational: list[int] = []
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.ended = False
        #: The RST_STREAM error code the server sent, if it reset the stream.
        self.reset: int | None = None


class H2Client:
    """A client connection; make one with :meth:`connect`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        settings: dict[int, int] | None,
        auto_ack: bool,
    ) -> None:
        self.reader = reader
        self.writer = writer
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        if settings:
            self.conn.local_settings.update(settings)  # type: ignore[arg-type]
            self.conn.local_settings.acknowledge()
        self.conn.initiate_connection()
        self.auto_ack = auto_ack
        self.streams: dict[int, StreamResult] = {}
        # Request bodies still waiting for the server's window: (rest, end_stream).
        self._pending: dict[int, tuple[memoryview, bool]] = {}
        #: The error code of the server's GOAWAY, once received.
        self.goaway: int | None = None
        self.goaway_last_stream: int | None = None
        #: The socket was closed by the server.
        self.eof = False
        self.remote_settings_seen = False
        self.pings_acknowledged = 0
        self._changed = asyncio.Event()
        self._pump = asyncio.get_running_loop().create_task(self._read())
        self.flush()

    @classmethod
    async def connect(
        cls,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        settings: dict[int, int] | None = None,
        auto_ack: bool = True,
    ) -> H2Client:
        if tls is not None:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=tls, server_hostname="localhost"
            )
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer, settings, auto_ack)
        await client.wait_for(lambda: client.remote_settings_seen or client.eof)
        return client

    # -- sending -----------------------------------------------------------------------------

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    def write_raw(self, data: bytes) -> None:
        """Bytes straight to the socket (frames h2's client side would not send)."""
        if not self.writer.is_closing():
            self.writer.write(data)

    def request(
        self,
        method: str = "GET",
        path: str = "/",
        headers: Iterable[tuple[bytes, bytes]] = (),
        body: bytes | None = None,
        *,
        end_stream: bool = True,
        extra_pseudo: Iterable[tuple[bytes, bytes]] = (),
    ) -> int:
        """Start a request; send *body* (flow control permitting: see :meth:`send_body`)."""
        stream_id = self.conn.get_next_available_stream_id()
        fields = [
            (b":method", method.encode()),
            (b":scheme", b"http"),
            (b":authority", b"localhost"),
            (b":path", path.encode()),
            *extra_pseudo,
            *headers,
        ]
        self.streams[stream_id] = StreamResult()
        ends_now = end_stream and not body
        self.conn.send_headers(stream_id, fields, end_stream=ends_now)
        self.flush()
        if body:
            self._pending[stream_id] = (memoryview(body), end_stream)
            self._send_pending()
        return stream_id

    def _send_pending(self) -> None:
        pending = self._pending
        for stream_id in list(pending):
            data, end = pending[stream_id]
            while data:
                window = min(
                    self.conn.local_flow_control_window(stream_id),
                    self.conn.max_outbound_frame_size,
                )
                if window <= 0:
                    break
                piece, data = data[:window], data[window:]
                self.conn.send_data(stream_id, bytes(piece), end_stream=end and not data)
            if data:
                pending[stream_id] = (data, end)
            else:
                del pending[stream_id]
        self.flush()

    def send_body(self, stream_id: int, body: bytes, *, end_stream: bool = True) -> None:
        self._pending[stream_id] = (memoryview(body), end_stream)
        self._send_pending()

    def body_sent(self, stream_id: int) -> bool:
        return stream_id not in self._pending

    def reset(self, stream_id: int, code: int = 8) -> None:
        self.conn.reset_stream(stream_id, code)
        self.flush()

    # -- receiving ---------------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                try:
                    events = self.conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    # Whatever the server sends after its GOAWAY: the test looks at .goaway.
                    events = []
                for event in events:
                    self._on_event(event)
                self._send_pending()
                self.flush()
                self._changed.set()
        except (ConnectionError, OSError):
            pass
        finally:
            self.eof = True
            self._changed.set()

    def _on_event(self, event: Any) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            result = self.streams.setdefault(event.stream_id, StreamResult())
            for name, value in event.headers:
                if name == b":status":
                    result.status = int(value)
                else:
                    result.headers.append((name, value))
        elif isinstance(event, h2.events.InformationalResponseReceived):
            for name, value in event.headers:
                if name == b":status":
                    self.streams[event.stream_id].informational.append(int(value))
        elif isinstance(event, h2.events.DataReceived):
            result = self.streams.setdefault(event.stream_id, StreamResult())
            result.body += event.data
            if self.auto_ack and event.flow_controlled_length:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self.streams.setdefault(event.stream_id, StreamResult()).ended = True
        elif isinstance(event, h2.events.StreamReset):
            self.streams.setdefault(event.stream_id, StreamResult()).reset = int(event.error_code)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = int(event.error_code)
            self.goaway_last_stream = event.last_stream_id
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.remote_settings_seen = True
        elif isinstance(event, h2.events.PingAckReceived):
            self.pings_acknowledged += 1

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 10) -> None:
        """Wait until *condition()* holds (raises TimeoutError after *timeout*).

        Checked again whenever the client receives something, and every 10 ms:
        a condition on the server's state can change without a frame arriving.
        """

        async def waiting() -> None:
            while not condition():
                self._changed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.01)

        await asyncio.wait_for(waiting(), timeout)

    async def response(self, stream_id: int, timeout: float = 10) -> StreamResult:
        """The stream's response once it ended (or was reset)."""
        result = self.streams[stream_id]
        await self.wait_for(lambda: result.ended or result.reset is not None or self.eof, timeout)
        return result

    async def get(self, path: str = "/", timeout: float = 10, **options: Any) -> StreamResult:
        return await self.response(self.request("GET", path, **options), timeout)

    async def ping(self, timeout: float = 10) -> None:
        """A PING, answered: the server has handled everything sent before it."""
        expected = self.pings_acknowledged + 1
        self.conn.ping(b"%08d" % expected)
        self.flush()
        await self.wait_for(lambda: self.pings_acknowledged >= expected, timeout)

    async def closed(self, timeout: float = 10) -> None:
        """Wait until the server closes the connection."""
        await self.wait_for(lambda: self.eof, timeout)

    async def close(self) -> None:
        self._pump.cancel()
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
        try:
            await self._pump
        except asyncio.CancelledError:
            pass
