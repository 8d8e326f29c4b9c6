"""An HTTP/2 connection: the sans-IO engine on the socket, one ASGI stream per request.

:class:`HTTP2Server` takes over a connection from
:class:`~channels_server.transport.tcp.ServerProtocol` (``transport.set_protocol``)
when TLS negotiated ``h2`` by ALPN, or when a plain TCP client opened with
the HTTP/2 preface (h2c with prior knowledge). It feeds the bytes to
:class:`~channels_server.protocol.http2.HTTP2Connection`, starts an
:class:`~channels_server.asgi.http_stream.HTTPStream` for each request, and
writes what the engine queues.

Each stream talks to the connection through a :class:`StreamChannel`: the
:class:`~channels_server.asgi.connection.StreamConnection` of that one
stream, and the framing of its response (HEADERS and DATA through the
engine's flow control instead of HTTP/1.1 bytes). So the streams are the
same ones HTTP/1.1 uses, and an application cannot tell the difference
except by ``http_version``.

Flow control:

* a stream's ``send()`` waits while the stream has body bytes the client's
  windows do not let out yet, or while the socket's write buffer is full;
* a stream's received body is acknowledged (the client's window reopened)
  only while its application keeps up (``pause_reading`` stops it);
* while the socket's write buffer is full the connection stops reading, so
  that a client that does not read cannot make the server queue replies
  (PING and SETTINGS acknowledgements) for ever;
* a client that reads nothing (the socket's buffer stays full) or opens no
  window (a stream waits, and no DATA has left) for ``write_timeout``
  seconds is dropped.

An extended CONNECT with ``:protocol websocket`` (RFC 8441) gets a
:class:`HTTP2WebSocketStream`: the WebSocket scope of HTTP/1.1 (but for
``http_version``), its handshake answered with a 200 (or the refusal's
status), its frames in DATA frames both ways.

Timers: a connection with no stream for ``keep_alive_timeout`` seconds gets
GOAWAY and is closed; the streams keep their own (``http_timeout``,
``body_timeout``, the WebSocket timers). On graceful shutdown new streams
are refused, WebSockets are closed with 1012, and once the streams in
flight are done the connection sends GOAWAY and closes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from h2.errors import ErrorCodes

from ..asgi.http_stream import HTTPStream
from ..asgi.scope import build_scope
from ..asgi.websocket_stream import WebSocketStream
from ..context import ConnectionHandle, ServerContext
from ..errors import HTTPProtocolError
from ..protocol.http2 import (
    BodyReceived,
    ConnectionEnded,
    HTTP2Connection,
    HTTP2Limits,
    RequestEnded,
    RequestReceived,
    RequestRefused,
    StreamCancelled,
)
from ..protocol.http11 import RequestHead
from ..protocol.websocket import Handshake, accept_response, validate_extended_connect
from .tls import ConnectionTLS, abort_once_sent, write_buffer_size

__all__ = ["HTTP2Server", "HTTP2Stream", "HTTP2WebSocketStream", "StreamChannel"]

logger = logging.getLogger("channels_server")

_STATUSES_WITHOUT_BODY = frozenset({204, 304})


class HTTP2Server(asyncio.Protocol, ConnectionHandle):
    """One HTTP/2 connection (see the module docstring).

    :param context: the server's shared state.
    :param transport: the connection's transport (already handed this protocol).
    :param client: the peer's (host, port), or None over a unix socket.
    :param server: the local (host, port), or (path, None).
    :param trusted: whether the peer's proxy headers are believed.
    :param tls: the TLS side, or None for h2c.
    """

    def __init__(
        self,
        context: ServerContext,
        transport: asyncio.Transport,
        client: tuple[str, int] | None,
        server: tuple[str, int | None] | None,
        trusted: bool,
        tls: ConnectionTLS | None,
    ) -> None:
        self.context = context
        self.transport = transport
        self.client = client
        self.server = server
        self.trusted = trusted
        self.tls = tls
        config = context.config
        loop = self._loop = asyncio.get_running_loop()
        limits = HTTP2Limits(
            config.http2_max_concurrent_streams,
            config.max_header_size,
            config.max_header_count,
            config.limit_request_body,
        )
        server_name = config.server_name.encode("ascii") if config.server_name else b""
        self.engine = HTTP2Connection(limits, server_name, loop.time())
        self.channels: dict[int, StreamChannel] = {}
        self.closed = False
        self.write_paused = False
        self._idle_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._progress = -1
        self._ended = False
        self._flush_scheduled = False

    def start(self, data: bytes) -> None:
        """Send the server's SETTINGS, then handle *data* (what the client sent so far).

        The caller has registered the connection with the context.
        """
        self.send_queued()
        if self.context.shutting_down:
            self.shutdown()
        if data:
            self.data_received(data)
        self._arm_idle_timer()

    # -- asyncio.Protocol -------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        events = self.engine.receive_data(data, self._loop.time())
        channels = self.channels
        for event in events:
            if isinstance(event, BodyReceived):
                channel = channels.get(event.stream_id)
                if channel is not None:
                    channel.feed_body(event.data, event.size)
                else:
                    self.engine.acknowledge(event.stream_id, event.size)
            elif isinstance(event, RequestReceived):
                self._start_stream(event)
            elif isinstance(event, RequestEnded):
                channel = channels.get(event.stream_id)
                if channel is not None:
                    channel.feed_end()
            elif isinstance(event, StreamCancelled):
                channel = channels.get(event.stream_id)
                if channel is not None:
                    channel.cancelled()
            elif isinstance(event, RequestRefused):
                self._log_refusal(event.error, event.method, event.target)
            else:
                self._connection_ended(event)
        self.send_queued()

    def eof_received(self) -> bool | None:
        return None  # The client is gone: close.

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for timer in (self._idle_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._idle_timer = self._write_timer = None
        self.context.remove_connection(self)
        for channel in list(self.channels.values()):
            channel.cancelled()

    def pause_writing(self) -> None:
        self.write_paused = True
        self.engine.writable = False
        if not self.closed:
            # Replies to what the client sends (PING, SETTINGS) would pile up unread.
            self.transport.pause_reading()
        self._start_write_timer()

    def resume_writing(self) -> None:
        self.write_paused = False
        self.engine.writable = True
        if not self.closed:
            self.transport.resume_reading()
            self.engine.flush()
            self.send_queued()
            for channel in list(self.channels.values()):
                channel.wake()

    # -- the server's side ----------------------------------------------------------------------

    def shutdown(self) -> None:
        """Graceful shutdown: the streams in flight finish, then GOAWAY and close.

        New streams are refused meanwhile with REFUSED_STREAM, which tells the
        client the request was not processed and can be retried elsewhere
        (RFC 9113 §8.7). The GOAWAY waits for the streams in flight because
        clients built on h2 (httpx among them) abandon every unfinished
        stream when they receive one, whatever its last stream ID.
        """
        if self.closed:
            return
        self.engine.stop_accepting()
        for channel in list(self.channels.values()):
            if channel.websocket is not None:
                channel.websocket.server_close()
        self.send_queued()
        if self.engine.idle:
            self._close_gracefully()

    def abort(self) -> None:
        self.closed = True
        self.transport.abort()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        transport = self.transport
        if transport.is_closing():
            return  # Closed from the other side: connection_lost follows.
        data = self.engine.data_to_send()
        if data:
            transport.write(data)
        transport.close()
        if write_buffer_size(transport):
            # The transport closes once the buffer is written: a client
            # that never reads it would hold the connection for ever.
            self._start_write_timer()
        if self.tls is not None:
            # Not waiting for the client's close_notify once all is sent.
            abort_once_sent(self._loop, transport)

    def _close_gracefully(self) -> None:
        """GOAWAY NO_ERROR, then close (the streams are all done)."""
        self.engine.goaway()
        self.send_queued()
        self.close()

    # -- streams ----------------------------------------------------------------------------

    def _start_stream(self, event: RequestReceived) -> None:
        context = self.context
        engine = self.engine
        stream_id = event.stream_id
        head = event.head
        if not context.admit(self):
            engine.release(stream_id)
            refusal = HTTPProtocolError(503, "Too many connections; try again later")
            engine.refuse(stream_id, refusal)
            self._log_refusal(refusal, head.method, head.target)
            return
        if event.protocol is not None:
            self._start_websocket(event)
            return
        scope = self._scope(stream_id, head, websocket=False)
        if scope is None:
            return
        channel = StreamChannel(self, stream_id)
        self.channels[stream_id] = channel
        self._cancel_idle_timer()
        stream = HTTP2Stream(channel, channel, head, scope, self._loop.time())
        channel.stream = stream
        if event.end_stream:
            stream.feed_end()
        task = stream.task = context.spawn(stream.run(context.application))
        task.add_done_callback(channel.finished)
        timeout = context.config.http_timeout
        if timeout is not None:
            stream.start_timer(timeout)

    def _start_websocket(self, event: RequestReceived) -> None:
        """An extended CONNECT (RFC 8441): a WebSocket on this stream, the same scope as
        over HTTP/1.1 but for ``http_version``."""
        context = self.context
        stream_id = event.stream_id
        try:
            handshake = validate_extended_connect(event.head)
        except HTTPProtocolError as error:
            self.engine.release(stream_id)
            self.engine.refuse(stream_id, error)
            self._log_refusal(error, event.head.method, event.head.target)
            return
        scope = self._scope(stream_id, event.head, websocket=True)
        if scope is None:
            return
        scope["subprotocols"] = handshake.subprotocols
        channel = StreamChannel(self, stream_id)
        self.channels[stream_id] = channel
        self._cancel_idle_timer()
        websocket = HTTP2WebSocketStream(channel, handshake, scope, b"", self._loop.time())
        channel.websocket = websocket
        task = websocket.task = context.spawn(websocket.run(context.application))
        task.add_done_callback(channel.finished)
        if event.end_stream:
            channel.feed_end()

    def _scope(
        self, stream_id: int, head: RequestHead, *, websocket: bool
    ) -> dict[str, Any] | None:
        context = self.context
        try:
            scope = build_scope(
                head,
                websocket=websocket,
                client=self.client,
                server=self.server,
                trusted=self.trusted,
                config=context.config,
                state=context.state,
                tls=self.tls,
            )
        except HTTPProtocolError as error:
            self.engine.release(stream_id)
            self.engine.refuse(stream_id, error)
            self._log_refusal(error, head.method, head.target)
            return None
        scope["http_version"] = "2"
        return scope

    def _log_refusal(self, error: HTTPProtocolError, method: bytes, target: bytes) -> None:
        """A request answered with an error before any application saw it: logged as on
        HTTP/1.1 (a debug line, and the access log)."""
        logger.debug("Refused HTTP/2 request from %s: %s", self.client, error)
        self.context.access_log.http(
            self.client, method.decode("ascii", "replace"), target, "2", error.status_code, 0, 0.0
        )

    def stream_finished(self, channel: StreamChannel) -> None:
        """The stream's application task has ended."""
        stream_id = channel.stream_id
        self.channels.pop(stream_id, None)
        self.engine.release(stream_id)
        self.send_queued()
        if self.closed:
            return
        if self.engine.idle:
            if self._ended:
                self.close()
            elif self.context.shutting_down:
                self._close_gracefully()
            else:
                self._arm_idle_timer()

    def _connection_ended(self, event: ConnectionEnded) -> None:
        self._ended = True
        if not event.by_client:
            logger.info(
                "Closing HTTP/2 connection from %s: %s (GOAWAY %s)",
                self.client,
                event.reason,
                _error_name(event.error_code),
            )
        for channel in list(self.channels.values()):
            channel.cancelled()
        self.send_queued()
        self.close()

    # -- writing --------------------------------------------------------------------------------

    def send_queued(self) -> None:
        """Write what the engine has queued, once this turn of the event loop is over.

        One write for all the streams that answered in the same turn (a
        hundred concurrent requests: one write instead of a hundred).
        """
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self.write_now()

    def write_now(self) -> None:
        """Write what the engine has queued, and wake the streams whose queue emptied."""
        engine = self.engine
        data = engine.data_to_send()
        if data and not self.closed:
            self.transport.write(data)
        drained = engine.drained
        if drained:
            channels = self.channels
            for stream_id in drained:
                channel = channels.get(stream_id)
                if channel is not None:
                    channel.wake()
            drained.clear()

    def waiting_on_window(self) -> None:
        """A stream's ``send()`` waits for the client's window: the write timeout runs."""
        self._start_write_timer()

    def _start_write_timer(self) -> None:
        if self._write_timer is None:
            self._progress = self.engine.bytes_sent - write_buffer_size(self.transport)
            self._write_timer = self._loop.call_later(
                self.context.config.write_timeout, self._on_write_timeout
            )

    def _on_write_timeout(self) -> None:
        self._write_timer = None
        stuck = (
            self.write_paused
            or self.closed
            or any(channel.waiting for channel in self.channels.values())
        )
        unsent = write_buffer_size(self.transport)
        if not stuck or (self.closed and not unsent):
            return
        progress = self.engine.bytes_sent - unsent
        if progress != self._progress:
            self._start_write_timer()  # The client reads, however slowly.
            return
        logger.info(
            "Dropping HTTP/2 connection from %s: it read nothing and opened no window in %ss",
            self.client,
            self.context.config.write_timeout,
        )
        self.abort()

    # -- the idle timer ------------------------------------------------------------------------

    def _arm_idle_timer(self) -> None:
        if self._idle_timer is None and not self.channels and not self.closed:
            self._idle_timer = self._loop.call_later(
                self.context.config.keep_alive_timeout, self._on_idle
            )

    def _cancel_idle_timer(self) -> None:
        timer = self._idle_timer
        if timer is not None:
            self._idle_timer = None
            timer.cancel()

    def _on_idle(self) -> None:
        self._idle_timer = None
        if not self.channels and not self.closed:
            self._close_gracefully()


def _error_name(code: int) -> str:
    try:
        return ErrorCodes(code).name
    except ValueError:
        return hex(code)


class StreamChannel:
    """One stream's side of the connection: its ``StreamConnection`` and response framing."""

    __slots__ = (
        "_drain_waiter",
        "_paused",
        "_task_done",
        "_unacknowledged",
        "client",
        "connection",
        "context",
        "ended",
        "server",
        "stream",
        "stream_id",
        "websocket",
    )

    def __init__(self, connection: HTTP2Server, stream_id: int) -> None:
        self.connection = connection
        self.context = connection.context
        self.client = connection.client
        self.server = connection.server
        self.stream_id = stream_id
        #: The request's stream, or the WebSocket's (extended CONNECT).
        self.stream: HTTPStream | None = None
        self.websocket: WebSocketStream | None = None
        #: The stream is over for the server (ended, reset, or the connection gone).
        self.ended = False
        self._task_done = False
        self._paused = False
        self._unacknowledged = 0
        self._drain_waiter: asyncio.Future[None] | None = None

    # -- what StreamConnection asks for ----------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.ended or self.connection.closed

    def write(self, data: bytes) -> None:
        if data and not self.closed:
            self.connection.engine.send_data(self.stream_id, data)
            self.connection.send_queued()

    @property
    def waiting(self) -> bool:
        """Whether the stream's ``send()`` waits for the client."""
        waiter = self._drain_waiter
        return waiter is not None and not waiter.done()

    def drain_waiter(self) -> asyncio.Future[None] | None:
        connection = self.connection
        if self.closed:
            return None
        if not connection.engine.pending(self.stream_id) and not connection.write_paused:
            return None
        waiter = self._drain_waiter
        if waiter is None or waiter.done():
            waiter = self._drain_waiter = asyncio.get_running_loop().create_future()
        connection.waiting_on_window()
        return waiter

    def wake(self) -> None:
        """Wake a ``send()`` waiting to drain, once the queue has (or the stream is gone)."""
        waiter = self._drain_waiter
        if waiter is None or waiter.done():
            return
        connection = self.connection
        if self.closed or (
            not connection.engine.pending(self.stream_id) and not connection.write_paused
        ):
            self._drain_waiter = None
            waiter.set_result(None)

    @property
    def reading_paused(self) -> bool:
        return self._paused or self.connection.write_paused

    def pause_reading(self) -> None:
        """The application is behind: received body is no longer acknowledged."""
        self._paused = True

    def resume_reading(self) -> None:
        self._paused = False
        size = self._unacknowledged
        if size:
            self._unacknowledged = 0
            self.connection.engine.acknowledge(self.stream_id, size)
            self.connection.send_queued()

    def close(self) -> None:
        """End the stream once its queue is sent (the response is already complete)."""
        if not self.closed:
            self.connection.engine.send_data(self.stream_id, b"", end_stream=True)
            self.connection.send_queued()
        if self.websocket is not None:
            self.ended = True
            self._release_if_done()

    def close_lingering(self) -> None:
        # A body still coming is refused with RST_STREAM NO_ERROR by the engine
        # once the response has ended (RFC 9113 §8.1): nothing to linger for.
        self.close()

    def abort(self) -> None:
        """Cut the stream short: RST_STREAM (the other streams go on)."""
        if not self.ended:
            self.ended = True
            connection = self.connection
            connection.engine.reset(self.stream_id, ErrorCodes.INTERNAL_ERROR)
            connection.send_queued()
        self._lost()

    def response_complete(self, stream: HTTPStream) -> None:
        """The last of the response is queued (the engine ends the stream after it)."""

    # -- from the connection ---------------------------------------------------------------------

    def feed_body(self, data: bytes, size: int) -> None:
        stream = self.stream
        if stream is not None:
            stream.feed_body(data)
        elif self.websocket is not None:
            self.websocket.feed_data(data)
        if self._paused:
            self._unacknowledged += size
        else:
            self.connection.engine.acknowledge(self.stream_id, size)

    def feed_end(self) -> None:
        stream = self.stream
        if stream is not None:
            stream.feed_end()
        elif self.websocket is not None:
            # The client has ended its side: no close frame can follow.
            self.websocket.connection_lost()
            self.close()

    def cancelled(self) -> None:
        """The client reset the stream, or the connection is gone."""
        self.ended = True
        self._lost()

    def _lost(self) -> None:
        stream = self.stream
        if stream is not None:
            stream.disconnect()
        websocket = self.websocket
        if websocket is not None:
            websocket.connection_lost()
        self.wake()
        self._release_if_done()

    def finished(self, task: asyncio.Task[None]) -> None:
        self._task_done = True
        self._release_if_done()

    def _release_if_done(self) -> None:
        # A WebSocket outlives its application task while the close
        # handshake runs: the stream is released once both are over.
        if self._task_done and (self.websocket is None or self.closed):
            self._task_done = False
            self.connection.stream_finished(self)

    # -- the response, as HTTP/2 frames (ResponseFraming) ------------------------------------

    def start_response(
        self,
        status: int,
        headers: Any,
        body: bytes,
        more_body: bool,
        *,
        close: bool = False,
    ) -> bytes:
        """Send the head (HEADERS) and queue the first body bytes; ``b""`` (nothing to write)."""
        stream = self.stream
        assert stream is not None
        engine = self.connection.engine
        no_body = status in _STATUSES_WITHOUT_BODY or stream.head.method == b"HEAD"
        length = None
        if not more_body and not no_body:
            length = len(body)
        if no_body:
            body = b""
        end = not more_body or no_body
        engine.respond(
            self.stream_id, status, headers, end_stream=end and not body, content_length=length
        )
        if body:
            engine.send_data(self.stream_id, body, end_stream=not more_body)
        self.connection.send_queued()
        return b""

    def send_body(self, data: bytes) -> bytes:
        stream = self.stream
        if data and not self.closed and stream is not None and stream.head.method != b"HEAD":
            self.connection.engine.send_data(self.stream_id, data)
            self.connection.send_queued()
        return b""

    def end_response(self, trailers: Any = ()) -> bytes:
        engine = self.connection.engine
        trailers = list(trailers)
        if trailers:
            engine.send_trailers(self.stream_id, trailers)
        else:
            engine.send_data(self.stream_id, b"", end_stream=True)
        self.connection.send_queued()
        return b""

    def send_continue(self) -> None:
        self.connection.engine.send_continue(self.stream_id)
        self.connection.send_queued()

    def send_error(self, status: int, reason: str) -> None:
        if self.closed:
            return
        self.connection.engine.refuse(self.stream_id, HTTPProtocolError(status, reason))
        self.connection.send_queued()


class HTTP2WebSocketStream(WebSocketStream):
    """A :class:`WebSocketStream` over an extended CONNECT: its handshake answers are
    HTTP/2 responses (200 accepts, RFC 8441 §5), its frames DATA."""

    __slots__ = ()

    connection: StreamChannel

    def _accept_response(
        self, handshake: Handshake, subprotocol: Any, headers: Any, extensions: bytes
    ) -> bytes:
        channel = self.connection
        # The same checks as over HTTP/1.1 (an offered subprotocol, valid headers).
        accept_response(handshake, subprotocol, headers, b"", extensions)
        fields = list(headers)
        if subprotocol is not None:
            fields.append((b"sec-websocket-protocol", subprotocol.encode("ascii")))
        if extensions:
            fields.append((b"sec-websocket-extensions", extensions))
        channel.connection.engine.respond(channel.stream_id, 200, fields, end_stream=False)
        channel.connection.send_queued()
        return b""

    def _refusal_response(self, status: int) -> bytes:
        self.connection.send_error(status, "")
        return b""

    def _denial_response(self, status: int, headers: Any, body: bytes) -> bytes:
        channel = self.connection
        engine = channel.connection.engine
        engine.respond(
            channel.stream_id, status, headers, end_stream=not body, content_length=len(body)
        )
        if body:
            engine.send_data(channel.stream_id, body, end_stream=True)
        channel.connection.send_queued()
        return b""


class HTTP2Stream(HTTPStream):
    """An :class:`HTTPStream` whose own responses (100, 408, 500, 503) are HTTP/2 frames."""

    __slots__ = ()

    connection: StreamChannel

    def _send_continue(self) -> None:
        self.connection.send_continue()

    def _send_error(self, status: int, reason: str) -> None:
        self.connection.send_error(status, reason)
