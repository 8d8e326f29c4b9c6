"""Hypothesis strategies for the live fuzz: hostile HTTP/1.1 requests and WebSocket frames.

Each strategy draws a *case*: the bytes one client sends on one connection,
already cut into the pieces it writes (so that every parser state can meet
the end of a read). The requests are built from parts that are each valid or
broken in one of the ways real clients and attackers break them (request
lines, header lines, framing headers, chunk sizes, line endings, stray empty
lines), then a few cases get byte-level damage on top.

Part of the test support package (``_support/__init__.py``); the live fuzz
(``fuzz/test_live_fuzz.py``) imports it at module level, for its ``@given``.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from .strategies import split_bytes

# -- HTTP: each part of a request, valid or broken ------------------------------------------------
#
# A request is built from parts; a draw picks which parts are broken (none in
# about half the requests, one or two otherwise), and each broken part comes
# from a list of the ways clients and attackers get it wrong. Valid values come
# first in every choice, so that hypothesis shrinks a failure towards a valid
# request with the fewest broken parts.

_TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PATH = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/"

# Bytes that break a line, a token or a value somewhere.
_NASTY = [
    b"\x00",
    b"\r",
    b"\n",
    b"\r\n",
    b" ",
    b"\t",
    b":",
    b"\x7f",
    b"\x80",
    b"\xff",
    b"\x0b",
    b"\x0c",
    b"%",
    b"%00",
    b"\xc3\xa9",
    b"\x85",
]

tokens = st.text(alphabet=_TOKEN, min_size=1, max_size=12).map(str.encode)
nasty = st.sampled_from(_NASTY)


@st.composite
def _with_nasty(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """*base* with one nasty byte sequence put inside it."""
    value = draw(base)
    position = draw(st.integers(0, len(value)))
    return value[:position] + draw(nasty) + value[position:]


# HEAD is left out: the tests frame every response as the answer to a GET (a
# HEAD response's Content-Length announces no body).
valid_methods = st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"])
broken_methods = st.one_of(
    st.sampled_from([b"CONNECT", b"TRACE", b"", b"get", b"G\x00T", b"GET\x85"]),
    _with_nasty(tokens),
    tokens.map(lambda token: token * 100),
)
valid_targets = st.text(alphabet=_PATH, max_size=30).map(
    lambda path: b"/" + path.encode()
) | st.text(alphabet=_PATH, max_size=10).map(lambda query: b"/q?" + query.encode())
broken_targets = st.one_of(
    st.sampled_from(
        [
            b"*",
            b"http://example.com/x",
            b"example.com:443",
            b"//double",
            b"",
            b"/a b",
            b"/%ZZ",
            b"/" + b"a" * 1100,
            b"/x#frag",
        ]
    ),
    _with_nasty(st.just(b"/x?y=1")),
)
valid_versions = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"])
broken_versions = st.sampled_from(
    [b"HTTP/2.0", b"HTTP/1.2", b"HTTP/0.9", b"http/1.1", b"HTTP/11", b"HTTP/1.1x", b"", b"HTTP/"]
)
# What ends a line: CRLF, or the endings RFC 9112 §2.2 lets a server reject.
broken_line_ends = st.sampled_from([b"\n", b"\r", b"\r\r\n", b"\n\r"])
broken_separators = st.sampled_from([b"  ", b"\t", b"", b" \x0b"])

_FRAMING = {b"content-length", b"transfer-encoding", b"host", b"connection", b"expect", b"upgrade"}
valid_header_names = tokens.filter(lambda name: name.lower() not in _FRAMING) | st.sampled_from(
    [b"Cookie", b"Accept", b"X-Forwarded-For", b"Daphne-Root-Path", b"Origin"]
)
broken_header_names = st.one_of(
    st.just(b""), _with_nasty(tokens), st.sampled_from([b"Host ", b" Host", b"X\x00Y"])
)
valid_header_values = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20
).map(str.encode) | st.just(b"a b\tc")
broken_header_values = st.one_of(
    _with_nasty(st.just(b"value")),
    st.sampled_from([b"x" * 5000, b"\xff\xfe", b"a\r\n b"]),
)
broken_header_separators = st.sampled_from([b" : ", b" ", b"::", b"\t:", b""])

valid_hosts = st.just([b"x"])
broken_hosts = st.sampled_from([[], [b"x", b"x"], [b"x", b"y"], [b"a b"], [b""], [b"x:1:2"]])

# Framing headers, valid and broken (RFC 9112 §6: what makes a request smuggleable).
broken_content_lengths = st.sampled_from(
    [
        b"-1",
        b"+5",
        b"0x10",
        b"5 5",
        b"5, 5",
        b"5,6",
        b"",
        b"99999999999999999999999",
        b"1e3",
        b"\xef\xbc\x95",
        b"4294967297",
    ]
)
broken_transfer_encodings = st.sampled_from(
    [
        b"gzip",
        b"gzip, chunked",
        b"chunked, gzip",
        b"chunked, chunked",
        b"identity",
        b"chunked\x0b",
        b"",
        b"xchunked",
        b"Chunked",
    ]
)
# A chunk-size line: hex, or what a smuggler sends instead (RFC 9112 §7.1).
broken_chunk_sizes = st.sampled_from(
    [
        b"-1",
        b"0x5",
        b" 5",
        b"5 ",
        b"5;",
        b"ffffffffffffffffffff",
        b"g",
        b"",
        b"5\x00",
        b"+5",
        b"00000000000000000000005",
    ]
)
valid_connections = st.sampled_from([b"keep-alive", b"close"])
broken_connections = st.sampled_from([b"upgrade", b"Upgrade, close", b"te", b"close\x00"])

# The parts a draw can break.
PARTS = (
    "method",
    "separator",
    "target",
    "version",
    "line_end",
    "host",
    "header_name",
    "header_separator",
    "header_value",
    "obs_fold",
    "content_length",
    "transfer_encoding",
    "both_framings",
    "chunk_size",
    "chunk_data",
    "body_length",
    "connection",
    "expect",
)


@dataclass
class Request:
    """A drawn request: its bytes, and what a correct server answers when it is valid."""

    data: bytes
    valid: bool
    path: bytes
    body_length: int
    # The server closes after answering it (Connection: close, or HTTP/1.0).
    closes: bool


@st.composite
def requests(draw: st.DrawFn, hostile: bool = True) -> Request:
    """One request: valid, or (if *hostile*, half the time) broken in one or two parts."""
    broken: set[str] = set()
    if hostile and draw(st.integers(0, 1)):
        broken = draw(st.sets(st.sampled_from(PARTS), min_size=1, max_size=2))

    def part(name: str, valid: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
        return draw(bad if name in broken else valid)

    def end() -> bytes:
        # A broken line ending breaks one line, not every line.
        if "line_end" in broken and draw(st.integers(0, 2)) == 0:
            return draw(broken_line_ends)
        return b"\r\n"

    separator = draw(broken_separators) if "separator" in broken else b" "
    target = part("target", valid_targets, broken_targets)
    version = part("version", valid_versions, broken_versions)
    head = [part("method", valid_methods, broken_methods) + separator + target + b" " + version]
    head[0] += end()
    head += [b"Host: " + host + end() for host in part("host", valid_hosts, broken_hosts)]
    for _ in range(draw(st.integers(0, 4))):
        name = part("header_name", valid_header_names, broken_header_names)
        value = part("header_value", valid_header_values, broken_header_values)
        separator = draw(broken_header_separators) if "header_separator" in broken else b": "
        head.append(name + separator + value + end())
    if "obs_fold" in broken:
        # obs-fold (RFC 9112 §5.2): a line that starts with whitespace.
        head.append(draw(st.sampled_from([b" folded", b"\tfolded", b" "])) + end())
    connection = b""
    if "connection" in broken or draw(st.integers(0, 4)) == 0:
        connection = part("connection", valid_connections, broken_connections)
        head.append(b"Connection: " + connection + end())
    if "expect" in broken:
        head.append(b"Expect: " + draw(st.sampled_from([b"100-continue", b"nonsense"])) + end())
    body = draw(st.binary(max_size=40))
    framing = draw(st.sampled_from(["none", "length", "chunked"]))
    if "content_length" in broken or "both_framings" in broken:
        framing = "length"
    if "transfer_encoding" in broken or "chunk_size" in broken or "chunk_data" in broken:
        framing = "chunked"
    if framing == "chunked" and version == b"HTTP/1.0":
        # RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
        broken.add("chunked_http_10")
    if connection == b"keep-alive" and version == b"HTTP/1.0":
        # A server may keep such a connection or close it (RFC 9112 §9.3): no
        # exact answer to check.
        broken.add("keep_alive_http_10")
    if framing == "length":
        length = str(len(body)).encode()
        if "body_length" in broken:
            length = str(max(len(body) + draw(st.sampled_from([-3, -1, 1, 50])), 0)).encode()
        lengths = [part("content_length", st.just(length), broken_content_lengths)]
        if "content_length" in broken and draw(st.booleans()):
            lengths.append(length)  # Two Content-Length headers, one of them bad.
        head += [b"Content-Length: " + value + end() for value in lengths]
    if framing == "chunked" or "both_framings" in broken:
        coding = part("transfer_encoding", st.just(b"chunked"), broken_transfer_encodings)
        head.append(b"Transfer-Encoding: " + coding + end())
    head.append(end())
    encoded = body
    if framing == "chunked" and "both_framings" not in broken:
        encoded = draw(chunked_bodies(body, broken))
    elif framing == "none":
        body = encoded = b""
    return Request(
        data=b"".join(head) + encoded,
        valid=not broken,
        path=target.partition(b"?")[0],
        body_length=len(body),
        closes=connection == b"close" or version == b"HTTP/1.0",
    )


@st.composite
def chunked_bodies(draw: st.DrawFn, body: bytes, broken: set[str]) -> bytes:
    """*body* in chunks (RFC 9112 §7.1), with trailers; sizes or data broken if asked."""
    out, position = [], 0
    bad_chunk = draw(st.integers(0, 2))
    for index in range(3):
        size = draw(st.integers(1, 20)) if index < 2 else len(body)
        piece = body[position : position + size]
        position += len(piece)
        if not piece:
            break
        size_line = b"%x" % len(piece)
        if index == bad_chunk and "chunk_size" in broken:
            size_line = draw(broken_chunk_sizes)
        elif draw(st.integers(0, 4)) == 0:
            size_line += draw(st.sampled_from([b";ext=1", b';a="b"', b";x"]))
        if index == bad_chunk and "chunk_data" in broken:
            piece = draw(st.sampled_from([piece[:-1], piece + b"x", piece + b"\r\nx"]))
        out.append(size_line + b"\r\n" + piece + b"\r\n")
    out.append(b"0\r\n")
    for _ in range(draw(st.integers(0, 2)) if draw(st.integers(0, 3)) == 0 else 0):
        out.append(draw(valid_header_names) + b": " + draw(valid_header_values) + b"\r\n")
    out.append(b"\r\n")
    return b"".join(out)


# Between requests: nothing, the one empty line RFC 9112 §2.2 tells servers to
# ignore, or bytes a server may refuse (bare LF, two empty lines, a space, a CR).
VALID_INTERLUDES = [b"", b"\r\n"]
interludes = st.sampled_from([b""] * 5 + [b"\r\n"] * 2 + [b"\n", b"\r\n\r\n", b" ", b"\r"])


@st.composite
def _byte_damage(draw: st.DrawFn, data: bytes) -> bytes:
    """Flip, insert, delete or cut off bytes at random places."""
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if action == "flip" and position < len(data):
            flipped = data[position] ^ (1 << draw(st.integers(0, 7)))
            data = data[:position] + bytes([flipped]) + data[position + 1 :]
        elif action == "insert":
            data = data[:position] + draw(nasty | st.binary(max_size=4)) + data[position:]
        elif action == "delete":
            data = data[:position] + data[position + draw(st.integers(1, 4)) :]
        elif action == "truncate":
            data = data[:position]
    return data


@dataclass
class HTTPCase:
    """One connection's worth of bytes, how to write them, and the answers they call for.

    ``expected`` is set when every request is valid (and only valid empty lines
    stand between them): the (path, body length) of each request the server
    must answer 200, in order, ending with the test's closing request unless
    an earlier request closes the connection. ``None`` when anything is broken.
    """

    data: bytes
    pieces: list[bytes]
    pause: float
    expected: list[tuple[bytes, int]] | None

    def __repr__(self) -> str:  # What hypothesis prints for a failing example.
        return f"HTTPCase(data={self.data!r}, pieces={len(self.pieces)}, pause={self.pause})"


# Every case ends with this request: a server that has answered it and closed
# is done with the case, without the client waiting on a timer.
CLOSING = Request(
    data=b"GET /__fuzz_end__ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    valid=True,
    path=b"/__fuzz_end__",
    body_length=0,
    closes=True,
)


@st.composite
def http_cases(draw: st.DrawFn) -> HTTPCase:
    """Up to three pipelined requests with stray bytes between them, then CLOSING, split.

    Half the cases are hostile (broken requests, stray bytes, damage); the
    others are valid, and their answers are checked exactly.
    """
    closing = CLOSING
    hostile = draw(st.booleans())
    between = interludes if hostile else st.sampled_from(VALID_INTERLUDES)
    parts = []
    drawn = []
    valid = True
    for _ in range(draw(st.integers(1, 3))):
        interlude = draw(between)
        request = draw(requests(hostile))
        valid = valid and interlude in VALID_INTERLUDES and request.valid
        parts += [interlude, request.data]
        drawn.append(request)
    interlude = draw(between)
    valid = valid and interlude in VALID_INTERLUDES
    parts.append(interlude)
    if draw(st.integers(0, 9)):
        parts.append(closing.data)
        drawn.append(closing)
    # Otherwise the client stops there, and half-closes once the server is quiet.
    data = b"".join(parts)
    damage = draw(st.integers(0, 4)) if hostile else 0
    if damage == 3:
        data = draw(_byte_damage(data))
        valid = False
    elif damage == 4:
        data = draw(st.binary(min_size=1, max_size=200)) + closing.data
        valid = False
    expected: list[tuple[bytes, int]] | None = None
    if valid:
        expected = []
        for request in drawn:
            expected.append((request.path, request.body_length))
            if request.closes:
                break
    points = draw(st.lists(st.integers(0, 1 << 16), max_size=6))
    pause = draw(st.sampled_from([0.0, 0.0, 0.0, 0.001]))
    return HTTPCase(data, split_bytes(data, points), pause, expected)


def final_request_bound(data: bytes) -> int:
    """The most requests *data* can hold: at most this many responses may come back.

    Counts each run of bytes that starts with something other than CR or LF
    (the empty lines before a request line are ignored, RFC 9112 §2.2) up to
    the end of a head (an empty line, also with bare LFs), plus a last
    unfinished one. Bodies are counted as requests too: an over-estimate
    that only makes the check looser, never wrong.
    """
    count, position = 0, 0
    head_end = re.compile(rb"\r?\n\r?\n")
    while True:
        while position < len(data) and data[position] in b"\r\n":
            position += 1
        if position >= len(data):
            return count
        count += 1
        found = head_end.search(data, position)
        if found is None:
            return count
        position = found.end()


# -- WebSocket ---------------------------------------------------------------------------------

WS_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


@st.composite
def handshakes(draw: st.DrawFn, hostile: bool = True) -> tuple[bytes, bool]:
    """An upgrade request to /ws, and whether it is valid (if *hostile*, often broken)."""
    headers = {
        b"Host": b"x",
        b"Upgrade": b"websocket",
        b"Connection": b"Upgrade",
        b"Sec-WebSocket-Key": WS_KEY,
        b"Sec-WebSocket-Version": b"13",
    }
    valid = True
    if hostile and draw(st.integers(0, 3)) == 3:
        valid = False
        name = draw(st.sampled_from(sorted(headers)))
        replacement = draw(
            st.sampled_from([None, b"", b"x", b"websocket, h2c", b"8", b"AAAA", b"close"])
        )
        if replacement is None:
            del headers[name]
        else:
            headers[name] = replacement
    extra = b""
    if hostile and draw(st.integers(0, 5)) == 5:
        valid = False
        extra = draw(
            st.sampled_from(
                [
                    b"Content-Length: 5\r\n",
                    b"Transfer-Encoding: chunked\r\n",
                    b"Sec-WebSocket-Protocol: a, , b\r\n",
                    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
                    b"Origin: http://evil\r\n",
                ]
            )
        )
    method = b"POST" if hostile and draw(st.integers(0, 7)) == 7 else b"GET"
    version = b"HTTP/1.0" if hostile and draw(st.integers(0, 7)) == 7 else b"HTTP/1.1"
    valid = valid and method == b"GET" and version == b"HTTP/1.1"
    request = (
        method
        + b" /ws "
        + version
        + b"\r\n"
        + b"".join(name + b": " + value + b"\r\n" for name, value in headers.items())
        + extra
        + b"\r\n"
    )
    return request, valid


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = b"\x01\x02\x03\x04",
    length_form: str = "shortest",
) -> bytes:
    """One frame as a client sends it (RFC 6455 §5.2), any field settable to a wrong value."""
    first = (0x80 if fin else 0) | (rsv & 0x7) << 4 | opcode & 0xF
    mask_bit = 0x80 if mask is not None else 0
    length = len(payload)
    if length >= 65536 and length_form != "shortest":
        length_form = "64"  # (The 16-bit form cannot hold it.)
    if length_form == "16" or (length_form == "shortest" and 126 <= length < 65536):
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    elif length_form == "64" or (length_form == "shortest" and length >= 65536):
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    else:
        header = struct.pack("!BB", first, mask_bit | length)
    if mask is None:
        return header + payload
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return header + mask + masked


close_payloads = st.one_of(
    st.just(b""),
    st.just(b"\x03"),  # one byte: no valid close payload is one byte long
    st.sampled_from([1000, 1001, 1002, 1004, 1005, 1006, 1015, 999, 2000, 3000, 4999, 5000]).map(
        lambda code: struct.pack("!H", code)
    ),
    st.binary(max_size=8).map(lambda reason: b"\x03\xe8" + reason),
)
payloads = st.one_of(
    st.binary(max_size=60),
    st.text(max_size=30).map(str.encode),
    st.sampled_from([b"\xff\xfe", b"\xed\xa0\x80", b"\xc3", b"a" * 200, b"b" * 70000]),
)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """One client frame: data, continuation or control, with any field possibly wrong."""
    opcode = draw(st.sampled_from([0x0, 0x1, 0x2, 0x1, 0x2, 0x8, 0x9, 0xA, 0x3, 0xB, 0xF]))
    if opcode == 0x8:
        payload = draw(close_payloads)
    elif opcode in (0x9, 0xA):
        payload = draw(st.binary(max_size=8) | st.just(b"p" * 126))
    else:
        payload = draw(payloads)
    odd = draw(st.integers(0, 5)) == 5
    return frame(
        opcode,
        payload,
        fin=draw(st.booleans()) if odd or opcode == 0 else True,
        rsv=draw(st.integers(0, 7)) if odd and draw(st.booleans()) else 0,
        mask=None if odd and draw(st.integers(0, 3)) == 0 else b"\x01\x02\x03\x04",
        length_form=draw(st.sampled_from(["shortest", "16", "64"])) if odd else "shortest",
    )


@dataclass
class WebSocketCase:
    """A handshake and the frames after it, in the pieces the client writes.

    ``data_frames`` bounds the messages the server may echo. ``expected`` is
    set when the handshake and every frame are valid: the messages (opcode,
    payload) the echo application must send back in order, and the payloads
    of the pings, which the server must answer with pongs.
    """

    handshake: bytes
    frames: bytes
    data_frames: int
    pieces: list[bytes]
    pause: float
    expected: tuple[list[tuple[int, bytes]], list[bytes]] | None

    def __repr__(self) -> str:
        return (
            f"WebSocketCase(handshake={self.handshake!r}, frames={self.frames[:400]!r}"
            f"{'...' if len(self.frames) > 400 else ''}, pieces={len(self.pieces)})"
        )


@st.composite
def valid_conversations(
    draw: st.DrawFn,
) -> tuple[bytes, list[tuple[int, bytes]], list[bytes]]:
    """Valid frames: messages, some fragmented, with pings between the fragments."""
    out: list[bytes] = []
    messages: list[tuple[int, bytes]] = []
    pings: list[bytes] = []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            opcode, payload = 0x1, draw(st.text(max_size=30)).encode()
        else:
            opcode, payload = 0x2, draw(st.binary(max_size=60))
        messages.append((opcode, payload))
        cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=2)))
        fragments = [
            payload[start:end] for start, end in zip([0, *cuts], [*cuts, len(payload)], strict=True)
        ]
        for index, fragment in enumerate(fragments):
            last = index == len(fragments) - 1
            out.append(frame(opcode if index == 0 else 0x0, fragment, fin=last))
            if not last and draw(st.integers(0, 3)) == 3:
                # A control frame may come between the fragments (RFC 6455 §5.4).
                pings.append(draw(st.binary(max_size=8)))
                out.append(frame(0x9, pings[-1]))
        if draw(st.integers(0, 3)) == 3:
            pings.append(draw(st.binary(max_size=8)))
            out.append(frame(0x9, pings[-1]))
    return b"".join(out), messages, pings


@st.composite
def websocket_cases(draw: st.DrawFn) -> WebSocketCase:
    """A handshake and frames; half the cases hostile, the others valid (checked exactly)."""
    hostile = draw(st.booleans())
    handshake, valid = draw(handshakes(hostile))
    expected: tuple[list[tuple[int, bytes]], list[bytes]] | None = None
    if not hostile or draw(st.booleans()):
        body, messages, pings = draw(valid_conversations())
        data_frames = len(messages)
        if valid:
            expected = (messages, pings)
    else:
        sent = [draw(frames()) for _ in range(draw(st.integers(0, 6)))]
        body = b"".join(sent)
        # Every data frame the client sent could at most become one echoed message.
        data_frames = sum(1 for item in sent if item and item[0] & 0xF in (0x0, 0x1, 0x2))
    damage = draw(st.integers(0, 4)) if hostile else 0
    if damage == 3:
        body = draw(_byte_damage(body))
        data_frames = max(data_frames, len(body))
        expected = None
    elif damage == 4:
        # Garbage instead of frames: each byte could at most start one.
        body = draw(st.binary(min_size=1, max_size=100))
        data_frames = len(body)
        expected = None
    data = handshake + body
    points = draw(st.lists(st.integers(0, 1 << 16), max_size=6))
    pause = draw(st.sampled_from([0.0, 0.0, 0.001]))
    return WebSocketCase(
        handshake=handshake,
        frames=body,
        data_frames=data_frames,
        pieces=split_bytes(data, points),
        pause=pause,
        expected=expected,
    )
