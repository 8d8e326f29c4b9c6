"""One HTTP request as an ASGI connection scope: ``receive`` and ``send``.

Request body flow control: body bytes are queued until the application
calls ``receive()``, which hands out at most ``request_buffer_size`` bytes
per ``http.request`` message (daphne's chunking, 8192 by default), with
``more_body`` true on every message but the last. Once more than
:data:`BODY_HIGH_WATER` bytes wait, the connection stops reading from the
socket, and it resumes when the application has taken enough of them. A
slow application is never handed (and the server never holds) an unbounded
body.

Slow bodies: while the server waits for body bytes (the application has
asked for them, or has room for more), a client that sends none for
``body_timeout`` seconds gets 408 and the application ``http.disconnect``.
Time the application leaves the body unread does not count.

Response back-pressure: ``send()`` returns once the bytes are queued on the
socket, and waits first whenever the socket's write buffer is over its
limit, so a fast application cannot fill memory with a slow client's
response.

The response is a state machine whose table, :data:`HTTP_RESPONSE_TRANSITIONS`,
is the truth: every change of state goes through ``HTTPStream._process``,
which looks the event up in the table and refuses what it does not list::

    WAITING ─start─► STARTED ─body(more)─► STREAMING ─body(more)─┐
                        │                     │   ▲──────────────┘
                        │                     ├─body(last)─► COMPLETE
                        ├─body(last)──────────┼─────────────► COMPLETE
                        └─body(last, trailers)┴─► TRAILERS ─trailers(last)─► COMPLETE

and from every state but COMPLETE, ``server ends`` (408, 500, 503, or the
response cut short) leads to COMPLETE.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ApplicationError, ClientDisconnected
from ..protocol.http11 import CONTINUE_RESPONSE, RequestHead, error_response
from ..protocol.state import StateEnum
from .messages import message_type
from .stream import ASGIStream

if TYPE_CHECKING:
    from channels.asgi_types import Message, Scope

    from .connection import StreamConnection

__all__ = [
    "BODY_HIGH_WATER",
    "HTTP_RESPONSE_TRANSITIONS",
    "HTTPStream",
    "ResponseEvent",
    "ResponseFraming",
    "ResponseState",
]

logger = logging.getLogger("channels_server")

#: Request body bytes queued for the application before reading pauses.
BODY_HIGH_WATER = 65536

_DISCONNECT: dict[str, Any] = {"type": "http.disconnect"}


class ResponseState(StateEnum):
    """Where the response to one request is."""

    #: No ``http.response.start`` yet.
    WAITING = "waiting"
    #: ``http.response.start`` received; the head waits for the first body so
    #: that a single-message body can get a Content-Length.
    STARTED = "started"
    #: The head has been written; more body is coming.
    STREAMING = "streaming"
    #: The body is complete; ``http.response.trailers`` messages are expected.
    TRAILERS = "trailers"
    #: The response is complete; later messages are ignored (www spec).
    COMPLETE = "complete"


class ResponseEvent(StateEnum):
    """What moves a response from one state to another."""

    # From the application: the ASGI message it sends.
    START = "http.response.start"
    BODY = "http.response.body (more_body)"
    LAST_BODY = "http.response.body"
    LAST_BODY_BEFORE_TRAILERS = "http.response.body (trailers follow)"
    TRAILERS = "http.response.trailers (more_trailers)"
    LAST_TRAILERS = "http.response.trailers"
    # From the server: it answers (408, 500, 503) or cuts the response short.
    SERVER_ENDS = "the server ends the response"


_RS = ResponseState
_RE = ResponseEvent

#: (state, event) → the next state. What is not here is refused (see
#: HTTPStream._process); a complete response takes no events at all.
HTTP_RESPONSE_TRANSITIONS: dict[tuple[ResponseState, ResponseEvent], ResponseState] = {
    (_RS.WAITING, _RE.START): _RS.STARTED,
    (_RS.WAITING, _RE.SERVER_ENDS): _RS.COMPLETE,
    (_RS.STARTED, _RE.BODY): _RS.STREAMING,
    (_RS.STARTED, _RE.LAST_BODY): _RS.COMPLETE,
    (_RS.STARTED, _RE.LAST_BODY_BEFORE_TRAILERS): _RS.TRAILERS,
    (_RS.STARTED, _RE.SERVER_ENDS): _RS.COMPLETE,
    (_RS.STREAMING, _RE.BODY): _RS.STREAMING,
    (_RS.STREAMING, _RE.LAST_BODY): _RS.COMPLETE,
    (_RS.STREAMING, _RE.LAST_BODY_BEFORE_TRAILERS): _RS.TRAILERS,
    (_RS.STREAMING, _RE.SERVER_ENDS): _RS.COMPLETE,
    (_RS.TRAILERS, _RE.TRAILERS): _RS.TRAILERS,
    (_RS.TRAILERS, _RE.LAST_TRAILERS): _RS.COMPLETE,
    (_RS.TRAILERS, _RE.SERVER_ENDS): _RS.COMPLETE,
}


class ResponseFraming(Protocol):
    """What frames a response: the HTTP/1.1 engines (``HTTPEngine``), or an HTTP/2 stream.

    Each call returns the bytes to write, or ``b""`` when it has queued the
    response itself (HTTP/2 frames go through the connection's flow control).
    """

    def start_response(
        self,
        status: int,
        headers: Iterable[tuple[bytes, bytes]],
        body: bytes,
        more_body: bool,
        *,
        close: bool = False,
    ) -> bytes: ...

    def send_body(self, data: bytes) -> bytes: ...

    def end_response(self, trailers: Iterable[tuple[bytes, bytes]] = ()) -> bytes: ...


class HTTPStream(ASGIStream):
    """Serves one HTTP request to the application.

    The connection feeds it the body (:meth:`feed_body`, :meth:`feed_end`)
    and tells it when the client goes (:meth:`disconnect`); the application
    task runs :meth:`run`.
    """

    __slots__ = (
        "_body",
        "_body_seen",
        "_body_size",
        "_body_timer",
        "_continue_sent",
        "_final_delivered",
        "_more_body",
        "_paused",
        "_start_message",
        "_state",
        "_trailers_expected",
        "disconnected",
        "engine",
        "head",
        "response_size",
        "status",
    )

    def __init__(
        self,
        connection: StreamConnection,
        engine: ResponseFraming,
        head: RequestHead,
        scope: Scope,
        started_at: float,
    ) -> None:
        super().__init__(connection, scope, started_at)
        self.engine = engine
        self.head = head
        #: The response status once sent, for the access log.
        self.status: int | None = None
        self.response_size = 0
        self.disconnected = False
        self._body: list[bytes | memoryview] = []
        self._body_size = 0
        self._more_body = True
        self._final_delivered = False
        self._continue_sent = False
        self._paused = False
        self._state = ResponseState.WAITING
        self._trailers_expected = False
        self._start_message: tuple[int, Any] = (0, ())
        # The body timer runs while body bytes are awaited. Arrivals only
        # note the time (cheaper than moving a timer per read); the timer
        # checks it when it fires.
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_seen = 0.0
        if head.has_body and not head.expect_continue:
            self._await_body()

    # -- from the connection ------------------------------------------------------

    def feed_body(self, data: bytes) -> None:
        if not data:
            return
        self._body.append(data)
        self._body_size += len(data)
        if self._body_timer is not None:
            self._body_seen = asyncio.get_running_loop().time()
        if self._body_size > BODY_HIGH_WATER and not self._paused:
            self._paused = True
            self.connection.pause_reading()
        self._wake()

    def feed_end(self) -> None:
        self._more_body = False
        self._stop_body_timer()
        self._wake()

    # -- the body timer ----------------------------------------------------------------

    def _await_body(self) -> None:
        """Start (or restart) waiting for body bytes, from now."""
        loop = asyncio.get_running_loop()
        timeout = self.connection.context.config.body_timeout
        self._body_seen = loop.time()
        if self._body_timer is None:
            self._body_timer = loop.call_later(timeout, self._on_body_timer)

    def _stop_body_timer(self) -> None:
        timer = self._body_timer
        if timer is not None:
            self._body_timer = None
            timer.cancel()

    def _on_body_timer(self) -> None:
        self._body_timer = None
        if not self._more_body or self.disconnected:
            return
        loop = asyncio.get_running_loop()
        timeout = self.connection.context.config.body_timeout
        if self._paused:
            # The application has not taken what is queued: not the client's delay.
            self._await_body()
            return
        remaining = self._body_seen + timeout - loop.time()
        if remaining > 0:
            self._body_timer = loop.call_later(remaining, self._on_body_timer)
            return
        connection = self.connection
        logger.info(
            "Closing connection from %s: request body not received in time", connection.client
        )
        if self._state is ResponseState.WAITING or self._state is ResponseState.STARTED:
            self._process(ResponseEvent.SERVER_ENDS)
            self.status = 408
            self._send_error(408, "Request body not received in time")
            self._log()
            # The client may still send: closing with unread bytes could
            # reset the connection and destroy the 408.
            connection.close_lingering()
        else:
            # Part of the response is on the wire: the client must see it cut short.
            connection.abort()
        self.disconnect()

    def disconnect(self) -> None:
        """The client went away: ``receive()`` returns ``http.disconnect`` from now on."""
        if self.disconnected:
            return
        self.disconnected = True
        self._stop_body_timer()
        self._wake()
        task = self.task
        if task is not None and not task.done():
            self._start_close_timer()
        if self._state is not ResponseState.COMPLETE:
            self._log()

    @property
    def response_started(self) -> bool:
        return self._state is not ResponseState.WAITING

    @property
    def response_complete(self) -> bool:
        return self._state is ResponseState.COMPLETE

    # -- state ----------------------------------------------------------------------

    def _allowed(self, event: ResponseEvent) -> ResponseState:
        """The state *event* leads to from this one, as the table says.

        Raises :class:`~channels_server.errors.ApplicationError` for an event
        the table does not list (a message sent at the wrong time).
        """
        state = self._state
        new_state = HTTP_RESPONSE_TRANSITIONS.get((state, event))
        if new_state is None:
            raise ApplicationError(f"Cannot send {event.value!r} now: response is {state.value}")
        return new_state

    def _process(self, event: ResponseEvent) -> ResponseState:
        """Move to the state the table gives for *event*: the only place the state changes.

        Raises as :meth:`_allowed` and then changes nothing.
        """
        # The lookup is repeated here rather than calling _allowed(): this
        # runs for every response message (bench/server.py, hello row).
        new_state = HTTP_RESPONSE_TRANSITIONS.get((self._state, event))
        if new_state is None:
            new_state = self._allowed(event)  # Raises.
        self._state = new_state
        return new_state

    # -- the ASGI callables -------------------------------------------------------

    async def receive(self) -> Message:
        while True:
            queued = self._body
            if queued:
                limit = self.connection.context.config.request_buffer_size
                if self._body_size > limit:
                    body = self._take_chunk(limit)
                else:
                    first = queued[0] if len(queued) == 1 else b"".join(queued)
                    # (A memoryview is what is left of a piece handed out in chunks.)
                    body = first if isinstance(first, bytes) else bytes(first)
                    queued.clear()
                    self._body_size = 0
                if self._paused and self._body_size <= BODY_HIGH_WATER:
                    self._paused = False
                    self.connection.resume_reading()
                    if self._body_timer is not None:
                        # The client is waited for again from now.
                        self._await_body()
                # As daphne: more_body=True on every chunk but the last.
                more_body = self._more_body or self._body_size > 0
                if not more_body:
                    self._final_delivered = True
                return {"type": "http.request", "body": body, "more_body": more_body}
            if not self._more_body and not self._final_delivered:
                self._final_delivered = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if self.disconnected or self._state is ResponseState.COMPLETE:
                return dict(_DISCONNECT)
            if (
                self.head.expect_continue
                and not self._continue_sent
                and self._state is ResponseState.WAITING
            ):
                # RFC 9110 §10.1.1: the client waits for 100 before sending the
                # body; send it only once the application asks for the body.
                self._continue_sent = True
                self._send_continue()
                if self.head.has_body:
                    self._await_body()
            waiter = self._waiter
            if waiter is None:
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            await waiter

    def _take_chunk(self, limit: int) -> bytes:
        """The first *limit* bytes of the queued body (more than that is queued)."""
        queued = self._body
        first = queued[0]
        if len(first) < limit:
            first = b"".join(queued)
            queued.clear()
            queued.append(first)
        # A view of the rest, so that a large read handed out in many chunks
        # is copied once, chunk by chunk, rather than once per chunk.
        view = memoryview(first)
        if len(view) == limit:
            del queued[0]
        else:
            queued[0] = view[limit:]
        self._body_size -= limit
        return bytes(view[:limit])

    async def send(self, message: Message) -> None:
        kind = message_type(message)
        if kind == "http.response.body":
            more_body = message.get("more_body", False)
            if more_body:
                event = ResponseEvent.BODY
            elif self._trailers_expected:
                event = ResponseEvent.LAST_BODY_BEFORE_TRAILERS
            else:
                event = ResponseEvent.LAST_BODY
        elif kind == "http.response.start":
            event = ResponseEvent.START
        elif kind == "http.response.trailers":
            event = (
                ResponseEvent.TRAILERS
                if message.get("more_trailers", False)
                else ResponseEvent.LAST_TRAILERS
            )
        else:
            raise ApplicationError(
                f"Unexpected ASGI message type {kind!r} in an http scope (expected "
                "'http.response.start', 'http.response.body' or 'http.response.trailers')"
            )
        if self.disconnected:
            raise ClientDisconnected(f"Cannot send {kind!r}: the client has disconnected")
        state = self._state
        if state is ResponseState.COMPLETE:
            return  # www spec: messages after the response is complete are ignored.
        connection = self.connection
        if event is ResponseEvent.START:
            self._process(event)
            self._on_response_start(message)
            return
        if event is ResponseEvent.TRAILERS or event is ResponseEvent.LAST_TRAILERS:
            new_state = self._process(event)
            if new_state is ResponseState.COMPLETE:
                connection.write(self.engine.end_response(message.get("headers", ())))
                self._finish()
            return
        # The state changes once the body is on its way: a refused body or
        # head leaves it where it was.
        new_state = self._allowed(event)
        body = message.get("body", b"")
        if not isinstance(body, bytes):
            if not isinstance(body, (bytearray, memoryview)):
                raise ApplicationError(
                    f"http.response.body 'body' must be bytes, not {type(body).__name__}"
                )
            body = bytes(body)
        last = new_state is not ResponseState.STREAMING
        if state is ResponseState.STARTED:
            start = self._start_message
            data = self.engine.start_response(
                start[0],
                start[1],
                body,
                more_body=new_state is not ResponseState.COMPLETE,
                close=connection.context.shutting_down,
            )
            self.status = start[0]
        else:
            data = self.engine.send_body(body)
            if new_state is ResponseState.COMPLETE:
                data += self.engine.end_response()
        self._process(event)
        self.response_size += len(body)
        if data:
            connection.write(data)
        if last and new_state is ResponseState.COMPLETE:
            self._finish()
            return
        waiter = connection.drain_waiter()
        if waiter is not None:
            await waiter
            if self.disconnected:
                raise ClientDisconnected("The client disconnected while the response was sent")

    def _send_continue(self) -> None:
        """``100 Continue``: the client may send the body it holds back."""
        self.connection.write(CONTINUE_RESPONSE)

    def _send_error(self, status: int, reason: str) -> None:
        """A whole response the server writes itself (408, 500, 503) in the application's place."""
        connection = self.connection
        connection.write(error_response(status, reason, connection.context.server_header))

    def _on_response_start(self, message: Message) -> None:
        status = message.get("status")
        # Exactly an int: a bool or an IntEnum member is refused.
        if type(status) is not int:
            raise ApplicationError(f"http.response.start 'status' must be an int, not {status!r}")
        headers = message.get("headers", ())
        self._trailers_expected = bool(message.get("trailers", False))
        # Kept until the first body: the head is written with it (www spec allows it).
        self._start_message = (status, headers)

    def _finish(self) -> None:
        self._cancel_timer()
        self._stop_body_timer()
        self._wake()
        self._log()
        finished = getattr(self.connection, "response_complete", None)
        if finished is not None:
            finished(self)

    # -- running the application ---------------------------------------------------

    def _description(self) -> str:
        return f"{self.scope['method']} {self.scope['path']}"

    def _application_ended(self, *, failed: bool) -> None:
        if not failed:
            if self._state is ResponseState.COMPLETE or self.disconnected:
                return
            logger.error(
                "Application returned without completing the response to %s %s",
                self.scope["method"],
                self.scope["path"],
            )
        self._respond_to_failure()

    def _respond_to_failure(self) -> None:
        connection = self.connection
        if self.disconnected or connection.closed:
            return
        if self._state is ResponseState.WAITING or self._state is ResponseState.STARTED:
            self._process(ResponseEvent.SERVER_ENDS)
            self.status = 500
            self._send_error(500, "")
            self._log()
            self._cancel_timer()
            connection.close()
        else:
            # Part of the response is on the wire: the client must see it cut short.
            if self._state is not ResponseState.COMPLETE:
                self._process(ResponseEvent.SERVER_ENDS)
            self._log()
            connection.abort()

    def on_http_timeout(self) -> None:
        """``--http-timeout`` expired before the response was complete."""
        self._timer = None
        if self._state is ResponseState.COMPLETE or self.disconnected:
            return
        connection = self.connection
        if self._state is ResponseState.WAITING or self._state is ResponseState.STARTED:
            logger.warning(
                "Application did not respond to %s %s within the HTTP timeout",
                self.scope["method"],
                self.scope["path"],
            )
            self._process(ResponseEvent.SERVER_ENDS)
            self.status = 503
            self._send_error(503, "Application failed to respond within time limit.")
            self._log()
            connection.close()
        else:
            connection.abort()

    def start_timer(self, delay: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(delay, self.on_http_timeout)

    def _start_close_timer(self) -> None:
        self._cancel_timer()
        delay = self.connection.context.config.application_close_timeout
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_close_timeout)

    def _on_close_timeout(self) -> None:
        self._timer = None
        task = self.task
        if task is not None and not task.done():
            logger.warning(
                "Application for %s %s was still running %ss after the client went away; "
                "cancelling it",
                self.scope["method"],
                self.scope["path"],
                self.connection.context.config.application_close_timeout,
            )
            task.cancel()

    def _log(self) -> None:
        access = self.connection.context.access_log
        if not access.enabled:
            return
        scope = self.scope
        access.http(
            # The scope's client: with trusted proxy headers, the forwarded one.
            scope["client"],
            scope["method"],
            self.head.target,
            scope["http_version"],
            self.status,
            self.response_size,
            asyncio.get_running_loop().time() - self.started_at,
        )
