"""The one module that touches sockets.

:func:`bind` turns endpoint descriptions into listening sockets (TCP, unix,
or a descriptor inherited from a process manager), and
:class:`ServerProtocol` is the asyncio protocol of one accepted connection:
it moves bytes between the socket and the sans-IO engines, and between the
engines and the ASGI streams. It owns the connection's timers (idle
keep-alive and the header-read deadline; the write timeout) and its flow
control in both directions.

Flow control follows one rule each way. Inbound: reading stops while a
stream has enough queued for its application, while a pipelined request
waits for the response in progress, and, on a WebSocket, while the client
is not reading what the server writes (so that the pongs and close replies
its frames call for cannot pile up). Outbound: no request is started while
the write buffer is over its high-water mark (the client has not read the
previous response), and a client that reads nothing for ``write_timeout``
seconds while the buffer is over that mark, or while a closing connection
still holds unsent bytes, is dropped. Memory per connection is therefore
bounded by the high-water mark, plus the one message the application is
sending, plus one read.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
from typing import Any

from ..asgi.http_stream import HTTPStream
from ..asgi.scope import build_scope
from ..asgi.websocket_stream import WebSocketStream
from ..config import Endpoint
from ..context import ConnectionHandle, ServerContext
from ..errors import ConfigurationError, HTTPProtocolError
from ..protocol.http11 import (
    END_OF_REQUEST,
    NEED_DATA,
    PAUSED,
    HTTPEngine,
    RequestHead,
    error_response,
)
from ..protocol.state import RequestPhase
from ..protocol.versions import http2_enabled
from ..protocol.websocket import Handshake, accept_response, validate_handshake
from .tls import ConnectionTLS, abort_once_sent, write_buffer_size

__all__ = ["ServerProtocol", "bind", "describe_socket"]

logger = logging.getLogger("channels_server")

# After a response that leaves part of the request body unread, how long to
# keep reading (and discarding) before closing, so that the kernel does not
# answer the unread bytes with a reset that destroys the response in flight.
_LINGER_SECONDS = 2.0

# The request line of the HTTP/2 connection preface (RFC 9113 §3.4).
_H2C_PREFACE_LINE = b"PRI * HTTP/2.0\r\n"

# A close frame with code 1013 "Try Again Later" (RFC 6455 §5.5.1: FIN,
# opcode 0x8, unmasked; the payload is the code then a UTF-8 reason).
_CLOSE_1013 = b"\x88\x11\x03\xf5Try Again Later"


def bind(endpoint: Endpoint, default_backlog: int) -> socket.socket:
    """A listening, non-blocking socket for *endpoint*.

    Raises :class:`~channels_server.errors.ConfigurationError` when the
    address is taken or the descriptor is not a listening stream socket.
    """
    backlog = endpoint.backlog or default_backlog
    if endpoint.kind == "fd":
        assert endpoint.fileno is not None
        try:
            sock = socket.socket(fileno=endpoint.fileno)
        except OSError as exc:
            raise ConfigurationError(
                f"--fd {endpoint.fileno}: not a socket ({exc.strerror}); a process manager "
                "must pass a listening socket on this descriptor"
            ) from None
        if sock.type != socket.SOCK_STREAM:
            sock.detach()
            raise ConfigurationError(f"--fd {endpoint.fileno}: not a stream socket")
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            sock.listen(backlog)
    elif endpoint.kind == "unix":
        assert endpoint.path is not None
        path = endpoint.path
        with contextlib.suppress(FileNotFoundError):
            # A socket file left by a previous run would make bind() fail;
            # anything else at that path is not ours to remove.
            if stat.S_ISSOCK(os.stat(path).st_mode):
                os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
        except OSError as exc:
            sock.close()
            raise ConfigurationError(
                f"Cannot listen on unix socket {path}: {exc.strerror}"
            ) from exc
        if endpoint.mode is not None:
            os.chmod(path, endpoint.mode)
        sock.listen(backlog)
    else:
        host = endpoint.host or ""
        try:
            infos = socket.getaddrinfo(
                host or None, endpoint.port or 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        except socket.gaierror as exc:
            raise ConfigurationError(f"Cannot resolve interface {host!r}: {exc}") from None
        family, kind, proto, _, address = infos[0]
        # The protocol number matters: asyncio only sets TCP_NODELAY on accepted
        # sockets whose proto is IPPROTO_TCP, and without it Nagle's algorithm
        # and delayed ACKs add up to 40 ms to every keep-alive response.
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
        except OSError as exc:
            sock.close()
            message = exc.strerror
            if exc.errno == errno.EADDRINUSE:
                message = "address already in use"
            raise ConfigurationError(f"Cannot listen on {endpoint.describe()}: {message}") from exc
    sock.setblocking(False)
    return sock


def describe_socket(sock: socket.socket, *, tls: bool = False) -> str:
    """A human description of where *sock* listens (for logs and --port 0).

    *tls*: connections to it speak TLS (``https://``; a unix socket says "(TLS)").
    """
    address = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix socket {address} (TLS)" if tls else f"unix socket {address}"
    host, port = address[0], address[1]
    scheme = "https" if tls else "http"
    if sock.family == socket.AF_INET6:
        return f"{scheme}://[{host}]:{port}"
    return f"{scheme}://{host}:{port}"


class ServerProtocol(asyncio.Protocol, ConnectionHandle):
    """One client connection: HTTP/1.1 requests, possibly upgraded to a WebSocket."""

    __slots__ = (
        "_body_paused",
        "_closed",
        "_deadline",
        "_drain_pending",
        "_drain_waiter",
        "_header_timeout",
        "_lingering",
        "_loop",
        "_pipeline_paused",
        "_read_paused",
        "_timer",
        "_trusted",
        "_upgrade",
        "_write_paused",
        "_write_timer",
        "_write_unsent",
        "client",
        "context",
        "http",
        "server",
        "stream",
        "tls",
        "transport",
        "websocket",
    )

    def __init__(self, context: ServerContext) -> None:
        self.context = context
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._header_timeout = context.config.header_timeout
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int | None] | None = None
        #: The TLS side of the connection, None for plain TCP.
        self.tls: ConnectionTLS | None = None
        self.http: HTTPEngine | None = None
        self.stream: HTTPStream | None = None
        self.websocket: WebSocketStream | None = None
        self._upgrade: tuple[RequestHead, Handshake] | None = None
        self._closed = False
        self._trusted = False
        # Reading stops while either holds: a stream has enough unread body
        # (or WebSocket messages) queued, or a pipelined request waits for
        # the response in progress.
        self._body_paused = False
        self._pipeline_paused = False
        self._read_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        # The next request waits for the write buffer to drain (see response_complete).
        self._drain_pending = False
        # The write timeout: armed while the buffer is over its high-water
        # mark, or while a closing connection still holds unsent bytes.
        self._write_timer: asyncio.TimerHandle | None = None
        self._write_unsent = 0
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._lingering = False

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; both behave as one.
        self.transport = transport  # type: ignore[assignment]
        self._loop = asyncio.get_running_loop()
        context = self.context
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        # The transport's own tuples when they are pairs (IPv4): a copy per
        # connection would cost 64 bytes each (bench/server.py idle rows).
        if isinstance(peer, tuple) and peer:
            self.client = peer if len(peer) == 2 else (peer[0], peer[1])
            self._trusted = peer[0] in context.config.trusted_peers
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # For descriptors inherited from a process manager, whose
                # sockets asyncio may not recognise as TCP (see bind()).
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            # A unix socket: the peer is the local reverse proxy.
            self._trusted = True
        if isinstance(local, tuple):
            self.server = local if len(local) == 2 else (local[0], local[1])
        elif local:
            self.server = (str(local), None)
        # Over TLS the handshake is done (transport/accept.py): the extension
        # of the scopes is read from the SSL object when a request needs it.
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.tls = ConnectionTLS(ssl_object)
            if self.tls.alpn_protocol == "h2":
                # ALPN offers h2 only when HTTP/2 is enabled (transport/tls.py).
                self._switch_to_http2(b"")
                return
        context.add_connection(self)
        self.http = context.http_engine(context.limits, context.server_header)
        if context.shutting_down:
            self.transport.close()
            return
        # A new connection gets the header timeout to send its first request.
        self._wait_for_request(context.config.header_timeout)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        websocket = self.websocket
        if websocket is not None:
            websocket.feed_data(data)
            return
        http = self.http
        if http is None:
            return
        if http.phase is RequestPhase.IDLE:
            # (80 is "P": one comparison per request on the HTTP/1.1 path.)
            if data[0] == 80 and data.startswith(_H2C_PREFACE_LINE) and self._h2c_allowed():
                self._switch_to_http2(data)
                return
            # The first byte of a request: from now on the header timeout runs.
            # The pending timer fires no later than this new deadline (see
            # _wait_for_request), so it need not be rescheduled here.
            self._deadline = self._loop.time() + self._header_timeout
        http.receive_data(data)
        self._handle_events(http)

    def eof_received(self) -> bool | None:
        if self._lingering:
            self.transport.close()
            return None
        http = self.http
        if http is not None and self.websocket is None:
            http.receive_data(b"")
            self._handle_events(http)
        # The client closed its side: an HTTP/1.1 or WebSocket client that does
        # that is gone, so the connection closes (the default).
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._cancel_timer()
        write_timer = self._write_timer
        if write_timer is not None:
            self._write_timer = None
            write_timer.cancel()
        self.context.remove_connection(self)
        stream = self.stream
        if stream is not None:
            stream.disconnect()
        websocket = self.websocket
        if websocket is not None:
            websocket.connection_lost()
        self._release_drain_waiter()

    def _release_drain_waiter(self) -> None:
        """Wake a ``send()`` waiting for the write buffer (drained, or the connection gone)."""
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True
        self._start_write_timer()
        if self.websocket is not None:
            self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if not self._closed:
            # (A closing connection keeps its timer until the last byte is out.)
            write_timer = self._write_timer
            if write_timer is not None:
                self._write_timer = None
                write_timer.cancel()
        self._release_drain_waiter()
        if self._drain_pending:
            self._drain_pending = False
            if not self._closed and self.http is not None:
                self._start_next_request(self.http)
        elif self.websocket is not None:
            self._update_reading()

    # -- the write timeout ---------------------------------------------------------------------

    def _start_write_timer(self) -> None:
        if self._write_timer is None and not self._lingering:
            self._write_unsent = write_buffer_size(self.transport)
            self._write_timer = self._loop.call_later(
                self.context.config.write_timeout, self._on_write_timeout
            )

    def _on_write_timeout(self) -> None:
        self._write_timer = None
        if self._lingering:
            return  # The linger timer ends the connection.
        unsent = write_buffer_size(self.transport)
        if unsent == 0 or not (self._write_paused or self._closed):
            return
        if unsent < self._write_unsent:
            # The client is reading, however slowly: it is not stuck.
            self._start_write_timer()
            return
        logger.info(
            "Dropping connection from %s: it read none of %d queued bytes in %ss",
            self.client,
            unsent,
            self.context.config.write_timeout,
        )
        self.abort()

    # -- what the streams use ------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, data: bytes) -> None:
        if not self._closed and not self._lingering:
            self.transport.write(data)

    def drain_waiter(self) -> asyncio.Future[None] | None:
        if not self._write_paused or self._closed:
            return None
        waiter = self._drain_waiter
        if waiter is None:
            waiter = self._drain_waiter = asyncio.get_running_loop().create_future()
        return waiter

    @property
    def reading_paused(self) -> bool:
        return self._read_paused

    def pause_reading(self) -> None:
        """Stop reading until the stream has taken what is queued (flow control)."""
        self._body_paused = True
        self._update_reading()

    def resume_reading(self) -> None:
        self._body_paused = False
        self._update_reading()

    def _update_reading(self) -> None:
        paused = self._body_paused or self._pipeline_paused
        if self._write_paused and self.websocket is not None and not self._lingering:
            # A WebSocket client that does not read would otherwise make the
            # server queue a pong or close reply for every frame it sends.
            paused = True
        if paused is not self._read_paused and not self._closed:
            self._read_paused = paused
            if paused:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.transport.close()
            if write_buffer_size(self.transport):
                # The transport closes once the buffer is written: a client
                # that never reads it would hold the connection for ever.
                self._start_write_timer()
            if self.tls is not None:
                # Not waiting for the client's close_notify once all is sent.
                abort_once_sent(self._loop, self.transport)

    def abort(self) -> None:
        # Also after close(): bytes still queued are dropped.
        self._closed = True
        self.transport.abort()

    def shutdown(self) -> None:
        """Graceful shutdown: idle connections close now, busy ones after their response."""
        websocket = self.websocket
        if websocket is not None:
            websocket.server_close()
            return
        stream = self.stream
        if self._upgrade is not None or stream is None or stream.response_complete:
            self.close()
        # Otherwise the response in flight ends with "connection: close" (or,
        # if its head is already out, the connection closes when it completes).

    # -- HTTP/2 -------------------------------------------------------------------------------

    def _h2c_allowed(self) -> bool:
        """Whether a client opening with the HTTP/2 preface gets HTTP/2 (h2c, prior knowledge).

        Only on plain TCP (over TLS, HTTP/2 is chosen by ALPN) and with
        HTTP/2 enabled; otherwise the preface is an HTTP/1.1 request with an
        unknown method, refused as before.
        """
        return self.tls is None and http2_enabled(self.context.config)

    def _switch_to_http2(self, data: bytes) -> None:
        """Hand the connection to the HTTP/2 server, with what the client sent so far."""
        # Imported here: h2 is an optional dependency.
        from .http2 import HTTP2Server

        self._cancel_timer()
        self.http = None
        context = self.context
        protocol = HTTP2Server(
            context, self.transport, self.client, self.server, self._trusted, self.tls
        )
        self.transport.set_protocol(protocol)
        self._closed = True  # (This object no longer sees the connection.)
        context.add_connection(protocol)
        context.remove_connection(self)
        protocol.start(data)

    # -- HTTP ---------------------------------------------------------------------------------

    def _handle_events(self, http: HTTPEngine) -> None:
        while True:
            try:
                event = http.next_event()
            except HTTPProtocolError as exc:
                self._refuse(exc)
                return
            if isinstance(event, bytes):
                stream = self.stream
                if stream is not None and self._upgrade is None:
                    stream.feed_body(event)
                continue
            if event is NEED_DATA:
                if self._pipeline_paused:
                    # The pipelined requests buffered so far are all parsed.
                    self._pipeline_paused = False
                    self._update_reading()
                return
            if isinstance(event, RequestHead):
                if not self._on_request(http, event):
                    return
                continue
            if event is END_OF_REQUEST:
                if self._upgrade is not None:
                    self._start_websocket(http)
                    return
                stream = self.stream
                if stream is not None:
                    stream.feed_end()
                continue
            if event is PAUSED:
                # A pipelined request waits until the current response is done.
                if not self._pipeline_paused:
                    self._pipeline_paused = True
                    self._update_reading()
                return
            # PEER_CLOSED: the client closed its side between requests or mid-request.
            self.close()
            return

    def _on_request(self, http: HTTPEngine, head: RequestHead) -> bool:
        context = self.context
        if context.shutting_down:
            self._refuse(HTTPProtocolError(503, "Server is shutting down"))
            return False
        loop = self._loop
        if head.upgrade == b"websocket":
            try:
                handshake = validate_handshake(head)
            except HTTPProtocolError as exc:
                self._refuse(exc)
                return False
            self._upgrade = (head, handshake)
            return True
        if not context.admit(self):
            self._refuse(HTTPProtocolError(503, "Too many connections; try again later"))
            return False
        scope = self._scope(head, websocket=False)
        if scope is None:
            return False
        stream = HTTPStream(self, http, head, scope, loop.time())
        self.stream = stream
        stream.task = context.spawn(stream.run(context.application))
        timeout = context.config.http_timeout
        if timeout is not None:
            stream.start_timer(timeout)
        return True

    def _scope(self, head: RequestHead, *, websocket: bool) -> dict[str, Any] | None:
        """The connection scope of *head*, or ``None`` after refusing the request."""
        context = self.context
        try:
            return build_scope(
                head,
                websocket=websocket,
                client=self.client,
                server=self.server,
                trusted=self._trusted,
                config=context.config,
                state=context.state,
                tls=self.tls,
            )
        except HTTPProtocolError as exc:
            self._refuse(exc)
            return None

    def _refuse(self, error: HTTPProtocolError) -> None:
        """Answer a request the server will not pass to the application, then close."""
        logger.debug("Refused request from %s: %s", self.client, error)
        stream = self.stream
        if stream is not None and not stream.response_complete:
            # The body of a request being served turned out malformed.
            started = stream.response_started
            stream.disconnect()
            if started:
                self.abort()
                return
        extra = b"sec-websocket-version: 13\r\n" if error.status_code == 426 else b""
        self.write(
            error_response(error.status_code, error.reason, self.context.server_header, extra)
        )
        http = self.http
        head = http.head if http is not None else None
        self.context.access_log.http(
            self.client,
            head.method.decode("ascii", "replace") if head is not None else "-",
            head.target if head is not None else b"-",
            head.http_version.decode("ascii") if head is not None else "1.1",
            error.status_code,
            0,
            0.0,
        )
        self.close_lingering()

    def response_complete(self, stream: HTTPStream) -> None:
        """Called by the stream when the last byte of its response is queued."""
        if stream is not self.stream or self._closed:
            return
        http = self.http
        assert http is not None
        if not http.keep_alive or self.context.shutting_down:
            if http.request_complete and not self._pipeline_paused:
                self.close()
            else:
                # The client may still be sending (a body, pipelined requests).
                self.close_lingering()
            return
        if not http.request_complete:
            # The application answered without reading the whole body (or
            # before a 100-continue client sent it): the rest of the body
            # cannot be told apart from a next request without reading it.
            self.close_lingering()
            return
        self.stream = None
        # The finished stream's flow control no longer applies.
        self._body_paused = False
        if self._write_paused:
            # The client has not read this response: the next request (a
            # pipelined one, or one still to come) is neither read nor
            # started until it has, so that a client that never reads
            # cannot make the server queue response after response.
            self._drain_pending = True
            self._pipeline_paused = True
            self._update_reading()
            return
        self._start_next_request(http)

    def _start_next_request(self, http: HTTPEngine) -> None:
        http.start_next_request()
        self._wait_for_request(self.context.config.keep_alive_timeout)
        if http.phase is not RequestPhase.IDLE:
            # A pipelined request is already buffered; reading resumes once
            # the buffered requests are parsed (NEED_DATA), not before.
            self._deadline = self._loop.time() + self._header_timeout
            self._handle_events(http)
        else:
            self._pipeline_paused = False
            self._update_reading()

    def close_lingering(self) -> None:
        """Close after the queued bytes, reading and discarding what the client still sends.

        Closing a socket with unread bytes makes the kernel answer with a
        reset, and a reset can destroy the last response (or close frame) on
        its way to the client. So the server ends its side (FIN) and reads
        until the client closes too, for at most two seconds.
        """
        if self._closed or self._lingering:
            return
        self._lingering = True
        self._body_paused = self._pipeline_paused = False
        self._update_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._cancel_timer()
        self._timer = asyncio.get_running_loop().call_later(_LINGER_SECONDS, self.abort)

    # -- WebSocket ------------------------------------------------------------------------------

    def _start_websocket(self, http: HTTPEngine) -> None:
        assert self._upgrade is not None
        head, handshake = self._upgrade
        self._upgrade = None
        context = self.context
        if not context.admit(self):
            self._try_again_later(head, handshake)
            return
        scope = self._scope(head, websocket=True)
        if scope is None:
            return
        scope["subprotocols"] = handshake.subprotocols
        pending = http.upgrade()
        # The HTTP engine is done with this connection; frames go to wsproto.
        self.http = None
        self._cancel_timer()
        self._body_paused = self._pipeline_paused = False
        self._update_reading()
        websocket = WebSocketStream(
            self, handshake, scope, pending, asyncio.get_running_loop().time()
        )
        self.websocket = websocket
        websocket.task = context.spawn(websocket.run(context.application))

    def _try_again_later(self, head: RequestHead, handshake: Handshake) -> None:
        """Over ``limit_concurrency``: complete the handshake, then close with 1013.

        A browser sees no HTTP status of a refused handshake, only a failed
        connection; close code 1013 (Try Again Later, RFC 6455 §7.4.2 registry)
        tells a client why, and that reconnecting later is right.
        """
        context = self.context
        self.write(accept_response(handshake, None, (), context.server_header) + _CLOSE_1013)
        context.access_log.websocket(
            "WSREJECT", self.client, head.target.partition(b"?")[0].decode("latin-1"), 0.0
        )
        # The client answers the close frame (and may have sent more): read
        # and discard until it closes, as after an HTTP error.
        self.close_lingering()

    # -- the connection timer -----------------------------------------------------------------

    def _wait_for_request(self, timeout: float) -> None:
        # The timer fires at least every header_timeout while the connection
        # waits for a request, so that when the first byte arrives and the
        # deadline moves to "now + header_timeout", the timer already pending
        # fires no later than it and can reschedule itself to the exact time.
        loop = self._loop
        self._deadline = loop.time() + timeout
        if self._timer is None:
            delay = min(timeout, self.context.config.header_timeout)
            self._timer = loop.call_later(delay, self._on_timer)

    def _cancel_timer(self) -> None:
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.cancel()

    def _on_timer(self) -> None:
        self._timer = None
        http = self.http
        if http is None or self._closed:
            return
        phase = http.phase
        if phase is not RequestPhase.IDLE and phase is not RequestPhase.HEAD:
            return  # A request is being served; the timer is re-armed after it.
        loop = asyncio.get_running_loop()
        remaining = self._deadline - loop.time()
        if remaining > 0:
            delay = min(remaining, self.context.config.header_timeout)
            self._timer = loop.call_later(delay, self._on_timer)
            return
        if phase is RequestPhase.HEAD:
            logger.info(
                "Closing connection from %s: request head not received in time", self.client
            )
            self.write(
                error_response(408, "Request head not received in time", self.context.server_header)
            )
            # The client may still be sending its head: closing with unread
            # bytes would reset the connection and could destroy the 408.
            self.close_lingering()
            return
        self.close()
