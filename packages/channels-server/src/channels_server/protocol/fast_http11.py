"""The HTTP/1.1 engine on httptools (llhttp), for ``channels-server[fast]``.

It offers exactly what the h11 engine offers (:class:`~.http11.HTTPEngine`)
and applies the same rules: every parsed head goes through
:func:`~.http11.validate_request_head`, and responses are framed by the
shared :class:`~.http11.HTTPEngine` code. The test suite runs against both.

llhttp is push-based: one ``feed_data`` call parses everything it is given
and calls back for each part. The callbacks queue events, which
:meth:`HTTPToolsConnection.next_event` hands out one request at a time, as
the h11 engine does. Three things need care:

* limits on a head that is still arriving: llhttp has none, and httptools
  gathers a header's pieces itself before calling back, so the bytes fed
  while a head is incomplete are counted here;
* pipelining: llhttp parses every request in a read at once, so at most
  :data:`MAX_PIPELINED` parsed requests wait for their responses; past that,
  parsing stops and the connection closes once they are answered (RFC 9112
  §9.3.2 lets a server close; clients retry what was not answered);
* upgrades (and CONNECT): llhttp stops at the end of the request and reports
  where the rest of the bytes start; they are kept for the WebSocket engine,
  or parsed by a fresh parser when the request turns out to be plain HTTP.
"""

from __future__ import annotations

from collections import deque
from typing import Final

import httptools

from ..errors import HTTPProtocolError
from .http11 import (
    END_OF_REQUEST,
    NEED_DATA,
    PAUSED,
    PEER_CLOSED,
    Event,
    HTTPEngine,
    HTTPLimits,
    RequestHead,
    Sentinel,
    parser_refusal,
    validate_request_head,
)
from .state import RequestPhase
from .syntax import is_token

__all__ = ["MAX_PIPELINED", "HTTPToolsConnection"]

#: Parsed requests that may wait for their responses on one connection.
MAX_PIPELINED: Final = 64


class _StopParsing(Exception):
    """Raised from a callback to stop llhttp (too many pipelined requests)."""


# What the queue holds: parsed events, and refusals to raise in their turn.
_Queued = RequestHead | bytes | Sentinel | HTTPProtocolError


class HTTPToolsConnection(HTTPEngine):
    """The HTTP/1.1 engine on httptools (see :class:`~.http11.HTTPEngine`).

    :param limits: the request size limits.
    :param server_header: a complete ``server: ...\\r\\n`` line, or ``b""``.
    """

    __slots__ = (
        "_begun",
        "_broken",
        "_current_done",
        "_events",
        "_head_fed",
        "_head_size",
        "_headers",
        "_in_head",
        "_parser",
        "_stopped",
        "_upgrade_data",
        "_url",
        "_waiting",
    )

    def __init__(self, limits: HTTPLimits | None = None, server_header: bytes = b"") -> None:
        super().__init__(limits or HTTPLimits(), server_header)
        self._parser = httptools.HttpRequestParser(self)
        self._events: deque[_Queued] = deque()
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_fed = 0
        self._head_size = 0
        self._in_head = False
        self._begun = 0
        # Requests parsed completely and not yet answered (the current one included).
        self._waiting = 0
        self._current_done = False
        self._stopped = False
        self._broken = False
        self._upgrade_data: bytes | None = None

    # -- llhttp's callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._waiting >= MAX_PIPELINED:
            raise _StopParsing
        self._body_received = 0
        self._begun += 1
        self._in_head = True
        self._url = b""
        self._headers = []
        self._head_size = 0
        self._head_fed = 0

    def on_url(self, url: bytes) -> None:
        # Called once per piece of the target as it arrives.
        self._url += url
        if len(self._url) + 10 > self._limits.max_request_line_size:
            raise HTTPProtocolError(414, "Request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self._headers
        # llhttp drops the whitespace before a value but keeps the one after
        # it, which is not part of the value either (RFC 9110 §5.5). Size and
        # count are checked as the head grows, so that headers that never end
        # are refused as soon as they are over the limit.
        headers.append((name.lower(), value.rstrip(b" \t")))
        self._head_size += len(name) + len(value) + 4
        if self._head_size + len(self._url) > self._limits.max_header_size:
            raise HTTPProtocolError(431, "Request header fields too large")
        if len(headers) > self._limits.max_header_count:
            raise HTTPProtocolError(431, "Too many header fields")

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self._parser
        head = validate_request_head(
            parser.get_method(),
            self._url,
            parser.get_http_version().encode("ascii"),
            self._headers,
            self._limits,
        )
        self._events.append(head)

    def on_body(self, body: bytes) -> None:
        if self._limits.max_body_size is not None:
            self._count_body(len(body))
        self._events.append(body)

    def on_message_complete(self) -> None:
        self._waiting += 1
        self._events.append(END_OF_REQUEST)

    # -- the engine ----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self._broken or self.phase is RequestPhase.CLOSED:
            return
        if self._upgrade_data is not None:
            self._upgrade_data += data
            return
        if not data:
            self._broken = True
            self._events.append(PEER_CLOSED)
            return
        starts_here = self.phase is RequestPhase.IDLE
        if starts_here:
            # llhttp skips empty lines itself, but without a bound, and the
            # connection is between requests until a request line starts.
            rest = self._skip_empty_lines(data)
            if not rest:
                if rest is None:
                    self._broken = True
                    self._events.append(HTTPProtocolError(400, "Malformed request line"))
                return
            data = rest
            self.phase = RequestPhase.HEAD
        begun = self._begun
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade_data = data[upgrade.args[0] :]
        except httptools.HttpParserCallbackError as error:
            cause = error.__context__
            self._broken = True
            if isinstance(cause, _StopParsing):
                self._stopped = True
            elif isinstance(cause, HTTPProtocolError):
                self._events.append(cause)
            else:  # pragma: no cover - a bug in a callback above
                raise
        except httptools.HttpParserError as error:
            self._broken = True
            self._events.append(self._refusal(error, data if starts_here else b""))
        else:
            if self._in_head and (self._begun == begun or starts_here):
                # The whole of this read belongs to a head that is still
                # incomplete. (A head that began in the middle of this read,
                # after a pipelined request, is counted from the next read:
                # where it began is unknown, and a read is at most 256 KiB.)
                self._head_fed += len(data)
                if self._head_fed > self._limits.max_header_size:
                    # (A request line that long was refused by on_url already.)
                    self._broken = True
                    self._events.append(HTTPProtocolError(431, "Request header fields too large"))

    def _refusal(self, error: httptools.HttpParserError, start: bytes) -> HTTPProtocolError:
        reason = str(error)
        if isinstance(error, httptools.HttpParserInvalidMethodError):
            # llhttp knows only the methods of KNOWN_METHODS; a well-formed
            # method it does not know is 501, as with the h11 engine.
            method = start.split(b" ", 1)[0]
            if is_token(method):
                return HTTPProtocolError(501, "Method not implemented")
        elif "Transfer-Encoding" in reason:
            # The same refusals, in the same words, as validate_request_head().
            if "Content-Length" in reason:
                return HTTPProtocolError(400, "Content-Length together with Transfer-Encoding")
            if "invalid" in reason.lower():
                return HTTPProtocolError(501, "Only Transfer-Encoding: chunked is supported")
        return parser_refusal(400, reason)

    def next_event(self) -> Event:
        events = self._events
        if self._current_done:
            # The request is complete; what follows waits for the response.
            if events and events[0] is PEER_CLOSED:
                events.popleft()
                self.phase = RequestPhase.CLOSED
                return PEER_CLOSED
            if events or self._upgrade_data is not None or self._stopped:
                return PAUSED
            return NEED_DATA
        if not events:
            if self.phase is RequestPhase.CLOSED:
                return PEER_CLOSED
            return NEED_DATA
        event = events.popleft()
        if isinstance(event, bytes):
            return event
        if isinstance(event, RequestHead):
            self.head = event
            self.keep_alive = event.keep_alive
            if self._stopped and not any(isinstance(later, RequestHead) for later in events):
                # The last request parsed before MAX_PIPELINED stopped parsing:
                # its response closes the connection.
                self.keep_alive = False
            self.phase = RequestPhase.BODY
            return event
        if event is END_OF_REQUEST:
            self.phase = RequestPhase.COMPLETE
            self._current_done = True
            return END_OF_REQUEST
        if event is PEER_CLOSED:
            self.phase = RequestPhase.CLOSED
            return PEER_CLOSED
        assert isinstance(event, HTTPProtocolError)
        self.phase = RequestPhase.CLOSED
        self.keep_alive = False
        events.clear()
        raise event

    @property
    def buffered_size(self) -> int:
        size = len(self._upgrade_data or b"")
        for event in self._events:
            if isinstance(event, bytes):
                size += len(event)
            elif isinstance(event, RequestHead):
                size += len(event.target) + sum(len(n) + len(v) + 4 for n, v in event.headers)
        return size

    def upgrade(self) -> bytes:
        self.phase = RequestPhase.UPGRADED
        data = self._upgrade_data or b""
        self._upgrade_data = None
        self._broken = True
        return data

    def start_next_request(self) -> None:
        self.head = None
        self.keep_alive = True
        self._empty_line_bytes = 0
        self._current_done = False
        self._waiting -= 1
        leftover = self._upgrade_data
        if leftover is not None:
            # An upgrade (or CONNECT) answered as plain HTTP: llhttp stopped
            # parsing at it, so a fresh parser reads what came after.
            self._upgrade_data = None
            self._parser = httptools.HttpRequestParser(self)
            self._broken = False
            self.phase = RequestPhase.IDLE
            if leftover:
                self.receive_data(leftover)
            return
        if self._events:
            self.phase = RequestPhase.HEAD
        elif self._stopped:
            # Parsing stopped at MAX_PIPELINED: close once these are answered.
            self.phase = RequestPhase.CLOSED
            self._events.append(PEER_CLOSED)
        else:
            self.phase = RequestPhase.HEAD if self._in_head else RequestPhase.IDLE
