"""The WebSocket engine, without I/O (RFC 6455), on wsproto.

The opening handshake is checked on the request the HTTP engine already
parsed (:func:`validate_handshake`), and the bytes that followed the request
seed the frame parser: nothing is parsed twice. wsproto's
``FrameProtocol`` parses frames and validates UTF-8 and close codes; this
module tracks the close handshake (the states of wsproto's ``Connection``,
without its event queue and wrapper objects, which every open socket would
hold: 0.9 KiB, ``bench/server.py`` idle rows) and adds what an ASGI server
needs on top:

* whole messages: fragments are joined, and a message (or a single frame)
  over the size limit fails the connection with close code 1009 *before* it
  is buffered any further (the class of CVE-2026-44545). Each fragment but
  the last also counts :data:`FRAGMENT_COST` bytes toward the message limit,
  and a message in more than ``max_fragments`` frames is refused with 1009
  too, so that a stream of empty continuation frames is not free;
* pings are answered, and a close frame from the client is echoed (§5.5.1);
* a protocol violation becomes a close frame with the code §7.4.1 names
  (1002, or 1007 for invalid UTF-8).

Data frames the server sends are unmasked and never fragmented, so they are
written here directly: it costs a tenth of going through wsproto's generic
frame builder, and wsproto's outbound state only matters for fragmentation.
The parser itself is made when the client first sends something: a socket
that only receives (or has just opened) holds none (0.65 KiB).

With permessage-deflate (RFC 7692, :mod:`.deflate`) the parser carries the
extension that inflates what the client sends, bounded by the message size
limit, and the frames the server sends are compressed here; the sizes and
limits above count inflated bytes, as the application receives them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable
from typing import Final, cast

from wsproto.connection import ConnectionState
from wsproto.extensions import Extension
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed
from wsproto.utilities import LocalProtocolError

from ..errors import ApplicationError, HTTPProtocolError
from .deflate import COMPRESS_MIN_SIZE, DeflateAgreement, InboundDeflate, compress_message
from .http11 import RequestHead, status_line
from .syntax import is_token, response_field

__all__ = [
    "FRAGMENT_COST",
    "MESSAGE_TOO_BIG",
    "CloseReceived",
    "ConnectionFailed",
    "Handshake",
    "ReceivedEvent",
    "WebSocketConnection",
    "accept_response",
    "validate_close_code",
    "validate_handshake",
]

#: RFC 6455 §7.4.1: "a message that is too big for it to process".
MESSAGE_TOO_BIG: Final = 1009
#: What each fragment of a message but the last counts toward the message
#: size limit, beyond its payload: about what keeping it costs (a list slot
#: and an object header), so that tiny fragments cannot hold more memory,
#: or take more parsing, than the limit allows for.
FRAGMENT_COST: Final = 64
_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handshake:
    """A valid opening handshake."""

    __slots__ = ("extensions", "key", "subprotocols")

    def __init__(self, key: bytes, subprotocols: list[str], extensions: bytes = b"") -> None:
        #: The client's Sec-WebSocket-Key.
        self.key = key
        #: The subprotocols the client offered, in its order of preference.
        self.subprotocols = subprotocols
        #: The extensions the client offered: its Sec-WebSocket-Extensions
        #: headers joined with commas, unparsed (``b""`` for none; see
        #: :func:`~channels_server.protocol.deflate.negotiate_deflate`).
        self.extensions = extensions


def validate_handshake(head: RequestHead) -> Handshake:
    """Check an upgrade request against RFC 6455 §4.2.1.

    Raises :class:`~channels_server.errors.HTTPProtocolError` with 400, or
    with 426 for a version other than 13 (§4.4: the response names the
    version the server speaks).
    """
    if head.method != b"GET":
        raise HTTPProtocolError(400, "WebSocket handshake must use GET")
    if head.http_version != b"1.1":
        raise HTTPProtocolError(400, "WebSocket handshake needs HTTP/1.1")
    keys, offered, extensions = read_offer(head)
    if len(keys) != 1:
        raise HTTPProtocolError(400, "WebSocket handshake needs exactly one Sec-WebSocket-Key")
    try:
        nonce = base64.b64decode(keys[0], validate=True)
    except (binascii.Error, ValueError):
        nonce = b""
    if len(nonce) != 16:
        # §4.1: the key is a base64-encoded 16-byte nonce.
        raise HTTPProtocolError(400, "Invalid Sec-WebSocket-Key")
    return Handshake(keys[0], offered, extensions)


def validate_extended_connect(head: RequestHead) -> Handshake:
    """Check an HTTP/2 extended CONNECT for a WebSocket (RFC 8441 §4 and §5).

    The ``:protocol`` is ``websocket`` already; there is no Sec-WebSocket-Key
    or Accept over HTTP/2, but Sec-WebSocket-Version must be 13 and the
    subprotocols and extensions are offered as over HTTP/1.1. Raises
    :class:`~channels_server.errors.HTTPProtocolError` (400, or 426 for
    another version, as on HTTP/1.1).
    """
    _, offered, extensions = read_offer(head)
    return Handshake(b"", offered, extensions)


def read_offer(head: RequestHead) -> tuple[list[bytes], list[str], bytes]:
    """The Sec-WebSocket-Key values, subprotocols and extensions a handshake offers.

    Both HTTP versions' handshakes read their fields here. Raises
    :class:`~channels_server.errors.HTTPProtocolError`: 426 unless the version
    is 13 (§4.4: the response names the version the server speaks), 400 for a
    subprotocol that is not a token.
    """
    keys: list[bytes] = []
    versions: list[bytes] = []
    offered: list[str] = []
    extensions: list[bytes] = []
    for name, value in head.headers:
        if name.startswith(b"sec-websocket-"):
            if name == b"sec-websocket-key":
                keys.append(value.strip())
            elif name == b"sec-websocket-version":
                versions.append(value.strip())
            elif name == b"sec-websocket-protocol":
                for token in value.split(b","):
                    token = token.strip()
                    if not token:
                        continue
                    if not is_token(token):
                        raise HTTPProtocolError(400, "Invalid WebSocket subprotocol")
                    offered.append(token.decode("ascii"))
            elif name == b"sec-websocket-extensions":
                # Parsed only if the application accepts (RFC 6455 §9.1).
                extensions.append(value)
    if versions != [b"13"]:
        raise HTTPProtocolError(426, "Unsupported Sec-WebSocket-Version (this server speaks 13)")
    return keys, offered, b", ".join(extensions)


def accept_response(
    handshake: Handshake,
    subprotocol: str | None,
    headers: Iterable[tuple[bytes, bytes]],
    server_header: bytes = b"",
    extensions: bytes = b"",
) -> bytes:
    """The 101 response that completes the handshake.

    *extensions* is the Sec-WebSocket-Extensions value the server agreed to
    (``b""``: none). Raises :class:`~channels_server.errors.ApplicationError`
    for a subprotocol the client did not offer (clients fail such a
    connection, §4.1) or an invalid extra header.
    """
    accept = base64.b64encode(hashlib.sha1(handshake.key + _GUID).digest())
    parts = [
        status_line(101),
        b"upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ",
        accept,
        b"\r\n",
    ]
    if subprotocol is not None:
        if not isinstance(subprotocol, str):
            raise ApplicationError(f"subprotocol must be a str or None, not {subprotocol!r}")
        if subprotocol not in handshake.subprotocols:
            raise ApplicationError(
                f"subprotocol {subprotocol!r} was not offered by the client "
                f"(offered: {handshake.subprotocols!r})"
            )
        parts += (b"sec-websocket-protocol: ", subprotocol.encode("ascii"), b"\r\n")
    if extensions:
        parts += (b"sec-websocket-extensions: ", extensions, b"\r\n")
    has_server = False
    for item in headers:
        name, value = response_field(item, "websocket.accept header")
        lower = name.lower()
        if lower == b"sec-websocket-protocol":
            raise ApplicationError(
                "websocket.accept headers must not include sec-websocket-protocol; "
                "use the 'subprotocol' key"
            )
        if lower in (b"upgrade", b"connection", b"sec-websocket-accept"):
            raise ApplicationError(f"websocket.accept headers must not set {name!r}")
        if lower == b"sec-websocket-extensions":
            # The client would then run an extension the server does not.
            raise ApplicationError(
                "websocket.accept headers must not set sec-websocket-extensions: the server "
                "negotiates extensions itself (permessage-deflate: --ws-per-message-deflate)"
            )
        if lower == b"server":
            has_server = True
        parts += (name, b": ", value, b"\r\n")
    if server_header and not has_server:
        parts.append(server_header)
    parts.append(b"\r\n")
    return b"".join(parts)


def validate_close_code(code: object) -> int:
    """Check a close code an application wants to send (RFC 6455 §7.4)."""
    # Exactly an int: a bool or an IntEnum member is refused.
    if type(code) is not int:
        raise ApplicationError(f"WebSocket close code must be an int, not {code!r}")
    # 1004-1006 and 1015 are reserved for reporting, never sent; 1016-2999
    # are reserved for future RFCs; 3000-4999 are for libraries and apps.
    if code in (1004, 1005, 1006, 1015) or not (1000 <= code <= 1014 or 3000 <= code <= 4999):
        raise ApplicationError(
            f"WebSocket close code {code} cannot be sent (use 1000-1003, 1007-1014 or 3000-4999)"
        )
    return code


class CloseReceived:
    """The client sent a close frame (already answered if it started the handshake)."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        # wsproto gives IntEnum members for known codes; ASGI messages carry plain ints.
        self.code = int(code)
        self.reason = reason


class ConnectionFailed:
    """The client broke the protocol or a limit; a close frame with ``code`` was produced."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        # wsproto gives IntEnum members for known codes; ASGI messages carry plain ints.
        self.code = int(code)
        self.reason = reason


#: What :meth:`WebSocketConnection.receive_data` reports: a text message
#: (``str``), a binary message (``bytes``), or the end of the connection.
#: (The events that move a WebSocket stream between its states are
#: :class:`~channels_server.asgi.websocket_stream.WebSocketEvent`.)
ReceivedEvent = str | bytes | CloseReceived | ConnectionFailed

_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack


def _frame(opcode_byte: int, payload: bytes) -> bytes:
    # RFC 6455 §5.2: FIN set, no RSV bits, unmasked (server to client).
    length = len(payload)
    if length < 126:
        return bytes((opcode_byte, length)) + payload
    if length < 65536:
        return _pack_short(opcode_byte, 126, length) + payload
    return _pack_long(opcode_byte, 127, length) + payload


class WebSocketConnection:
    """The server side of an established WebSocket connection.

    :param max_message_size: largest message accepted, in bytes (text counted as
        UTF-8, each fragment but the last counted :data:`FRAGMENT_COST` bytes more).
    :param max_frame_size: largest single frame accepted, in bytes.
    :param max_fragments: most frames one message may arrive in.
    :param deflate: the permessage-deflate agreement, if any.

    Bytes that arrived after the handshake request are fed with
    :meth:`receive_data` like any others.
    """

    __slots__ = (
        "_deflate",
        "_fragments",
        "_frame_size",
        "_frames",
        "_max_fragments",
        "_max_frame",
        "_max_message",
        "_message_size",
        "_parts",
        "_state",
    )

    def __init__(
        self,
        max_message_size: int,
        max_frame_size: int,
        max_fragments: int = 4096,
        deflate: DeflateAgreement | None = None,
    ) -> None:
        # The close handshake, in wsproto's terms: OPEN, LOCAL_CLOSING (our
        # close frame sent), REMOTE_CLOSING (theirs received), CLOSED.
        self._state = ConnectionState.OPEN
        # The parser, made on the first bytes received (see the module docstring).
        self._frames: FrameProtocol | None = None
        self._max_message = max_message_size
        self._max_frame = max_frame_size
        self._max_fragments = max_fragments
        self._parts: list[str] | list[bytes] | None = None
        self._message_size = 0
        self._frame_size = 0
        # Frames of the current message received whole so far.
        self._fragments = 0
        # Shared by every socket with the same agreement: no per-socket state.
        self._deflate = deflate

    @property
    def open(self) -> bool:
        """Whether data frames may still be sent (no close frame sent or received)."""
        return self._state is ConnectionState.OPEN

    @property
    def closed(self) -> bool:
        """Whether the close handshake is complete in both directions."""
        return self._state is ConnectionState.CLOSED

    def receive_data(self, data: bytes) -> tuple[list[ReceivedEvent], bytes]:
        """Parse received bytes: the events, and bytes to send back (pongs, close replies)."""
        state = self._state
        if state is not ConnectionState.OPEN and state is not ConnectionState.LOCAL_CLOSING:
            return [], b""  # Nothing the client sends after a close matters (§5.5.1).
        parser = self._frames
        if parser is None:
            parser = self._make_parser()
        parser.receive_bytes(data)
        events: list[ReceivedEvent] = []
        reply = b""
        try:
            for frame in parser.received_frames():
                opcode = frame.opcode
                if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                    payload: str | bytes = frame.payload  # type: ignore[assignment]
                    if opcode is Opcode.BINARY or payload.isascii():
                        size = len(payload)
                    else:
                        size = len(payload.encode("utf-8"))  # type: ignore[union-attr]
                    frame_size = self._frame_size + size
                    message_size = self._message_size + size
                    if frame_size > self._max_frame or message_size > self._max_message:
                        what = "frame" if frame_size > self._max_frame else "message"
                        limit = self._max_frame if what == "frame" else self._max_message
                        self._parts = None
                        return self._fail(
                            events, reply, MESSAGE_TOO_BIG, f"{what} over {limit} bytes"
                        )
                    if frame.message_finished:
                        self._frame_size = 0
                        parts = self._parts
                        if parts is not None:
                            parts.append(payload)  # type: ignore[arg-type]
                            payload = (
                                "".join(parts)  # type: ignore[arg-type]
                                if opcode is Opcode.TEXT
                                else b"".join(parts)  # type: ignore[arg-type]
                            )
                            self._parts = None
                        events.append(payload)
                        self._message_size = 0
                        self._fragments = 0
                        continue
                    if frame.frame_finished:
                        # A fragment of a message to come: it costs more than its payload.
                        self._frame_size = 0
                        self._fragments += 1
                        message_size += FRAGMENT_COST
                        if (
                            self._fragments >= self._max_fragments
                            or message_size > self._max_message
                        ):
                            self._parts = None
                            reason = (
                                f"message in more than {self._max_fragments} frames"
                                if self._fragments >= self._max_fragments
                                else f"message over {self._max_message} bytes"
                            )
                            return self._fail(events, reply, MESSAGE_TOO_BIG, reason)
                    else:
                        self._frame_size = frame_size
                    if payload:
                        if self._parts is None:
                            self._parts = []
                        self._parts.append(payload)  # type: ignore[arg-type]
                    self._message_size = message_size
                elif opcode is Opcode.PING:
                    # Answered while open; once our close frame is out, only
                    # the client's close is awaited (§5.5.1).
                    if self._state is ConnectionState.OPEN:
                        reply += parser.pong(frame.payload)  # type: ignore[arg-type]
                elif opcode is Opcode.CLOSE:
                    code, reason = cast("tuple[int, str]", frame.payload)
                    if self._state is ConnectionState.OPEN:
                        # §5.5.1: answer with a close frame echoing the status code.
                        reply += parser.close(code)
                    self._state = ConnectionState.CLOSED
                    events.append(CloseReceived(code, reason or ""))
                    break
                # (A pong needs nothing; wsproto yields no other frames.)
        except ParseFailed as exc:
            # The client broke the protocol: §7.4.1 names the code (1002, or
            # 1007 for invalid UTF-8), and wsproto gives it.
            self._parts = None
            if exc.code == MESSAGE_TOO_BIG:
                # Only the extension raises this: inflated, the message was over the limit.
                return self._fail(
                    events, reply, MESSAGE_TOO_BIG, f"message over {self._max_message} bytes"
                )
            return self._fail(events, reply, exc.code, str(exc))
        return events, reply

    def _make_parser(self) -> FrameProtocol:
        extensions: list[Extension] = (
            [] if self._deflate is None else [InboundDeflate(self._max_message)]
        )
        parser = self._frames = FrameProtocol(False, extensions)
        return parser

    def _fail(
        self, events: list[ReceivedEvent], reply: bytes, code: int, reason: str
    ) -> tuple[list[ReceivedEvent], bytes]:
        if self._state is ConnectionState.OPEN:
            reply += self._send_close(code, reason)
        events.append(ConnectionFailed(code, reason))
        return events, reply

    def _send_close(self, code: int, reason: str | None) -> bytes:
        # A parser that was never needed is made now: its close() checks the
        # code and fits the reason in a control frame.
        parser = self._frames
        if parser is None:
            parser = self._make_parser()
        frame = bytes(parser.close(code, reason))
        self._state = (
            ConnectionState.CLOSED
            if self._state is ConnectionState.REMOTE_CLOSING
            else ConnectionState.LOCAL_CLOSING
        )
        return frame

    def send_text(self, text: str) -> bytes:
        """A text frame (FIN, opcode 0x1; RSV1 too if compressed)."""
        data = text.encode("utf-8")
        deflate = self._deflate
        if deflate is not None and len(data) >= COMPRESS_MIN_SIZE:
            compressed = compress_message(data, deflate.server_window_bits)
            if compressed is not None:
                return _frame(0xC1, compressed)
        return _frame(0x81, data)

    def send_bytes(self, data: bytes) -> bytes:
        """A binary frame (FIN, opcode 0x2; RSV1 too if compressed)."""
        deflate = self._deflate
        if deflate is not None and len(data) >= COMPRESS_MIN_SIZE:
            compressed = compress_message(data, deflate.server_window_bits)
            if compressed is not None:
                return _frame(0xC2, compressed)
        return _frame(0x82, data)

    def ping(self, payload: bytes = b"") -> bytes:
        """A ping frame (FIN, opcode 0x9); only while open, as wsproto had it."""
        if self._state is not ConnectionState.OPEN:
            raise LocalProtocolError(f"Cannot send a ping in state {self._state}.")
        return _frame(0x89, payload)

    def close(self, code: int, reason: str = "") -> bytes:
        """The close frame that starts (or completes) the close handshake, or ``b""``."""
        state = self._state
        if state is not ConnectionState.OPEN and state is not ConnectionState.REMOTE_CLOSING:
            return b""
        return self._send_close(code, reason or None)

    def connection_lost(self) -> None:
        """The TCP connection ended: no close frame can be sent or received any more."""
        self._state = ConnectionState.CLOSED
