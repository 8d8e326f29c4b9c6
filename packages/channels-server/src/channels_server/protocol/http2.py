"""The HTTP/2 engine, without I/O (RFC 9113), on python-hyper's h2 state machine.

:class:`HTTP2Connection` takes the bytes a client sends and returns events
(:class:`RequestReceived`, :class:`BodyReceived`, :class:`RequestEnded`,
:class:`StreamCancelled`, :class:`ConnectionEnded`); responses go in as
calls (:meth:`~HTTP2Connection.respond`, :meth:`~HTTP2Connection.send_data`,
:meth:`~HTTP2Connection.end_stream`) and come out of
:meth:`~HTTP2Connection.data_to_send` as frames. The transport
(``transport/http2.py``) does the socket work and runs the ASGI streams.

Flow control, both ways:

* outbound, each stream has a queue: body bytes leave it as DATA frames only
  within the client's stream and connection windows (and only while the
  transport says it is writable). :meth:`~HTTP2Connection.pending` tells the
  transport how much a stream still holds, and :attr:`~HTTP2Connection.drained`
  which streams emptied their queue, so that an application's ``send()``
  waits while its stream's window is shut;
* inbound, nothing is acknowledged (WINDOW_UPDATE) until the transport says
  the bytes are taken (:meth:`~HTTP2Connection.acknowledge`), so the
  client's window closes when the application is slow. A stream holds at
  most its window (:data:`STREAM_WINDOW`) of unacknowledged bytes.

On top of h2, the engine refuses each known HTTP/2 attack, closing the
connection with GOAWAY and the error code given here (the client's other
streams get ``http.disconnect``):

* **Rapid reset** (CVE-2023-44487): more than :data:`RESET_LIMIT` streams
  cancelled by the client (or refused by the server) within
  :data:`RESET_WINDOW` seconds: ENHANCE_YOUR_CALM. And a stream counts
  against ``max_concurrent_streams`` until its response has ended or, if the
  client reset it first, until its application task has
  (:meth:`~HTTP2Connection.release`): a new stream over the limit is refused
  with REFUSED_STREAM, so resets never leave more application tasks running
  than the limit. (A stream whose response has ended is closed for the
  client too, which may open the next one at once.)
* **CONTINUATION flood** (CVE-2024-27316 class): the frame headers are
  read before h2 sees the bytes, and a header block (HEADERS and its
  CONTINUATION frames) larger than ``max_header_size`` (plus the padding a
  HEADERS frame may carry) or in more than :data:`MAX_CONTINUATIONS` frames
  ends the connection with ENHANCE_YOUR_CALM before it is buffered further;
  a frame longer than the SETTINGS_MAX_FRAME_SIZE the server announced ends
  it with FRAME_SIZE_ERROR before its payload is buffered.
* **HPACK bombs**: the decoded header list is bounded by
  SETTINGS_MAX_HEADER_LIST_SIZE (``max_header_size``), enforced by the
  decoder as it inflates (h2 answers ENHANCE_YOUR_CALM), and the decoder's
  dynamic table by the SETTINGS_HEADER_TABLE_SIZE the server announced
  (:data:`HEADER_TABLE_SIZE`; a client that asks for more is answered
  COMPRESSION_ERROR by h2). Headers beyond ``max_header_count`` are a 431.
* **Control-frame floods** (SETTINGS, PING, PRIORITY, WINDOW_UPDATE,
  RST_STREAM, empty DATA, unknown frames): each costs a token from a bucket of
  :data:`CONTROL_BURST` tokens refilled at :data:`CONTROL_RATE` per second
  (and by two for every frame the server sends, which a client may
  legitimately answer with WINDOW_UPDATEs): an empty bucket is
  ENHANCE_YOUR_CALM. A client that does not read the replies its frames
  call for is handled by the transport, which stops reading while its
  write buffer is full.
* **A window that never opens**: a stream holds at most what its
  application is sending (the application's ``send()`` waits), and the
  transport's write timeout drops a connection that makes no progress.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterable
from http import HTTPStatus
from typing import Final

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.events import RequestReceived as H2RequestReceived
from h2.exceptions import ProtocolError as H2ProtocolError
from h2.exceptions import StreamClosedError
from h2.stream import StreamState

from ..errors import ApplicationError, HTTPProtocolError
from .http11 import KNOWN_METHODS, RequestHead, http_date
from .syntax import find_control_in_request_value, is_token, response_field

__all__ = [
    "CONNECTION_WINDOW",
    "CONTROL_BURST",
    "CONTROL_RATE",
    "HEADER_TABLE_SIZE",
    "MAX_CONTINUATIONS",
    "MAX_FRAME_SIZE",
    "PREFACE",
    "RESET_LIMIT",
    "RESET_WINDOW",
    "STREAM_WINDOW",
    "BodyReceived",
    "ConnectionEnded",
    "HTTP2Connection",
    "HTTP2Limits",
    "RequestEnded",
    "RequestReceived",
    "RequestRefused",
    "StreamCancelled",
]

#: What a client sends first (RFC 9113 §3.4); h2c with prior knowledge starts with it.
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: SETTINGS_INITIAL_WINDOW_SIZE: what a client may send on one stream before
#: the application has taken it (as ``BODY_HIGH_WATER`` on HTTP/1.1).
STREAM_WINDOW: Final = 65535
#: The connection's receive window, for all streams together.
CONNECTION_WINDOW: Final = 1024 * 1024
#: SETTINGS_MAX_FRAME_SIZE (the protocol's minimum, and default).
MAX_FRAME_SIZE: Final = 16384
#: SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table a client may fill (the default).
HEADER_TABLE_SIZE: Final = 4096
#: Most CONTINUATION frames after one HEADERS frame.
MAX_CONTINUATIONS: Final = 32
#: Streams the client may cancel (or the server refuse) within RESET_WINDOW seconds.
RESET_LIMIT: Final = 200
RESET_WINDOW: Final = 10.0
#: The control-frame budget: a burst of this many, refilled at CONTROL_RATE a second.
CONTROL_BURST: Final = 1000
CONTROL_RATE: Final = 100.0
# Bytes a HEADERS frame may add to its header block besides the block itself:
# a pad length byte, up to 255 bytes of padding and 5 of priority.
_HEADERS_FRAME_EXTRA: Final = 261

# Frame types (RFC 9113 §6) and flags, as the frame headers carry them.
_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
_PUSH_PROMISE, _PING, _GOAWAY, _WINDOW_UPDATE, _CONTINUATION = 0x5, 0x6, 0x7, 0x8, 0x9
_END_STREAM, _ACK, _END_HEADERS = 0x1, 0x1, 0x4
_KNOWN_FRAMES = frozenset(range(10))
_FRAME_HEADER = struct.Struct(">I B I")  # 24-bit length read as the top of 32 bits

_PHRASES = frozenset(status.value for status in HTTPStatus)

# Response headers that mean nothing in HTTP/2 (RFC 9113 §8.2.2): dropped.
_CONNECTION_HEADERS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)


class HTTP2Limits:
    """The server's limits, as the HTTP/2 engine applies them.

    :param max_concurrent_streams: SETTINGS_MAX_CONCURRENT_STREAMS, and the
        most application tasks one connection may have running.
    :param max_header_size: SETTINGS_MAX_HEADER_LIST_SIZE, the decoded header
        list (RFC 9113 §6.5.2 counts each field as name + value + 32), and the
        encoded header block.
    :param max_header_count: most header fields in a request (431 above).
    :param max_body_size: largest request body (413 above), or None.
    """

    __slots__ = ("max_body_size", "max_concurrent_streams", "max_header_count", "max_header_size")

    def __init__(
        self,
        max_concurrent_streams: int = 100,
        max_header_size: int = 16384,
        max_header_count: int = 100,
        max_body_size: int | None = None,
    ) -> None:
        self.max_concurrent_streams = max_concurrent_streams
        self.max_header_size = max_header_size
        self.max_header_count = max_header_count
        self.max_body_size = max_body_size


# -- events -------------------------------------------------------------------------------


class RequestReceived:
    """A request's headers, checked: the transport starts a stream for it.

    ``protocol`` is the ``:protocol`` of an extended CONNECT (RFC 8441),
    ``b"websocket"`` for a WebSocket, else None.
    """

    __slots__ = ("end_stream", "head", "protocol", "stream_id")

    def __init__(
        self, stream_id: int, head: RequestHead, end_stream: bool, protocol: bytes | None
    ) -> None:
        self.stream_id = stream_id
        self.head = head
        self.end_stream = end_stream
        self.protocol = protocol


class BodyReceived:
    """Body bytes; *size* (with padding) is what to acknowledge once they are taken."""

    __slots__ = ("data", "size", "stream_id")

    def __init__(self, stream_id: int, data: bytes, size: int) -> None:
        self.stream_id = stream_id
        self.data = data
        self.size = size


class RequestRefused:
    """A request the server answered itself with an error status (for the logs).

    *method* and *target* are what the request said, ``b"-"`` where it said nothing usable.
    """

    __slots__ = ("error", "method", "stream_id", "target")

    def __init__(
        self, stream_id: int, error: HTTPProtocolError, method: bytes, target: bytes
    ) -> None:
        self.stream_id = stream_id
        self.error = error
        self.method = method
        self.target = target


class RequestEnded:
    """The client has sent the whole request (trailers, if any, are dropped)."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class StreamCancelled:
    """The stream is gone (the client reset it, or h2 did for a stream error)."""

    __slots__ = ("error_code", "stream_id")

    def __init__(self, stream_id: int, error_code: int) -> None:
        self.stream_id = stream_id
        self.error_code = error_code


class ConnectionEnded:
    """The connection is over: close it once :meth:`~HTTP2Connection.data_to_send` is written.

    *error_code* is what the server sent in its GOAWAY (or the client in its
    own, when *by_client*); *reason* says why, for the log.
    """

    __slots__ = ("by_client", "error_code", "reason")

    def __init__(self, error_code: int, reason: str, *, by_client: bool = False) -> None:
        self.error_code = error_code
        self.reason = reason
        self.by_client = by_client


Event = (
    RequestReceived
    | RequestRefused
    | BodyReceived
    | RequestEnded
    | StreamCancelled
    | ConnectionEnded
)


class _Violation(Exception):
    """The client broke a limit that ends the connection."""

    def __init__(self, error_code: int, reason: str) -> None:
        super().__init__(reason)
        self.error_code = error_code
        self.reason = reason


# -- the parts ------------------------------------------------------------------------------


class _FrameScanner:
    """Reads the frame headers of what the client sends, before h2 buffers the payloads.

    h2 buffers a whole frame before it checks its length against
    SETTINGS_MAX_FRAME_SIZE, and up to 64 CONTINUATION frames of a header
    block: this sees each frame header as it arrives, so that an overlong
    frame or header block is refused before its bytes are held.
    """

    __slots__ = ("_block", "_continuations", "_head", "_max_block", "_preface_left", "_skip")

    def __init__(self, max_header_size: int) -> None:
        self._preface_left = len(PREFACE)
        self._head = b""  # a frame header split between two reads
        self._skip = 0  # payload bytes of the current frame still to come
        self._block = -1  # bytes of the header block in progress, -1 outside one
        self._continuations = 0
        self._max_block = max_header_size + _HEADERS_FRAME_EXTRA

    def scan(self, data: bytes) -> list[tuple[int, int, int, int]]:
        """The (type, flags, stream id, length) of each frame that starts in *data*.

        Raises :class:`_Violation` for a frame or header block over the limits.
        """
        frames: list[tuple[int, int, int, int]] = []
        position = 0
        size = len(data)
        if self._preface_left:
            taken = min(self._preface_left, size)
            self._preface_left -= taken
            position = taken
        while position < size:
            if self._skip:
                taken = min(self._skip, size - position)
                self._skip -= taken
                position += taken
                continue
            need = 9 - len(self._head)
            piece = data[position : position + need]
            position += len(piece)
            if len(piece) < need:
                self._head += piece
                break
            header = self._head + piece if self._head else piece
            self._head = b""
            length_and_type, flags, stream_id = _FRAME_HEADER.unpack(header)
            length = length_and_type >> 8
            kind = length_and_type & 0xFF
            stream_id &= 0x7FFFFFFF
            if length > MAX_FRAME_SIZE:
                raise _Violation(
                    ErrorCodes.FRAME_SIZE_ERROR,
                    f"a frame of {length} bytes (limit {MAX_FRAME_SIZE})",
                )
            self._check_block(kind, flags, length)
            self._skip = length
            frames.append((kind, flags, stream_id, length))
        return frames

    def _check_block(self, kind: int, flags: int, length: int) -> None:
        if kind in (_HEADERS, _PUSH_PROMISE):
            self._block = length
            self._continuations = 0
        elif kind == _CONTINUATION and self._block >= 0:
            self._block += length
            self._continuations += 1
            if self._continuations > MAX_CONTINUATIONS:
                raise _Violation(
                    ErrorCodes.ENHANCE_YOUR_CALM,
                    f"a header block in more than {MAX_CONTINUATIONS} CONTINUATION frames",
                )
        else:
            return  # (h2 refuses any other frame inside a header block.)
        if self._block > self._max_block:
            raise _Violation(
                ErrorCodes.ENHANCE_YOUR_CALM,
                f"a header block over {self._max_block} bytes (CONTINUATION flood)",
            )
        if flags & _END_HEADERS:
            self._block = -1


class _TokenBucket:
    """A budget of *burst* tokens refilled at *rate* a second (time comes from the caller)."""

    __slots__ = ("_burst", "_rate", "_stamp", "tokens")

    def __init__(self, burst: float, rate: float, now: float) -> None:
        self._burst = burst
        self._rate = rate
        self._stamp = now
        self.tokens = burst

    def refill(self, now: float, extra: float = 0.0) -> None:
        tokens = self.tokens + (now - self._stamp) * self._rate + extra
        self._stamp = now
        self.tokens = min(tokens, self._burst)


class _Outbound:
    """What one stream still has to send: body bytes, then the end of the stream."""

    __slots__ = ("chunks", "end", "size", "trailers")

    def __init__(self) -> None:
        self.chunks: deque[bytes | memoryview] = deque()
        self.size = 0
        #: END_STREAM goes out once the queue is empty.
        self.end = False
        #: Trailers to send (with END_STREAM) once the queue is empty.
        self.trailers: list[tuple[bytes, bytes]] | None = None


# -- the engine --------------------------------------------------------------------------------


class HTTP2Connection:
    """One HTTP/2 connection, server side, without I/O (see the module docstring).

    :param limits: the server's limits.
    :param server_name: the ``server`` response header value, or ``b""`` for none.
    :param now: the current time (the transport's clock), for the flood budgets.
    """

    def __init__(self, limits: HTTP2Limits, server_name: bytes, now: float) -> None:
        self.limits = limits
        self._server_name = server_name
        config = H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_inbound_headers=True,
            normalize_inbound_headers=True,
            # respond() checks every field itself (response_field, lower-case
            # names, no connection-specific ones): h2's second pass is skipped.
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        h2 = self._h2 = H2Connection(config=config)
        h2.local_settings.max_concurrent_streams = limits.max_concurrent_streams
        h2.local_settings.max_header_list_size = limits.max_header_size
        h2.local_settings.header_table_size = HEADER_TABLE_SIZE
        h2.local_settings.initial_window_size = STREAM_WINDOW
        h2.local_settings.max_frame_size = MAX_FRAME_SIZE
        h2.local_settings.enable_connect_protocol = 1
        # In force from the first frame, not only once the client has
        # acknowledged the SETTINGS (h2 would apply them only then).
        h2.local_settings.acknowledge()
        h2.decoder.max_header_list_size = limits.max_header_size
        h2.decoder.max_allowed_table_size = HEADER_TABLE_SIZE
        h2.initiate_connection()
        h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)  # 65535: the initial one
        self._scanner = _FrameScanner(limits.max_header_size)
        self._control = _TokenBucket(CONTROL_BURST, CONTROL_RATE, now)
        self._resets = 0
        self._resets_since = now
        self._frames_sent = 0
        #: Body bytes sent so far (the transport's write timeout watches it move).
        self.bytes_sent = 0
        self._outbound: dict[int, _Outbound] = {}
        #: Streams handed to the transport that count against the limit: their
        #: response has not ended, or the client reset them and their
        #: application task still runs.
        self.active: set[int] = set()
        # Streams whose request body is still coming (for 413 and the end of it).
        self._body_sizes: dict[int, int] = {}
        # Streams whose response head is sent and whose end is not.
        self._responding: set[int] = set()
        #: Streams whose queue emptied since the transport last looked.
        self.drained: set[int] = set()
        #: False while the transport's write buffer is full: DATA waits in the queues.
        self.writable = True
        #: Set once the connection is ending (GOAWAY sent or received).
        self.ended = False
        #: The last stream accepted after a graceful GOAWAY, or None before one.
        self._last_stream: int | None = None

    # -- input ------------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Bytes from the client; the events they caused."""
        if self.ended:
            return []
        try:
            self._check_frames(self._scanner.scan(data), now)
        except _Violation as violation:
            return [self._end(violation.error_code, violation.reason)]
        try:
            h2_events = self._h2.receive_data(data)
        except H2ProtocolError as exc:
            # h2 has queued its GOAWAY.
            self.ended = True
            return [ConnectionEnded(int(exc.error_code), str(exc) or type(exc).__name__)]
        events: list[Event] = []
        for event in h2_events:
            try:
                self._translate(event, now, events)
            except _Violation as violation:
                events.append(self._end(violation.error_code, violation.reason))
                break
            if events and type(events[-1]) is ConnectionEnded:
                break
        return events

    def _check_frames(self, frames: list[tuple[int, int, int, int]], now: float) -> None:
        if not frames:
            return
        bucket = self._control
        cost = 0
        for kind, flags, _stream_id, length in frames:
            if kind == _DATA:
                if length == 0 and not flags & _END_STREAM:
                    cost += 1
            elif kind in (_HEADERS, _CONTINUATION):
                pass  # Counted as streams; the header block has its own limits.
            elif kind in (_SETTINGS, _PING):
                if not flags & _ACK:
                    cost += 1
            elif kind != _GOAWAY:
                # PRIORITY, WINDOW_UPDATE, RST_STREAM, PUSH_PROMISE (an error h2 reports)
                # and frame types this server does not know (ignored, but not free).
                cost += 1
        if not cost:
            return
        sent = self._frames_sent
        self._frames_sent = 0
        bucket.refill(now, 2.0 * sent)
        bucket.tokens -= cost
        if bucket.tokens < 0:
            raise _Violation(
                ErrorCodes.ENHANCE_YOUR_CALM,
                "too many control frames (SETTINGS, PING, PRIORITY, WINDOW_UPDATE or empty DATA)",
            )

    def _translate(self, event: object, now: float, events: list[Event]) -> None:
        if isinstance(event, DataReceived):
            stream_id = event.stream_id
            size = event.flow_controlled_length
            received = self._body_sizes.get(stream_id)
            if received is None:
                # A stream the server has refused or answered: just reopen the window.
                if size:
                    self.acknowledge(stream_id, size)
            else:
                received += len(event.data)
                self._body_sizes[stream_id] = received
                limit = self.limits.max_body_size
                if limit is not None and received > limit:
                    self._body_sizes.pop(stream_id, None)
                    if size:
                        self.acknowledge(stream_id, size)
                    events.append(StreamCancelled(stream_id, ErrorCodes.CANCEL))
                    if stream_id in self._responding:
                        self.reset(stream_id, ErrorCodes.CANCEL)
                    else:
                        self.refuse(stream_id, HTTPProtocolError(413, "Request body too large"))
                else:
                    events.append(BodyReceived(stream_id, event.data, size))
            if event.stream_ended is not None:
                self._request_ended(stream_id, events)
        elif isinstance(event, H2RequestReceived):
            self._on_request(event, now, events)
        elif isinstance(event, StreamEnded):
            self._request_ended(event.stream_id, events)
        elif isinstance(event, TrailersReceived):
            # Trailers are not passed on (the www spec has no request trailers).
            if event.stream_ended is not None:
                self._request_ended(event.stream_id, events)
        elif isinstance(event, (WindowUpdated, RemoteSettingsChanged)):
            self.flush()
        elif isinstance(event, StreamReset):
            self._on_reset(event, now, events)
        elif isinstance(event, ConnectionTerminated):
            self.ended = True
            events.append(
                ConnectionEnded(
                    int(event.error_code or 0), "the client sent GOAWAY", by_client=True
                )
            )

    def _request_ended(self, stream_id: int, events: list[Event]) -> None:
        if self._body_sizes.pop(stream_id, None) is not None:
            events.append(RequestEnded(stream_id))

    def _on_reset(self, event: StreamReset, now: float, events: list[Event]) -> None:
        stream_id = event.stream_id
        self._body_sizes.pop(stream_id, None)
        self._drop_outbound(stream_id)
        events.append(StreamCancelled(stream_id, int(event.error_code)))
        if event.remote_reset:
            self._count_reset(now)

    def _count_reset(self, now: float) -> None:
        if now - self._resets_since > RESET_WINDOW:
            self._resets_since = now
            self._resets = 0
        self._resets += 1
        if self._resets > RESET_LIMIT:
            raise _Violation(
                ErrorCodes.ENHANCE_YOUR_CALM,
                f"more than {RESET_LIMIT} streams reset or refused in {RESET_WINDOW:g}s "
                "(rapid reset)",
            )

    def _on_request(self, event: H2RequestReceived, now: float, events: list[Event]) -> None:
        stream_id = event.stream_id
        end_stream = event.stream_ended is not None
        if self._last_stream is not None and stream_id > self._last_stream:
            # After a graceful GOAWAY: the client retries it elsewhere.
            self._reset(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        if len(self.active) >= self.limits.max_concurrent_streams:
            # Streams the client reset still have their application task.
            self._reset(stream_id, ErrorCodes.REFUSED_STREAM)
            self._count_reset(now)
            return
        try:
            head, protocol = self._request_head(event.headers, end_stream)
        except HTTPProtocolError as error:
            self.refuse(stream_id, error)
            fields = dict(event.headers)
            method = fields.get(b":method", b"-")
            events.append(RequestRefused(stream_id, error, method, fields.get(b":path", b"-")))
            return
        self.active.add(stream_id)
        if not end_stream:
            self._body_sizes[stream_id] = 0
        events.append(RequestReceived(stream_id, head, end_stream, protocol))

    def _request_head(
        self, headers: Iterable[tuple[bytes, bytes]], end_stream: bool
    ) -> tuple[RequestHead, bytes | None]:
        """The request as a :class:`RequestHead` (pseudo-header fields taken out).

        h2 has checked the pseudo-header fields (RFC 9113 §8.3) and refused
        connection-specific ones; the rest are the server's rules, as on HTTP/1.1.
        """
        method = path = authority = protocol = None
        fields: list[tuple[bytes, bytes]] = []
        content_length: bytes | None = None
        expect_continue = False
        has_host = False
        for name, value in headers:
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    path = value
                elif name == b":authority":
                    authority = value
                elif name == b":protocol":
                    protocol = value
                continue
            if name == b"content-length":
                if content_length is not None and content_length != value:
                    raise HTTPProtocolError(400, "Invalid or conflicting Content-Length")
                content_length = value
            elif name == b"expect":
                expect_continue = value.lower() == b"100-continue"
            elif name == b"host":
                has_host = True
            fields.append((name, value))
        if len(fields) > self.limits.max_header_count:
            raise HTTPProtocolError(431, "Too many header fields")
        if method is None or not is_token(method):
            raise HTTPProtocolError(400, "Malformed request")
        if method not in KNOWN_METHODS:
            raise HTTPProtocolError(501, "Method not implemented")
        if method == b"CONNECT" and protocol is None:
            raise HTTPProtocolError(501, "CONNECT tunnels are not supported")
        if protocol is not None and protocol != b"websocket":
            raise HTTPProtocolError(501, "Only the websocket protocol can be CONNECTed")
        if path is None:
            raise HTTPProtocolError(400, "Malformed request")
        values = b"".join([value for _, value in fields])
        if find_control_in_request_value(values) or find_control_in_request_value(path):
            raise HTTPProtocolError(400, "Control character in a header value")
        if authority is not None:
            if find_control_in_request_value(authority):
                raise HTTPProtocolError(400, "Control character in a header value")
            # www spec: :authority becomes the first header, as host, replacing any host.
            if has_host:
                fields = [item for item in fields if item[0] != b"host"]
            fields.insert(0, (b"host", authority))
        if content_length is not None:
            if not content_length.isdigit():
                raise HTTPProtocolError(400, "Invalid or conflicting Content-Length")
            limit = self.limits.max_body_size
            if limit is not None and int(content_length) > limit:
                raise HTTPProtocolError(413, "Request body too large")
        head = RequestHead(
            method,
            path,
            b"2",
            fields,
            True,
            expect_continue and not end_stream,
            None,
            not end_stream,
        )
        return head, protocol

    # -- output --------------------------------------------------------------------------------

    def respond(
        self,
        stream_id: int,
        status: int,
        headers: Iterable[tuple[bytes, bytes]],
        *,
        end_stream: bool,
        content_length: int | None = None,
    ) -> None:
        """Send a response head (HEADERS); body bytes follow with :meth:`send_data`.

        *content_length* is added unless the headers have one. Raises
        :class:`~channels_server.errors.ApplicationError` for a status or
        header that cannot be sent.
        """
        # Exactly an int: a bool or an IntEnum member is refused.
        if type(status) is not int or not 100 <= status <= 599:
            raise ApplicationError(
                f"Response status must be an int from 200 to 599, not {status!r}"
            )
        fields = [(b":status", b"%d" % status)]
        has_date = has_server = has_length = False
        try:
            items = iter(headers)
        except TypeError:
            raise ApplicationError(
                f"Response headers must be an iterable of (name, value) pairs, not {headers!r}"
            ) from None
        for item in items:
            name, value = response_field(item, "response header")
            name = name.lower()
            if name in _CONNECTION_HEADERS:
                continue  # RFC 9113 §8.2.2: connection-specific, meaningless here.
            if name == b"date":
                has_date = True
            elif name == b"server":
                has_server = True
            elif name == b"content-length":
                has_length = True
            fields.append((name, value))
        if content_length is not None and not has_length:
            fields.append((b"content-length", b"%d" % content_length))
        if not has_date:
            fields.append((b"date", http_date.value()))
        if not has_server and self._server_name:
            fields.append((b"server", self._server_name))
        if self._stream_open(stream_id):
            self._h2.send_headers(stream_id, fields, end_stream=end_stream)
            self._frames_sent += 1
            self._responding.add(stream_id)
        if end_stream:
            self._stream_done(stream_id)

    def send_continue(self, stream_id: int) -> None:
        """``100 Continue`` (RFC 9110 §15.2.1): the client may send the body it holds back."""
        if self._stream_open(stream_id):
            self._h2.send_headers(stream_id, [(b":status", b"100")])
            self._frames_sent += 1

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Queue body bytes (and, with *end_stream*, the end of the stream); sent within windows."""
        if not self._stream_open(stream_id):
            return
        outbound = self._outbound.get(stream_id)
        if outbound is None:
            outbound = self._outbound[stream_id] = _Outbound()
        if data:
            outbound.chunks.append(data)
            outbound.size += len(data)
        if end_stream:
            outbound.end = True
        self._flush_stream(stream_id, outbound)

    def send_trailers(self, stream_id: int, trailers: Iterable[tuple[bytes, bytes]]) -> None:
        """End the stream with trailers, after the queued body."""
        checked = []
        for item in trailers:
            name, value = response_field(item, "response trailer")
            checked.append((name.lower(), value))
        if not self._stream_open(stream_id):
            return
        outbound = self._outbound.get(stream_id)
        if outbound is None:
            outbound = self._outbound[stream_id] = _Outbound()
        outbound.end = True
        outbound.trailers = checked
        self._flush_stream(stream_id, outbound)

    def pending(self, stream_id: int) -> int:
        """Body bytes the stream has queued and not yet sent."""
        outbound = self._outbound.get(stream_id)
        return 0 if outbound is None else outbound.size

    def flush(self) -> None:
        """Send what the windows now allow, on every stream."""
        if not self._outbound or not self.writable:
            return
        for stream_id, outbound in list(self._outbound.items()):
            self._flush_stream(stream_id, outbound)
            if self._h2.outbound_flow_control_window <= 0:
                break

    def _flush_stream(self, stream_id: int, outbound: _Outbound) -> None:
        if not self.writable:
            return
        h2 = self._h2
        chunks = outbound.chunks
        while outbound.size:
            window = min(h2.local_flow_control_window(stream_id), h2.max_outbound_frame_size)
            if window <= 0:
                return
            first = chunks[0]
            if len(first) <= window:
                chunks.popleft()
                piece = first
            else:
                view = first if isinstance(first, memoryview) else memoryview(first)
                piece = view[:window]
                chunks[0] = view[window:]
            outbound.size -= len(piece)
            last = not outbound.size and outbound.end and outbound.trailers is None
            h2.send_data(stream_id, bytes(piece), end_stream=last)
            self._frames_sent += 1
            self.bytes_sent += len(piece)
            if last:
                self._outbound.pop(stream_id, None)
                self._stream_done(stream_id)
                self.drained.add(stream_id)
                return
        if outbound.end:
            if outbound.trailers is not None:
                h2.send_headers(stream_id, outbound.trailers, end_stream=True)
            else:
                h2.end_stream(stream_id)
            self._frames_sent += 1
            self._outbound.pop(stream_id, None)
            self._stream_done(stream_id)
        self.drained.add(stream_id)

    def _stream_open(self, stream_id: int) -> bool:
        """Whether the server may still send on the stream."""
        if self.ended:
            return False
        stream = self._h2.streams.get(stream_id)
        if stream is None:
            return False
        state = stream.state_machine.state
        return state is StreamState.OPEN or state is StreamState.HALF_CLOSED_REMOTE

    def _stream_done(self, stream_id: int) -> None:
        """The response has ended: a request body still coming is not wanted.

        RFC 9113 §8.1: the server asks the client to stop sending with
        RST_STREAM NO_ERROR after a complete response. The stream no longer
        counts against the limit: the client sees it closed.
        """
        self._responding.discard(stream_id)
        self.active.discard(stream_id)
        if self._body_sizes.pop(stream_id, None) is not None:
            self._reset(stream_id, ErrorCodes.NO_ERROR)

    def acknowledge(self, stream_id: int, size: int) -> None:
        """*size* bytes of the stream's body were taken: let the client send as much again."""
        if self.ended or not size:
            return
        try:
            self._h2.acknowledge_received_data(size, stream_id)
        except StreamClosedError:  # pragma: no cover - h2 acknowledges the connection part itself
            pass

    def reset(self, stream_id: int, error_code: int = ErrorCodes.CANCEL) -> None:
        """Abandon the stream (RST_STREAM), dropping what it had queued."""
        self._body_sizes.pop(stream_id, None)
        self._drop_outbound(stream_id)
        self._reset(stream_id, error_code)

    def _reset(self, stream_id: int, error_code: int) -> None:
        if self.ended:
            return
        stream = self._h2.streams.get(stream_id)
        if stream is not None and not stream.closed:
            self._h2.reset_stream(stream_id, error_code)

    def _drop_outbound(self, stream_id: int) -> None:
        self._responding.discard(stream_id)
        if self._outbound.pop(stream_id, None) is not None:
            self.drained.add(stream_id)

    def refuse(self, stream_id: int, error: HTTPProtocolError) -> None:
        """Answer a request with the error's status, in the application's place (or before it)."""
        code = error.status_code
        phrase = HTTPStatus(code).phrase if code in _PHRASES else ""
        text = f"{code} {phrase}\n{error.reason}\n" if error.reason else f"{code} {phrase}\n"
        body = text.encode("utf-8", "replace")
        self.respond(
            stream_id,
            error.status_code,
            [(b"content-type", b"text/plain; charset=utf-8")],
            end_stream=False,
            content_length=len(body),
        )
        self.send_data(stream_id, body, end_stream=True)

    def release(self, stream_id: int) -> None:
        """The stream's application task has ended: it no longer counts against the limit
        (if its response had not ended already)."""
        self.active.discard(stream_id)

    def stop_accepting(self) -> None:
        """Refuse new streams from now on (REFUSED_STREAM); those in flight go on."""
        if self._last_stream is None:
            self._last_stream = self._h2.highest_inbound_stream_id

    def goaway(self) -> None:
        """GOAWAY NO_ERROR naming the last stream served: the connection is closing."""
        if self.ended:
            return
        self.stop_accepting()
        self.ended = True
        self._h2.close_connection(ErrorCodes.NO_ERROR, last_stream_id=self._last_stream)

    def _end(self, error_code: int, reason: str) -> ConnectionEnded:
        self.ended = True
        self._h2.close_connection(error_code=error_code)
        return ConnectionEnded(int(error_code), reason)

    def data_to_send(self) -> bytes:
        """The frames to write to the client now."""
        return self._h2.data_to_send()

    @property
    def idle(self) -> bool:
        """No stream in flight (after a graceful GOAWAY, the connection can close)."""
        return not self.active and not self._outbound
