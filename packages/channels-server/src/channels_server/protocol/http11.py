"""The HTTP/1.1 engine, without I/O: bytes in, events out; responses out as bytes.

Requests are parsed by h11, one ``h11.Connection`` per request: when a
response is complete the bytes h11 has not consumed yet (a pipelined
request) seed the next one. Responses are written here rather than through
h11, so that the framing decisions the ASGI specification leaves to the
server (a Content-Length for a single-message body, chunked encoding for a
stream, none for HEAD, 1xx, 204 and 304) are made in one readable place and
cost no more than building the bytes.

On top of h11's own checks, the engine enforces the server's limits and the
rules that keep requests from being read two ways by two parties (request
smuggling and header injection):

* a request line over ``max_request_line_size``: 414 (RFC 9112 §3: "A server
  that receives a request-target longer than any URI it wishes to parse MUST
  respond with a 414");
* a head over ``max_header_size`` or with more than ``max_header_count``
  fields: 431 (RFC 6585 §5);
* ``Content-Length`` together with ``Transfer-Encoding``: 400 (RFC 9112 §6.1:
  "ought to be handled as an error");
* ``Transfer-Encoding`` in an HTTP/1.0 request: 400 (RFC 9112 §6.1, the framing
  is faulty);
* control characters in a header value: 400. RFC 9110 §5.5 lets a recipient
  reject CTLs; the server must, because the ones Python's ``str.splitlines``
  treats as line breaks (``\\x0b \\x0c \\x1c \\x1d \\x1e \\x85`` once decoded as
  Latin-1, which is how Django reads headers) let a value smuggle a second
  header past a framework (the class of CVE-2026-44546);
* an HTTP version other than 1.0 or 1.1: 505;
* a bare LF as a line break or an obsolete line folding (a header line
  starting with whitespace) in the head: 400, as llhttp does. RFC 9112 §2.2
  lets a recipient accept a bare LF and §5.2 lets it unfold; accepting them
  would make this server read a head differently from a front end that does
  not (request smuggling);
* a body on a WebSocket handshake: 400. The connection changes protocol at
  the end of the request, so a body would be read as neither HTTP nor frames;
* a body over ``max_body_size`` (``--limit-request-body``): 413, at once when
  the Content-Length says so, otherwise when the chunks add up to it.

Empty lines before a request line are skipped (RFC 9112 §2.2: a server
"SHOULD ignore at least one empty line (CRLF) received prior to the
request-line"), as llhttp does, up to :data:`MAX_EMPTY_LINE_BYTES` bytes.

Error responses the server writes say what class of thing was wrong and
never repeat the request: an :class:`~channels_server.errors.HTTPProtocolError`
carries a fixed reason, and a parser's own message (which can quote a header
line, and so a cookie or a token) is reduced to one by :func:`parser_refusal`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Final, NamedTuple, TypeVar

import h11

from ..errors import ApplicationError, HTTPProtocolError
from .state import RequestPhase
from .syntax import find_control_in_request_value, response_field

__all__ = [
    "CONTINUE_RESPONSE",
    "END_OF_REQUEST",
    "KNOWN_METHODS",
    "MAX_EMPTY_LINE_BYTES",
    "NEED_DATA",
    "PAUSED",
    "PEER_CLOSED",
    "DateCache",
    "HTTP11Connection",
    "HTTPEngine",
    "HTTPLimits",
    "RequestHead",
    "Sentinel",
    "error_response",
    "header_tokens",
    "http_date",
    "parser_refusal",
    "simple_response",
    "status_line",
    "validate_request_head",
]


class Sentinel:
    """A named marker returned by :meth:`HTTP11Connection.next_event`."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: More bytes are needed before anything else can be parsed.
NEED_DATA: Final = Sentinel("NEED_DATA")
#: The request is complete; the next one is not parsed until the response is.
PAUSED: Final = Sentinel("PAUSED")
#: The whole request body has been returned.
END_OF_REQUEST: Final = Sentinel("END_OF_REQUEST")
#: The client closed its side of the connection.
PEER_CLOSED: Final = Sentinel("PEER_CLOSED")

#: Sent when the application first reads the body of an ``Expect: 100-continue`` request.
CONTINUE_RESPONSE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


class HTTPLimits(NamedTuple):
    max_request_line_size: int = 8190
    max_header_size: int = 16384
    max_header_count: int = 100
    #: Largest request body (``--limit-request-body``), or None for no limit.
    max_body_size: int | None = None


#: Bytes of empty lines (CR and LF) skipped before a request line; more are
#: not a stray CRLF but a client sending nothing else, refused with 400.
MAX_EMPTY_LINE_BYTES: Final = 8


_DEFAULT_LIMITS = HTTPLimits()


class RequestHead:
    """A parsed request line and header block."""

    __slots__ = (
        "expect_continue",
        "has_body",
        "headers",
        "http_version",
        "keep_alive",
        "method",
        "target",
        "upgrade",
    )

    def __init__(
        self,
        method: bytes,
        target: bytes,
        http_version: bytes,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        expect_continue: bool,
        upgrade: bytes | None,
        has_body: bool = False,
    ) -> None:
        #: Upper-cased method, such as ``b"GET"``.
        self.method = method
        #: The request target exactly as sent (``b"/path?query"``).
        self.target = target
        #: ``b"1.1"`` or ``b"1.0"``.
        self.http_version = http_version
        #: (lower-cased name, value) pairs in the order received.
        self.headers = headers
        #: Whether the client allows the connection to be reused after this request.
        self.keep_alive = keep_alive
        #: The client waits for ``100 Continue`` before sending the body.
        self.expect_continue = expect_continue
        #: The lower-cased ``Upgrade`` protocol when ``Connection: upgrade`` asks for one.
        self.upgrade = upgrade
        #: The request has a body: a non-zero Content-Length, or chunked.
        self.has_body = has_body


Event = RequestHead | bytes | Sentinel

# A field line continued on the next (obs-fold, RFC 9112 §5.2).
_FOLD = re.compile(rb"\n[ \t]").search
_FRAMING_HEADERS = frozenset(
    {b"connection", b"content-length", b"expect", b"host", b"transfer-encoding", b"upgrade"}
)


def header_tokens(value: bytes) -> list[bytes]:
    """The comma-separated, case-insensitive tokens of a header value (lower-cased)."""
    return [token.strip().lower() for token in value.split(b",") if token.strip()]


#: The methods both parsers accept (llhttp, under the fast extra, knows no
#: others). Any other method is answered 501 (RFC 9110 §9.1: "An origin server
#: that receives a request method that is unrecognized ... SHOULD respond with
#: the 501 (Not Implemented) status code"). Methods are case-sensitive, so
#: "get" is not GET.
_METHOD_NAMES = """
    GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE PATCH
    COPY LOCK MKCOL MOVE PROPFIND PROPPATCH SEARCH UNLOCK BIND REBIND UNBIND ACL
    REPORT MKACTIVITY CHECKOUT MERGE M-SEARCH NOTIFY SUBSCRIBE UNSUBSCRIBE
    PURGE MKCALENDAR LINK UNLINK SOURCE QUERY
"""
KNOWN_METHODS = frozenset(name.encode("ascii") for name in _METHOD_NAMES.split())


def validate_request_head(
    method: bytes,
    target: bytes,
    version: bytes,
    headers: list[tuple[bytes, bytes]],
    limits: HTTPLimits,
) -> RequestHead:
    """Check a parsed request head against the server's rules; the :class:`RequestHead`.

    Both parsers call this with what they parsed, so that a request is
    accepted or refused the same way whichever parser read it. *headers*
    are (lower-cased name, value) pairs.
    """
    if version != b"1.1" and version != b"1.0":
        raise HTTPProtocolError(505, "HTTP version not supported")
    if len(method) + len(target) + 10 > limits.max_request_line_size:
        raise HTTPProtocolError(414, "Request line too long")
    if method not in KNOWN_METHODS:
        raise HTTPProtocolError(501, "Method not implemented")
    if len(headers) > limits.max_header_count:
        raise HTTPProtocolError(431, "Too many header fields")
    values = b"".join([value for _, value in headers])
    # A head that arrives whole in one read is measured here (": " and CRLF
    # per field); the parsers bound the bytes of a head still arriving.
    head_size = len(values) + len(b"".join([name for name, _ in headers])) + 4 * len(headers)
    if head_size + len(method) + len(target) + 12 > limits.max_header_size:
        raise HTTPProtocolError(431, "Request header fields too large")
    if find_control_in_request_value(values):
        raise HTTPProtocolError(400, "Control character in a header value")
    keep_alive = version == b"1.1"
    expect_continue = False
    upgrade: bytes | None = None
    connection_upgrade = False
    lengths: list[bytes] = []
    encodings = 0
    hosts = 0
    for name, value in headers:
        if name in _FRAMING_HEADERS:
            if name == b"host":
                hosts += 1
            elif name == b"connection":
                tokens = header_tokens(value)
                if b"close" in tokens:
                    keep_alive = False
                if b"upgrade" in tokens:
                    connection_upgrade = True
            elif name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                encodings += 1
                if value.strip().lower() != b"chunked":
                    # RFC 9112 §6.1: a transfer coding the server does not understand.
                    raise HTTPProtocolError(501, "Only Transfer-Encoding: chunked is supported")
            elif name == b"expect":
                expect_continue = value.lower() == b"100-continue"
            else:
                upgrade = value.strip().lower()
    if encodings and (lengths or version == b"1.0"):
        raise HTTPProtocolError(
            400,
            "Transfer-Encoding in an HTTP/1.0 request"
            if version == b"1.0"
            else "Content-Length together with Transfer-Encoding",
        )
    if encodings > 1:
        raise HTTPProtocolError(501, "More than one Transfer-Encoding header")
    has_body = encodings > 0
    if lengths:
        values_seen = {part.strip() for value in lengths for part in value.split(b",")}
        length = next(iter(values_seen))
        if len(values_seen) != 1 or not length.isdigit():
            raise HTTPProtocolError(400, "Invalid or conflicting Content-Length")
        if length.strip(b"0"):
            has_body = True
            limit = limits.max_body_size
            if limit is not None and int(length) > limit:
                raise HTTPProtocolError(413, "Request body too large")
    # RFC 9112 §3.2: a 1.1 request needs exactly one Host; none may have two.
    if hosts > 1 or (hosts == 0 and version == b"1.1"):
        raise HTTPProtocolError(400, "A request needs exactly one Host header")
    if not connection_upgrade:
        upgrade = None
    elif has_body and upgrade == b"websocket":
        # The connection changes protocol where the request ends: bytes of a
        # body would be neither HTTP nor WebSocket frames, and a chunked body
        # could hold the handshake open past every timer.
        raise HTTPProtocolError(400, "A WebSocket handshake cannot have a body")
    if method == b"CONNECT":
        # After a CONNECT response the bytes on the wire are a tunnel's, not HTTP.
        keep_alive = False
    return RequestHead(
        method,
        target,
        version,
        headers,
        keep_alive,
        expect_continue and version == b"1.1",
        upgrade,
        has_body,
    )


# A parser's message names what it choked on, and often quotes it: only the
# class reaches the client. First match wins (llhttp and h11 wordings).
_PARSER_REASONS: Final = (
    ("chunk", "Malformed chunked body"),
    ("content-length", "Invalid Content-Length"),
    ("transfer-encoding", "Invalid Transfer-Encoding"),
    ("header", "Malformed header field"),
    ("request line", "Malformed request line"),
    ("method", "Malformed request line"),
    ("url", "Malformed request line"),
    ("version", "Malformed request line"),
    ("http/", "Malformed request line"),
)


def parser_refusal(status: int, message: str) -> HTTPProtocolError:
    """The refusal for a parser error: *status* and a fixed reason chosen from *message*.

    The message itself is never used: h11's and llhttp's can quote the
    offending line, and the reason goes into the response body.
    """
    text = message.lower()
    for keyword, reason in _PARSER_REASONS:
        if keyword in text:
            return HTTPProtocolError(status, reason)
    return HTTPProtocolError(status, "Malformed request")


_STATUS_LINES: dict[int, bytes] = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode("ascii")
    for status in HTTPStatus
}


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <status> <reason>\\r\\n`` (an empty reason for codes without a name)."""
    line = _STATUS_LINES.get(status)
    if line is None:
        line = b"HTTP/1.1 %d \r\n" % status
    return line


class DateCache:
    """The Date header's value, made once a second (both HTTP versions use it).

    Formatting it costs microseconds and it changes once a second: kept for
    the hello row of bench/server.py.
    """

    __slots__ = ("_line", "_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = self._line = b""

    def _refresh(self) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._value = formatdate(now, usegmt=True).encode("ascii")
            self._line = b"date: " + self._value + b"\r\n"

    def value(self) -> bytes:
        """The value, such as ``Sun, 06 Dec 2026 00:40:00 GMT``."""
        self._refresh()
        return self._value

    def get(self) -> bytes:
        """The whole HTTP/1.1 header line, ``date: ...\\r\\n``."""
        self._refresh()
        return self._line


#: The one Date cache of the process.
http_date = DateCache()


def error_response(
    status: int, reason: str, server_header: bytes = b"", extra_headers: bytes = b""
) -> bytes:
    """A complete plain-text error response that closes the connection.

    Every response the server writes itself (not the application's) is made
    here. *reason* is a fixed description of the kind of problem
    (:class:`~channels_server.errors.HTTPProtocolError` documents the rule):
    nothing from the request is repeated, so a cookie or token in a rejected
    header cannot end up in a cache or a client-side log.
    """
    body = f"{status} {HTTPStatus(status).phrase if status in _STATUS_LINES else ''}\n"
    if reason:
        body += reason + "\n"
    payload = body.encode("utf-8", "replace")
    return b"".join(
        (
            status_line(status),
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(payload),
            b"connection: close\r\n",
            extra_headers,
            http_date.get(),
            server_header,
            b"\r\n",
            payload,
        )
    )


class _CheckedHead(NamedTuple):
    lines: list[bytes]
    content_length: int | None
    close: bool
    has_date: bool
    has_server: bool


# Two memos for the hello row of bench/server.py, where checking the same
# header pairs for every response is a measurable share of a request. Keys
# come from the application, so each is bounded: _remember() drops the
# oldest entry (dicts keep insertion order) when one is full. (Not
# channels._cache: this package installs without channels-core.)
# Checked header pairs and their serialised lines:
_HEADER_LINES: dict[tuple[bytes, bytes], bytes] = {}
_HEADER_LINES_SIZE = 512
# Whole checked heads by (status, header pairs), lines as a tuple:
_Remembered = tuple[tuple[bytes, ...], int | None, bool, bool, bool]
_HEADS: dict[tuple[int, tuple[Any, ...]], _Remembered] = {}
_HEADS_SIZE = 256

_K = TypeVar("_K")
_V = TypeVar("_V")


def _remember(memo: dict[_K, _V], size: int, key: _K, value: _V) -> None:
    """Keep *value* under *key* in *memo*, which holds at most *size* entries."""
    if key not in memo and len(memo) >= size:
        del memo[next(iter(memo))]
    memo[key] = value


def _check_response_head(status: object, headers: Iterable[tuple[bytes, bytes]]) -> _CheckedHead:
    """The status line and header lines of a response, checked.

    Drops the ``Transfer-Encoding`` and ``Connection`` headers an
    application gives (the www spec leaves framing to the server) and
    remembers what they asked for. Raises
    :class:`~channels_server.errors.ApplicationError` for what cannot be sent.
    """
    # Exactly an int: a bool or an IntEnum member is refused.
    if type(status) is not int or not 200 <= status <= 599:
        raise ApplicationError(f"Response status must be an int from 200 to 599, not {status!r}")
    key: tuple[int, tuple[Any, ...]] | None = None
    if isinstance(headers, (list, tuple)):
        try:
            key = (status, tuple(headers))
            known = _HEADS.get(key)
        except TypeError:  # pairs that are lists: not remembered
            key = known = None
        if known is not None:
            return _CheckedHead(list(known[0]), known[1], known[2], known[3], known[4])
    lines = [status_line(status)]
    content_length: int | None = None
    close = has_date = has_server = False
    try:
        items = iter(headers)
    except TypeError:
        raise ApplicationError(
            f"Response headers must be an iterable of (name, value) pairs, not {headers!r}"
        ) from None
    header_lines = _HEADER_LINES
    for item in items:
        if isinstance(item, tuple):
            # A pair already checked (never one of the framing headers below).
            line = header_lines.get(item)
            if line is not None:
                lines.append(line)
                continue
        name, value = response_field(item, "response header")
        lower = name.lower()
        remember = False
        if lower == b"content-length":
            if not value.strip().isdigit():
                raise ApplicationError(f"Invalid Content-Length response header {value!r}")
            length = int(value)
            if content_length is not None:
                if content_length != length:
                    raise ApplicationError("Conflicting Content-Length response headers")
                continue
            content_length = length
        elif lower == b"transfer-encoding":
            # www spec: the server must ignore it and frame the body itself.
            continue
        elif lower == b"connection":
            if b"close" in header_tokens(value):
                close = True
            continue
        elif lower == b"date":
            has_date = True
        elif lower == b"server":
            has_server = True
        else:
            # Only headers that change nothing in the framing are remembered.
            remember = isinstance(item, tuple)
        line = name + b": " + value + b"\r\n"
        lines.append(line)
        if remember:
            _remember(header_lines, _HEADER_LINES_SIZE, item, line)
    if key is not None and all(isinstance(item, tuple) for item in key[1]):
        _remember(
            _HEADS, _HEADS_SIZE, key, (tuple(lines), content_length, close, has_date, has_server)
        )
    return _CheckedHead(lines, content_length, close, has_date, has_server)


def simple_response(
    status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes, server_header: bytes = b""
) -> bytes:
    """A complete response with a Content-Length that closes the connection.

    Used for the WebSocket denial response, where the application gives the
    whole response and the connection ends with it.
    """
    checked = _check_response_head(status, headers)
    parts = checked.lines
    if checked.content_length is not None and checked.content_length != len(body):
        raise ApplicationError(
            f"Content-Length {checked.content_length} does not match the {len(body)}-byte body"
        )
    if checked.content_length is None:
        parts.append(b"content-length: %d\r\n" % len(body))
    parts.append(b"connection: close\r\n")
    if not checked.has_date:
        parts.append(http_date.get())
    if not checked.has_server and server_header:
        parts.append(server_header)
    parts.append(b"\r\n")
    parts.append(body)
    return b"".join(parts)


# How the body of the response in progress is delimited.
_NO_BODY = 0  # HEAD, 1xx, 204, 304: nothing after the head
_CONTENT_LENGTH = 1
_CHUNKED = 2
_UNTIL_CLOSE = 3  # an HTTP/1.0 client with no Content-Length: the close ends it


class HTTPEngine:
    """What both HTTP/1.1 engines offer: requests parsed, responses framed.

    Subclasses parse requests (:class:`HTTP11Connection` with h11,
    :class:`~channels_server.protocol.fast_http11.HTTPToolsConnection` with
    httptools) and set :attr:`head`, :attr:`keep_alive` and :attr:`phase`;
    the responses are framed here, the same way for both.

    Feed bytes with :meth:`receive_data` and read events with
    :meth:`next_event` until it returns :data:`NEED_DATA`. Events are a
    :class:`RequestHead`, ``bytes`` of body, :data:`END_OF_REQUEST`,
    :data:`PAUSED` (the request is complete; call :meth:`start_next_request`
    once the response is) and :data:`PEER_CLOSED`. A request the server
    refuses raises :class:`~channels_server.errors.HTTPProtocolError`, whose
    status the caller answers with :func:`error_response`.
    """

    __slots__ = (
        "_body_received",
        "_body_remaining",
        "_empty_line_bytes",
        "_framing",
        "_limits",
        "_server_header",
        "head",
        "keep_alive",
        "phase",
    )

    #: The request being served.
    head: RequestHead | None
    #: Whether the connection can serve another request after this response.
    keep_alive: bool
    phase: RequestPhase

    def __init__(self, limits: HTTPLimits = _DEFAULT_LIMITS, server_header: bytes = b"") -> None:
        self._limits = limits
        self._server_header = server_header
        self._framing = _NO_BODY
        self._body_remaining = 0
        # Request body bytes parsed so far (for max_body_size), and bytes of
        # empty lines skipped since the last request.
        self._body_received = 0
        self._empty_line_bytes = 0
        self.phase = RequestPhase.IDLE
        self.head = None
        self.keep_alive = True

    # -- requests (the parser's side) ---------------------------------------------

    def _skip_empty_lines(self, data: bytes) -> bytes | None:
        """*data* without the empty lines before a request line (RFC 9112 §2.2).

        ``None`` once more than :data:`MAX_EMPTY_LINE_BYTES` of them arrived
        since the last request: that client is sending nothing else.
        """
        first = data[0]
        if first != 13 and first != 10:  # the usual case: a request line
            return data
        rest = data.lstrip(b"\r\n")
        self._empty_line_bytes += len(data) - len(rest)
        if self._empty_line_bytes > MAX_EMPTY_LINE_BYTES:
            return None
        return rest

    def _count_body(self, size: int) -> None:
        """Count *size* more body bytes; 413 past ``max_body_size``."""
        received = self._body_received + size
        self._body_received = received
        limit = self._limits.max_body_size
        if limit is not None and received > limit:
            raise HTTPProtocolError(413, "Request body too large")

    def receive_data(self, data: bytes) -> None:
        """Add bytes received from the client; ``b""`` means the client closed its side."""
        raise NotImplementedError

    def next_event(self) -> Event:
        """The next event from the bytes received so far."""
        raise NotImplementedError

    def upgrade(self) -> bytes:
        """Switch to another protocol; returns the bytes received after the request."""
        raise NotImplementedError

    def start_next_request(self) -> None:
        """Get ready for the next request on a kept-alive connection."""
        raise NotImplementedError

    @property
    def request_complete(self) -> bool:
        """Whether the whole current request (head and body) has been read."""
        return self.phase is RequestPhase.COMPLETE

    @property
    def buffered_size(self) -> int:
        """Bytes received and held for requests not served yet (about; for diagnostics)."""
        raise NotImplementedError

    # -- responses -------------------------------------------------------------------

    def start_response(
        self,
        status: int,
        headers: Iterable[tuple[bytes, bytes]],
        body: bytes,
        more_body: bool,
        *,
        close: bool = False,
    ) -> bytes:
        """The response head followed by the first part of the body.

        The head is held back until the first body message so that a body
        sent in one message gets a Content-Length instead of chunked encoding.
        Raises :class:`~channels_server.errors.ApplicationError` for a status
        or header that cannot be sent.

        :param close: close the connection after this response (server shutdown).
        """
        head = self.head
        if head is None:
            raise ApplicationError("No request to respond to")
        checked = _check_response_head(status, headers)
        parts = checked.lines
        content_length = checked.content_length
        # A response that starts before the request body has been read ends
        # the connection: the unread rest cannot be told from a next request.
        keep_alive = (
            self.keep_alive
            and not close
            and not checked.close
            and self.phase is RequestPhase.COMPLETE
        )

        is_head = head.method == b"HEAD"
        if status < 200 or status == 204 or status == 304:
            framing = _NO_BODY
            if status != 304 and content_length is not None:
                # RFC 9110 §8.6: no Content-Length in a 1xx or 204 response.
                parts = [part for part in parts if not part.lower().startswith(b"content-length:")]
        elif content_length is not None:
            framing = _NO_BODY if is_head else _CONTENT_LENGTH
        elif not more_body:
            framing = _NO_BODY if is_head else _CONTENT_LENGTH
            content_length = len(body)
            if body or not is_head:
                parts.append(b"content-length: %d\r\n" % content_length)
        elif is_head:
            framing = _NO_BODY
        elif head.http_version == b"1.1":
            framing = _CHUNKED
            parts.append(b"transfer-encoding: chunked\r\n")
        else:
            framing = _UNTIL_CLOSE
            keep_alive = False
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        if not checked.has_date:
            parts.append(http_date.get())
        if not checked.has_server and self._server_header:
            parts.append(self._server_header)
        parts.append(b"\r\n")
        self.keep_alive = keep_alive
        self._framing = framing
        self._body_remaining = content_length or 0
        if body:
            parts.append(self.send_body(body))
        if not more_body:
            parts.append(self.end_response())
        return b"".join(parts)

    def send_body(self, data: bytes) -> bytes:
        """Frame one part of the response body."""
        framing = self._framing
        if framing == _CONTENT_LENGTH:
            remaining = self._body_remaining - len(data)
            if remaining < 0:
                raise ApplicationError(
                    f"Response body longer than its Content-Length ({-remaining} bytes too many)"
                )
            self._body_remaining = remaining
            return data
        if framing == _CHUNKED:
            if not data:
                return b""  # An empty chunk would end the body.
            return b"%x\r\n%b\r\n" % (len(data), data)
        if framing == _UNTIL_CLOSE:
            return data
        return b""

    def end_response(self, trailers: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
        """The bytes that end the response (the last chunk and any trailers)."""
        framing = self._framing
        if framing == _CHUNKED:
            lines = [b"0\r\n"]
            for item in trailers:
                name, value = response_field(item, "response trailer")
                lines.append(name + b": " + value + b"\r\n")
            lines.append(b"\r\n")
            return b"".join(lines)
        if framing == _CONTENT_LENGTH and self._body_remaining:
            # The application promised more than it sent: the client cannot
            # find the end of this response, so the connection cannot be reused.
            self.keep_alive = False
        return b""

    @property
    def body_shortfall(self) -> int:
        """Bytes of a declared Content-Length the application never sent."""
        return self._body_remaining if self._framing == _CONTENT_LENGTH else 0


class HTTP11Connection(HTTPEngine):
    """The HTTP/1.1 engine on h11, one request at a time (see :class:`HTTPEngine`).

    :param limits: the request size limits.
    :param server_header: a complete ``server: ...\\r\\n`` line, or ``b""``.
    """

    __slots__ = ("_head_tail", "_parser", "_refusal")

    def __init__(self, limits: HTTPLimits = _DEFAULT_LIMITS, server_header: bytes = b"") -> None:
        super().__init__(limits, server_header)
        self._parser = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_size)
        # The last bytes of a head still arriving (None once it has ended),
        # so that a line break split between two reads is still seen whole.
        self._head_tail: bytes | None = None
        # A refusal found before the bytes reached h11, raised in its turn.
        self._refusal: HTTPProtocolError | None = None

    # -- requests ---------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Add bytes received from the client; ``b""`` means the client closed its side."""
        if self.phase is RequestPhase.CLOSED or self._refusal is not None:
            return
        if data:
            if self.phase is RequestPhase.IDLE:
                first = data[0]
                if first == 13 or first == 10:
                    rest = self._skip_empty_lines(data)
                    if rest is None:
                        self._refusal = HTTPProtocolError(400, "Malformed request line")
                        return
                    if not rest:
                        return  # Only a stray CRLF: still between requests.
                    data = rest
                self.phase = RequestPhase.HEAD
                self._head_tail = b""
            if self._head_tail is not None and not self._check_head(data):
                return
        self._parser.receive_data(data)

    def _check_head(self, data: bytes) -> bool:
        """Look at the head bytes in *data* for what h11 would accept and
        llhttp refuses: a bare LF, an obsolete line folding. False (and a
        refusal waiting) if there is one."""
        tail = self._head_tail
        # A head longer than max_header_size is refused by h11 (431) anyway.
        region = tail + data[: self._limits.max_header_size] if tail else data
        end = region.find(b"\r\n\r\n")
        if end == -1:
            end = len(region)
            tail = region[-3:]
            # An LF that starts the tail was checked with this read (the next
            # one would not see the CR before it); the end of the head cannot
            # start with it.
            self._head_tail = tail[1:] if tail[:1] == b"\n" else tail
        else:
            # Up to the CRLF of the last field line: the empty line's LF may
            # be followed by body bytes that happen to be whitespace.
            end += 2
            self._head_tail = None
        # (Three passes in C over the head, in place: a single regular
        # expression needs a look-behind, which costs several times more.)
        if region.count(b"\n", 0, end) == region.count(b"\r\n", 0, end) and not _FOLD(
            region, 0, end
        ):
            return True
        self._refusal = HTTPProtocolError(400, "Malformed line break in the request head")
        return False

    def next_event(self) -> Event:
        """The next event from the bytes received so far."""
        if self.phase is RequestPhase.CLOSED:
            return PEER_CLOSED
        try:
            event = self._parser.next_event()
        except h11.RemoteProtocolError as exc:
            if self.phase is RequestPhase.COMPLETE:
                # Bytes after a request that closes the connection (h11 wants
                # none): never answered, and never instead of its response.
                # RFC 9112 §9.6: no further request is processed.
                return PAUSED
            return self._refuse(exc)
        if isinstance(event, h11.Data):
            data = event.data
            if self._limits.max_body_size is not None:
                try:
                    self._count_body(len(data))
                except HTTPProtocolError:
                    self._fail()
                    raise
            # h11 hands out bytearray slices of its buffer; ASGI bodies are bytes.
            return data if isinstance(data, bytes) else bytes(data)
        if isinstance(event, h11.Request):
            return self._on_request(event)
        if isinstance(event, h11.EndOfMessage):
            self.phase = RequestPhase.COMPLETE
            return END_OF_REQUEST
        if event is h11.NEED_DATA:
            refusal = self._refusal
            if refusal is not None:
                self._fail()
                raise refusal
            return NEED_DATA
        if event is h11.PAUSED:
            return PAUSED
        # ConnectionClosed: a clean close between requests.
        self.phase = RequestPhase.CLOSED
        return PEER_CLOSED

    def _refuse(self, exc: h11.RemoteProtocolError) -> Sentinel:
        buffered, closed = self._parser.trailing_data
        if closed:
            # The client went away mid-request: there is nobody to answer.
            self.phase = RequestPhase.CLOSED
            return PEER_CLOSED
        self.phase = RequestPhase.CLOSED
        self.keep_alive = False
        status = exc.error_status_hint
        if status == 431:
            line_end = buffered.find(b"\n")
            if line_end == -1 or line_end > self._limits.max_request_line_size:
                raise HTTPProtocolError(414, "Request line too long") from None
            raise HTTPProtocolError(431, "Request header fields too large") from None
        raise parser_refusal(status, str(exc)) from None

    def _on_request(self, event: h11.Request) -> RequestHead:
        self.phase = RequestPhase.BODY
        try:
            head = validate_request_head(
                event.method, event.target, event.http_version, list(event.headers), self._limits
            )
        except HTTPProtocolError:
            self._fail()
            raise
        self.head = head
        self.keep_alive = head.keep_alive
        return head

    def _fail(self) -> None:
        self.phase = RequestPhase.CLOSED
        self.keep_alive = False

    @property
    def buffered_size(self) -> int:
        return len(self._parser.trailing_data[0])

    def upgrade(self) -> bytes:
        """Switch to another protocol; returns the bytes received after the request."""
        self.phase = RequestPhase.UPGRADED
        data, _closed = self._parser.trailing_data
        return data

    def start_next_request(self) -> None:
        """Get ready for the next request on a kept-alive connection."""
        data, closed = self._parser.trailing_data
        self._parser = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self._limits.max_header_size
        )
        self.head = None
        self.keep_alive = True
        self.phase = RequestPhase.IDLE
        self._head_tail = None
        self._empty_line_bytes = 0
        self._body_received = 0
        if data:
            # The next request's bytes go through the same checks as a read.
            self.receive_data(bytes(data))
        if closed:
            self._parser.receive_data(b"")
