"""Compressed WebSockets: permessage-deflate (RFC 7692), without I/O.

Three parts, each used by :mod:`channels_server.protocol.websocket`:

* :func:`negotiate_deflate` reads the client's ``Sec-WebSocket-Extensions``
  (RFC 6455 §9.1 syntax) and accepts the first permessage-deflate offer it can
  honour (RFC 7692 §7.1); a header that does not parse is ignored as a whole,
  and the connection goes on uncompressed (the header is optional, and
  refusing the handshake over it would only break a client that could
  have worked without compression).
* :class:`InboundDeflate` is wsproto's ``PerMessageDeflate`` extension for the
  frame parser, with inflation bounded by the message size limit.
* :func:`compress_message` compresses what the server sends.

**Memory.** The server answers every offer with ``server_no_context_takeover``
and ``client_no_context_takeover``, which RFC 7692 lets it add whatever the
client offered (§7.1.1.1, §7.1.1.2): no message refers to an earlier one, so
no zlib object outlives a message. With context takeover each socket would
keep a compressor (about 260 KiB with zlib's defaults, 40 KiB with a 4 KiB
window and memLevel 5) and a decompressor (40 KiB, or 11 KiB) for as long as
it is open, however idle. Here a decompressor is made for each compressed
message the client sends and dropped at its end, and every message the
server sends goes through one compressor per thread (and window size),
reset after each message with ``Z_FULL_FLUSH``, after which zlib's output
never refers back: each message is compressed as by a fresh compressor,
without the 60 µs it takes to make one. Messages shorter than
:data:`COMPRESS_MIN_SIZE` are sent uncompressed (§6 allows it): with no
context to draw on they would hardly shrink. zlib's fastest level is used
(see ``_LEVEL``).

**Bombs.** A few kilobytes of deflate can inflate to gigabytes. Inflation is
bounded as the frames arrive: no call to zlib may return more than what is
left of the message size limit, plus one byte to tell that it is over, and a
message over the limit fails the connection with 1009 before anything more
is inflated.
"""

from __future__ import annotations

import re
import threading
import zlib
from functools import cache
from typing import Final

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

__all__ = [
    "COMPRESS_MIN_SIZE",
    "DeflateAgreement",
    "InboundDeflate",
    "compress_message",
    "negotiate_deflate",
    "parse_extensions",
]

#: Messages the server sends uncompressed below this many bytes: without
#: context takeover a short message does not shrink (a 113-byte JSON message
#: loses 15%, a 77-byte one nothing) and compressing one costs about 10 µs.
COMPRESS_MIN_SIZE: Final = 128

_NAME: Final = "permessage-deflate"
# RFC 7692 §7.2.1: a compressed message is the deflate output without this tail.
_TAIL: Final = b"\x00\x00\xff\xff"
# zlib's fastest level: on autobahn's 128 KiB samples 2.5 to 4.5 times the
# speed of its default (6) on text and JSON, for output 10-15% larger; a
# server's CPU is shared by every socket, the bytes saved are the client's.
_LEVEL: Final = 1
# The client's window is at most 2**15 (§7.1.2.2); a window that large
# inflates anything a smaller one made.
_INFLATE_WINDOW_BITS: Final = 15


class DeflateAgreement:
    """What the server accepted: the response header value, and its own window."""

    __slots__ = ("response", "server_window_bits")

    def __init__(self, server_window_bits: int | None) -> None:
        value = f"{_NAME}; server_no_context_takeover; client_no_context_takeover"
        if server_window_bits is not None:
            value += f"; server_max_window_bits={server_window_bits}"
        #: The ``Sec-WebSocket-Extensions`` value of the 101 response.
        self.response = value.encode("ascii")
        #: The largest window the server may compress with (log2).
        self.server_window_bits = 15 if server_window_bits is None else server_window_bits

    def __repr__(self) -> str:
        return f"<DeflateAgreement {self.response.decode('ascii')}>"


@cache
def _agreement(server_window_bits: int | None) -> DeflateAgreement:
    # Eight possible agreements, shared by every socket.
    return DeflateAgreement(server_window_bits)


# -- Sec-WebSocket-Extensions --------------------------------------------------------------

# RFC 6455 §9.1 (with RFC 9110 §5.6 lists):
#   Sec-WebSocket-Extensions = 1#extension
#   extension = token *( ";" extension-param )
#   extension-param = token [ "=" (token | quoted-string) ]
_PIECE = re.compile(
    rb"[ \t]*(?:"
    rb"([-!#$%&'*+.^_`|~0-9a-zA-Z]+)"  # a token
    rb'|"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*)"'  # a quoted-string
    rb"|([,;=])"  # a separator
    rb")[ \t]*"
)
_UNESCAPE = re.compile(rb"\\(.)")

OfferedExtension = tuple[str, list[tuple[str, str | None]]]


def parse_extensions(value: bytes) -> list[OfferedExtension] | None:
    """The extensions a ``Sec-WebSocket-Extensions`` value offers, in order.

    Each is its name and its parameters (name, value or ``None``), names in
    lower case; ``None`` if *value* breaks the RFC 6455 §9.1 syntax.
    """
    pieces: list[tuple[int, str]] = []  # (kind, text); kind 0 token, 1 quoted, 2 separator
    position = 0
    end = len(value)
    while position < end:
        match = _PIECE.match(value, position)
        if match is None or match.end() == position:
            return None
        token, quoted, separator = match.groups()
        if token is not None:
            pieces.append((0, token.decode("ascii")))
        elif quoted is not None:
            pieces.append((1, _UNESCAPE.sub(rb"\1", quoted).decode("latin-1")))
        else:
            pieces.append((2, separator.decode("ascii")))
        position = match.end()
    extensions: list[OfferedExtension] = []
    index = 0
    count = len(pieces)
    while index < count:
        kind, text = pieces[index]
        if kind == 2 and text == ",":
            index += 1  # An empty list element (RFC 9110 §5.6.1).
            continue
        if kind != 0:
            return None
        parameters: list[tuple[str, str | None]] = []
        extensions.append((text.lower(), parameters))
        index += 1
        while index < count and pieces[index] == (2, ";"):
            if index + 1 >= count or pieces[index + 1][0] != 0:
                return None
            name = pieces[index + 1][1].lower()
            index += 2
            if index < count and pieces[index] == (2, "="):
                if index + 1 >= count or pieces[index + 1][0] == 2:
                    return None
                parameters.append((name, pieces[index + 1][1]))
                index += 2
            else:
                parameters.append((name, None))
        if index < count and pieces[index] != (2, ","):
            return None
    return extensions


_WINDOW_BITS = re.compile(r"8|9|1[0-5]")


def _acceptable(parameters: list[tuple[str, str | None]]) -> tuple[bool, int | None]:
    """Whether the server can accept an offer (RFC 7692 §7), and the server window it asks for."""
    seen: set[str] = set()
    server_window_bits: int | None = None
    for name, value in parameters:
        # §7: an offer with a parameter twice, an unknown one, or a bad value is declined.
        if name in seen:
            return False, None
        seen.add(name)
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                return False, None
        elif name == "server_max_window_bits":
            # §7.1.2.1: a value is required.
            if value is None or not _WINDOW_BITS.fullmatch(value):
                return False, None
            server_window_bits = int(value)
        elif name == "client_max_window_bits":
            # §7.1.2.2: the value is optional; the server answers nothing
            # about it and inflates with the largest window.
            if value is not None and not _WINDOW_BITS.fullmatch(value):
                return False, None
        else:
            return False, None
    return True, server_window_bits


def negotiate_deflate(offer: bytes) -> DeflateAgreement | None:
    """Accept the first permessage-deflate offer in *offer* the server can honour.

    *offer* is the client's ``Sec-WebSocket-Extensions`` (several headers
    joined with commas). ``None``: nothing accepted, no compression; also
    when the header does not parse. Every window the client may ask the
    server for is honoured (8 by Huffman coding alone, see
    :func:`compress_message`).
    """
    extensions = parse_extensions(offer)
    if not extensions:
        return None
    for name, parameters in extensions:
        if name != _NAME:
            continue
        acceptable, server_window_bits = _acceptable(parameters)
        if acceptable:
            return _agreement(server_window_bits)
    return None


# -- what the server sends -----------------------------------------------------------------


class _Compressors(threading.local):
    """Each thread's compressors, by window size (log2)."""

    def __init__(self) -> None:
        self.by_window: dict[int, zlib._Compress] = {}


_compressors = _Compressors()


def _compressor(window_bits: int) -> zlib._Compress:
    if window_bits == 8:
        # zlib's deflate has no 256-byte window (it makes 8 into 9); with no
        # string matching at all the output fits any window.
        return zlib.compressobj(_LEVEL, zlib.DEFLATED, -9, 8, zlib.Z_HUFFMAN_ONLY)
    return zlib.compressobj(_LEVEL, zlib.DEFLATED, -window_bits)


def compress_message(data: bytes, window_bits: int) -> bytes | None:
    """The compressed payload of a message (RFC 7692 §7.2.1), or ``None`` to send it as it is.

    No context is taken over: the output inflates alone, with a fresh
    decompressor. The compressor is this thread's for *window_bits*, reset
    after each message by a full flush.
    """
    compressors = _compressors.by_window
    compressor = compressors.get(window_bits)
    if compressor is None:
        compressor = compressors[window_bits] = _compressor(window_bits)
    try:
        compressed = compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)
    except BaseException:
        # Half-way through a message: no later message may see its state.
        del compressors[window_bits]
        raise
    if not compressed.endswith(_TAIL) or len(compressed) - 4 >= len(data):
        return None  # Did not shrink (or no flush marker): the message goes as it is.
    return compressed[:-4]


# -- what the client sends -----------------------------------------------------------------


class InboundDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate extension on the server's frame parser, bounded.

    Negotiation is :func:`negotiate_deflate`'s; this is made already enabled,
    with no context takeover either way. What wsproto's own class does
    differently, and why this one overrides it:

    * each chunk of a frame is inflated to at most what is left of
      *max_message_size* (plus one byte: more is over), where wsproto
      inflates a whole chunk at once (a compression bomb);
    * a control frame between the fragments of a compressed message leaves
      the message's state alone (wsproto's forgets the message was
      compressed, and passes the next fragments on still compressed);
    * the decompressor goes at the end of each message.

    What the server sends does not come through here (see
    :func:`compress_message`).
    """

    def __init__(self, max_message_size: int) -> None:
        super().__init__(client_no_context_takeover=True, server_no_context_takeover=True)
        self._enabled = True
        self._limit = max_message_size
        # Bytes inflated so far of the message being received.
        self._inflated = 0

    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> CloseReason | RsvBits:
        if opcode.iscontrol():
            # §6: RSV1 marks the first frame of a compressed data message only.
            self._inbound_is_compressible = False
            return CloseReason.PROTOCOL_ERROR if rsv.rsv1 else RsvBits(False, False, False)
        self._inbound_is_compressible = True
        if opcode is Opcode.CONTINUATION:
            if rsv.rsv1:
                return CloseReason.PROTOCOL_ERROR
        else:
            # The first frame of a message. (One that arrives in the middle
            # of another message is refused by the parser right after this.)
            self._inbound_compressed = rsv.rsv1
            self._inflated = 0
            self._decompressor = zlib.decompressobj(-_INFLATE_WINDOW_BITS) if rsv.rsv1 else None
        return RsvBits(True, False, False)

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        return self._inflate(data)

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        if not fin or not self._inbound_is_compressible:
            return None  # A fragment to be continued, or a control frame.
        compressed = self._inbound_compressed
        self._inbound_compressed = None
        if not compressed:
            return None
        # §7.2.2: the sender removed this tail; inflating it flushes the rest.
        data = self._inflate(_TAIL)
        self._decompressor = None
        self._inflated = 0  # (a small int: no object kept for an idle socket)
        return data

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        decompressor = self._decompressor
        assert decompressor is not None  # made with the message's first frame
        if decompressor.eof:
            # After a final block (BFINAL) nothing more belongs to the
            # message; zlib would keep it all as unused_data.
            return b""
        room = self._limit - self._inflated
        try:
            inflated = decompressor.decompress(data, room + 1)
        except zlib.error:
            self._decompressor = None
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        if len(inflated) > room:
            self._decompressor = None
            return CloseReason.MESSAGE_TOO_BIG
        self._inflated += len(inflated)
        return inflated
