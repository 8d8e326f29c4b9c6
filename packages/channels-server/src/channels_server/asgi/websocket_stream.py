"""One WebSocket connection as an ASGI connection scope: ``receive`` and ``send``.

The stream is a state machine whose table, :data:`WEBSOCKET_TRANSITIONS`,
is the truth: every change of :attr:`WebSocketStream.state` goes through
:meth:`WebSocketStream._process`, which looks the event up in the table and
refuses what it does not list. The handshake is answered only once the
application accepts (101), closes (403) or sends its own HTTP response (the
``websocket.http.response`` extension); then messages flow both ways until
either side closes::

    CONNECTING ─accept─► OPEN ─app/server close─► CLOSING ─client close/fail/lost─► CLOSED
        │                 └─client close / fail / lost ────────────────────────► CLOSED
        ├─app/server close, lost─► CLOSED     (403 or 503: the handshake is refused)
        └─denial start─► DENIAL ─denial last body / server close / lost─► CLOSED

Received messages are queued for the application; past
:data:`QUEUE_HIGH_WATER` bytes or :data:`QUEUE_MAX_MESSAGES` messages the
connection stops reading until the application catches up. ``send()`` waits
whenever the socket's write buffer is over its limit. Before the application
accepts, a client may send at most :data:`EARLY_DATA_LIMIT` bytes (RFC 6455
§4.1 has it wait for the server's answer); one that sends more is dropped.

One timer per connection covers, in turn: the handshake deadline
(``websocket_connect_timeout``), keep-alive pings (``ping_interval`` /
``ping_timeout``), the connection's maximum lifetime (``websocket_timeout``),
the wait for the client's close frame, and finally the application close
timeout. It is re-armed only when it fires, never per frame: activity is
counted, and the timer compares counts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from ..errors import ApplicationError, ClientDisconnected, ServerError
from ..protocol.deflate import negotiate_deflate
from ..protocol.http11 import error_response, simple_response
from ..protocol.state import StateEnum
from ..protocol.websocket import (
    CloseReceived,
    ConnectionFailed,
    Handshake,
    WebSocketConnection,
    accept_response,
    validate_close_code,
)
from .messages import message_type
from .stream import ASGIStream

if TYPE_CHECKING:
    from channels.asgi_types import Message, Scope

    from .connection import StreamConnection

__all__ = [
    "EARLY_DATA_LIMIT",
    "QUEUE_HIGH_WATER",
    "QUEUE_MAX_MESSAGES",
    "WEBSOCKET_TRANSITIONS",
    "WebSocketEvent",
    "WebSocketState",
    "WebSocketStream",
]

logger = logging.getLogger("channels_server")

#: Bytes of received messages queued for the application before reading pauses.
QUEUE_HIGH_WATER = 1024 * 1024
#: Received messages queued for the application before reading pauses.
QUEUE_MAX_MESSAGES = 64
#: Bytes a client may send after its handshake request before the
#: application has accepted or denied it. RFC 6455 §4.1: "the client MUST
#: wait for a response from the server before sending any further data";
#: a little is tolerated (a first message sent eagerly), a megabyte held for
#: the whole connect timeout is not.
EARLY_DATA_LIMIT = 4096

_ABNORMAL_CLOSURE = 1006  # RFC 6455 §7.1.5: closed without a close frame.
_SERVICE_RESTART = 1012
_INTERNAL_ERROR = 1011


class WebSocketState(StateEnum):
    """Where a WebSocket connection is, as the application sees it."""

    #: ``websocket.connect`` delivered; waiting for accept, close or a denial response.
    CONNECTING = "connecting"
    #: The application is sending an HTTP denial response (``websocket.http.response``).
    DENIAL = "denial"
    #: Accepted: messages flow both ways.
    OPEN = "open"
    #: The server sent a close frame and waits for the client's.
    CLOSING = "closing"
    #: The connection is over; the application gets ``websocket.disconnect``.
    CLOSED = "closed"


class WebSocketEvent(StateEnum):
    """What moves a :class:`WebSocketStream` from one state to another."""

    # From the application: the ASGI message it sends.
    ACCEPT = "websocket.accept"
    SEND = "websocket.send"
    CLOSE = "websocket.close"
    DENIAL_START = "websocket.http.response.start"
    DENIAL_BODY = "websocket.http.response.body (more_body)"
    DENIAL_LAST_BODY = "websocket.http.response.body"
    # From the client, through the engine.
    CLIENT_CLOSE = "close frame received"
    FAIL = "the client broke the protocol or a limit (close frame sent)"
    LOST = "connection lost"
    # From the server itself.
    SERVER_CLOSE = "server closes (timeout, lifetime, shutdown, application returned)"


_WS = WebSocketState
_EV = WebSocketEvent

#: (state, event) → the next state. What is not here is refused (see
#: WebSocketStream._process); every row is an event that can happen in its state.
WEBSOCKET_TRANSITIONS: dict[tuple[WebSocketState, WebSocketEvent], WebSocketState] = {
    (_WS.CONNECTING, _EV.ACCEPT): _WS.OPEN,
    # Closed before the handshake completes: answered 403 (503 on shutdown).
    (_WS.CONNECTING, _EV.CLOSE): _WS.CLOSED,
    (_WS.CONNECTING, _EV.DENIAL_START): _WS.DENIAL,
    (_WS.CONNECTING, _EV.SERVER_CLOSE): _WS.CLOSED,
    (_WS.CONNECTING, _EV.LOST): _WS.CLOSED,
    (_WS.DENIAL, _EV.DENIAL_BODY): _WS.DENIAL,
    (_WS.DENIAL, _EV.DENIAL_LAST_BODY): _WS.CLOSED,
    (_WS.DENIAL, _EV.SERVER_CLOSE): _WS.CLOSED,
    (_WS.DENIAL, _EV.LOST): _WS.CLOSED,
    (_WS.OPEN, _EV.SEND): _WS.OPEN,
    (_WS.OPEN, _EV.CLOSE): _WS.CLOSING,
    (_WS.OPEN, _EV.SERVER_CLOSE): _WS.CLOSING,
    (_WS.OPEN, _EV.CLIENT_CLOSE): _WS.CLOSED,
    (_WS.OPEN, _EV.FAIL): _WS.CLOSED,
    (_WS.OPEN, _EV.LOST): _WS.CLOSED,
    # A second close from the application while the handshake runs is harmless.
    (_WS.CLOSING, _EV.CLOSE): _WS.CLOSING,
    (_WS.CLOSING, _EV.SERVER_CLOSE): _WS.CLOSING,
    (_WS.CLOSING, _EV.CLIENT_CLOSE): _WS.CLOSED,
    (_WS.CLOSING, _EV.FAIL): _WS.CLOSED,
    (_WS.CLOSING, _EV.LOST): _WS.CLOSED,
    # The application may still close or return, and the transport report
    # the end, after it. (Nothing the client sends is read any more: the
    # engine is closed, or the connection lingers, discarding it.)
    (_WS.CLOSED, _EV.CLOSE): _WS.CLOSED,
    (_WS.CLOSED, _EV.SERVER_CLOSE): _WS.CLOSED,
    (_WS.CLOSED, _EV.LOST): _WS.CLOSED,
}

# The events an application causes, by the message type that causes them.
_APPLICATION_EVENTS = frozenset(
    {_EV.ACCEPT, _EV.SEND, _EV.CLOSE, _EV.DENIAL_START, _EV.DENIAL_BODY, _EV.DENIAL_LAST_BODY}
)


class WebSocketStream(ASGIStream):
    """Serves one WebSocket connection to the application.

    :param connection: the connection carrying it.
    :param handshake: the validated opening handshake.
    :param scope: the websocket scope.
    :param pending: bytes received after the handshake request.
    :param started_at: the loop time of the handshake, for the access log.
    """

    __slots__ = (
        "_close_code",
        "_close_reason",
        "_connect_delivered",
        "_denial",
        "_disconnect_delivered",
        "_engine",
        "_messages",
        "_paused",
        "_pending",
        "_ping_due_at",
        "_ping_sent_at",
        "_queued_bytes",
        "_received",
        "_received_at_ping",
        "_traffic",
        "_traffic_seen",
        "handshake",
        "state",
    )

    def __init__(
        self,
        connection: StreamConnection,
        handshake: Handshake,
        scope: Scope,
        pending: bytes,
        started_at: float,
    ) -> None:
        super().__init__(connection, scope, started_at)
        #: The opening handshake, until it is answered.
        self.handshake: Handshake | None = handshake
        self.state = _WS.CONNECTING
        self._pending: bytes | None = pending
        self._engine: WebSocketConnection | None = None
        self._connect_delivered = False
        # Made for the messages queued, dropped once they are all received:
        # an idle connection does without a deque.
        self._messages: deque[str | bytes] | None = None
        self._queued_bytes = 0
        self._paused = False
        self._close_code = _ABNORMAL_CLOSURE
        self._close_reason = ""
        self._disconnect_delivered = False
        self._denial: tuple[int, Any, list[bytes]] | None = None
        # Keepalive bookkeeping (see _keepalive): counters rather than clock
        # readings, so that a frame costs an increment and not a time() call.
        self._received = 0  # reads from the client (any frame answers a ping)
        self._received_at_ping = 0
        self._traffic = 0  # data messages either way (they make pings unneeded)
        self._traffic_seen = 0
        self._ping_due_at = 0.0
        self._ping_sent_at: float | None = None
        connection.context.access_log.websocket("WSCONNECTING", scope["client"], scope["path"], 0.0)
        self._arm(connection.context.config.websocket_connect_timeout)
        if len(pending) > EARLY_DATA_LIMIT:
            # Read with the handshake request, before it could be answered.
            self._drop_early_sender(len(pending))

    # -- state ------------------------------------------------------------------------

    def _allowed(self, event: WebSocketEvent, kind: str = "") -> WebSocketState:
        """The state *event* leads to from this one, as the table says.

        Raises :class:`~channels_server.errors.ClientDisconnected` for a
        message the application sends once the WebSocket is closing or
        closed, :class:`~channels_server.errors.ApplicationError` for one it
        sends at the wrong time (*kind* is its type), and
        :class:`~channels_server.errors.ServerError` for any other event the
        table does not list (a bug in this module).
        """
        state = self.state
        new_state = WEBSOCKET_TRANSITIONS.get((state, event))
        if new_state is None:
            if event not in _APPLICATION_EVENTS:
                raise ServerError(
                    f"WebSocket event {event.value!r} cannot happen while {state.value}"
                )
            if state is _WS.CLOSED or state is _WS.CLOSING:
                raise ClientDisconnected(f"Cannot send {kind!r}: the WebSocket is closed")
            raise ApplicationError(f"Cannot send {kind!r} now: the WebSocket is {state.value}")
        return new_state

    def _process(self, event: WebSocketEvent, kind: str = "") -> WebSocketState:
        """Move to the state the table gives for *event*; the state it left.

        The only place :attr:`state` changes after ``__init__``. Raises as
        :meth:`_allowed` and then changes nothing.
        """
        previous = self.state
        # The lookup is repeated here rather than calling _allowed(): this
        # runs for every websocket.send (bench/server.py, ws-raw row).
        new_state = WEBSOCKET_TRANSITIONS.get((previous, event))
        if new_state is None:
            new_state = self._allowed(event, kind)  # Raises.
        self.state = new_state
        return previous

    def _closed(self, previous: WebSocketState, code: int, reason: str) -> None:
        """The connection is over, whichever side ended it (*previous* is the state it left)."""
        if previous is not _WS.CLOSED:
            self._close_code = code
            self._close_reason = reason
        self._cancel_timer()
        self._wake()
        connection = self.connection
        if previous is _WS.OPEN or previous is _WS.CLOSING:
            connection.context.access_log.websocket(
                "WSDISCONNECT",
                self.scope["client"],
                self.scope["path"],
                asyncio.get_running_loop().time() - self.started_at,
            )
        task = self.task
        if task is not None and not task.done():
            self._arm(connection.context.config.application_close_timeout)

    # -- from the connection -------------------------------------------------------------

    def feed_data(self, data: bytes) -> None:
        """Bytes from the client."""
        self._received += 1
        engine = self._engine
        if engine is None:
            if self.state is _WS.CONNECTING or self.state is _WS.DENIAL:
                # Frames sent before the handshake is answered wait for it.
                pending = (self._pending or b"") + data
                if len(pending) > EARLY_DATA_LIMIT:
                    self._drop_early_sender(len(pending))
                    return
                self._pending = pending
            return
        events, reply = engine.receive_data(data)
        if reply:
            self.connection.write(reply)
        if not events:
            return
        messages = self._messages
        for event in events:
            kind = type(event)
            if kind is str or kind is bytes:
                if self.state is _WS.OPEN:
                    if messages is None:
                        messages = self._messages = deque()
                    messages.append(event)  # type: ignore[arg-type]
                    self._queued_bytes += len(event)  # type: ignore[arg-type]
            elif kind is CloseReceived:
                previous = self._process(_EV.CLIENT_CLOSE)
                self._closed(previous, event.code, event.reason)  # type: ignore[union-attr]
                self.connection.close()
            else:
                assert isinstance(event, ConnectionFailed)
                logger.info(
                    "Closing WebSocket %s with %d: %s", self.scope["path"], event.code, event.reason
                )
                self._closed(self._process(_EV.FAIL), event.code, event.reason)
                # The client may still be sending the rest of what was refused.
                self.connection.close_lingering()
        if messages:
            self._traffic += 1
            if (
                self._queued_bytes > QUEUE_HIGH_WATER or len(messages) > QUEUE_MAX_MESSAGES
            ) and not self._paused:
                self._paused = True
                self.connection.pause_reading()
            self._wake()

    def _drop_early_sender(self, size: int) -> None:
        logger.info(
            "Dropping WebSocket %s: %d bytes sent before the handshake was answered (limit %d)",
            self.scope["path"],
            size,
            EARLY_DATA_LIMIT,
        )
        self._pending = None
        self.connection.abort()

    def connection_lost(self) -> None:
        engine = self._engine
        if engine is not None:
            engine.connection_lost()
        previous = self._process(_EV.LOST)
        if previous is not _WS.CLOSED:
            if previous is _WS.CONNECTING or previous is _WS.DENIAL:
                self._log("WSREJECT")
            self._closed(previous, _ABNORMAL_CLOSURE, "")

    def server_close(self, code: int = _SERVICE_RESTART, reason: str = "") -> None:
        """The server ends the connection (shutdown: 1012, Service Restart)."""
        previous = self._process(_EV.SERVER_CLOSE)
        if previous is _WS.OPEN:
            self._close_code = code
            self._send_close(code, reason)
        elif previous is _WS.CONNECTING or previous is _WS.DENIAL:
            self._reject(previous, 503 if code == _SERVICE_RESTART else 403)

    # -- the ASGI callables -----------------------------------------------------------------

    async def receive(self) -> Message:
        while True:
            if not self._connect_delivered:
                self._connect_delivered = True
                return {"type": "websocket.connect"}
            messages = self._messages
            if messages:
                message = messages.popleft()
                if not messages:
                    # A socket gone quiet keeps no empty deque (760 bytes).
                    self._messages = None
                self._queued_bytes -= len(message)
                if (
                    self._paused
                    and len(messages) <= QUEUE_MAX_MESSAGES // 2
                    and self._queued_bytes <= QUEUE_HIGH_WATER // 2
                ):
                    self._paused = False
                    self.connection.resume_reading()
                if isinstance(message, str):
                    return {"type": "websocket.receive", "text": message}
                return {"type": "websocket.receive", "bytes": message}
            if self.state is _WS.CLOSED:
                self._disconnect_delivered = True
                return {
                    "type": "websocket.disconnect",
                    "code": self._close_code,
                    "reason": self._close_reason,
                }
            waiter = self._waiter
            if waiter is None:
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            await waiter

    async def send(self, message: Message) -> None:
        kind = message_type(message)
        if kind == "websocket.send":
            self._process(_EV.SEND, kind)
            engine = self._engine
            assert engine is not None
            text = message.get("text")
            data = message.get("bytes")
            if text is not None:
                if data is not None or not isinstance(text, str):
                    raise ApplicationError(
                        "websocket.send needs exactly one of 'text' (str) or 'bytes' (bytes)"
                    )
                frame = engine.send_text(text)
            elif data is not None and isinstance(data, (bytes, bytearray, memoryview)):
                frame = engine.send_bytes(bytes(data))
            else:
                raise ApplicationError(
                    "websocket.send needs exactly one of 'text' (str) or 'bytes' (bytes)"
                )
            self._traffic += 1
            connection = self.connection
            connection.write(frame)
            waiter = connection.drain_waiter()
            if waiter is not None:
                await waiter
            return
        if kind == "websocket.accept":
            self._allowed(_EV.ACCEPT, kind)
            self._accept(message)
        elif kind == "websocket.close":
            self._allowed(_EV.CLOSE, kind)
            code = validate_close_code(message.get("code", 1000))
            reason = message.get("reason") or ""
            if not isinstance(reason, str):
                raise ApplicationError(f"websocket.close 'reason' must be a str, not {reason!r}")
            previous = self._process(_EV.CLOSE, kind)
            if previous is _WS.CONNECTING:
                self._reject(previous, 403)
            elif previous is _WS.OPEN:
                self._close_code = code
                self._close_reason = reason
                self._send_close(code, reason)
        elif kind == "websocket.http.response.start":
            self._allowed(_EV.DENIAL_START, kind)
            status = message.get("status")
            # Exactly an int: a bool or an IntEnum member is refused.
            if type(status) is not int or not 200 <= status <= 599:
                raise ApplicationError(
                    f"websocket.http.response.start 'status' must be an int from 200 to 599, "
                    f"not {status!r}"
                )
            self._denial = (status, message.get("headers", ()), [])
            self._process(_EV.DENIAL_START, kind)
        elif kind == "websocket.http.response.body":
            more_body = bool(message.get("more_body", False))
            event = _EV.DENIAL_BODY if more_body else _EV.DENIAL_LAST_BODY
            self._allowed(event, kind)
            body = message.get("body", b"")
            if not isinstance(body, (bytes, bytearray, memoryview)):
                raise ApplicationError(
                    f"websocket.http.response.body 'body' must be bytes, not {type(body).__name__}"
                )
            assert self._denial is not None
            self._denial[2].append(bytes(body))
            if more_body:
                self._process(event, kind)
            else:
                self._send_denial()
        else:
            raise ApplicationError(
                f"Unexpected ASGI message type {kind!r} in a websocket scope (expected "
                "'websocket.accept', 'websocket.send', 'websocket.close' or "
                "'websocket.http.response.start'/'.body')"
            )

    # -- handshake outcomes -------------------------------------------------------------------

    def _accept(self, message: Message) -> None:
        connection = self.connection
        config = connection.context.config
        handshake = self.handshake
        assert handshake is not None  # the table allows one accept, while CONNECTING
        deflate = (
            negotiate_deflate(handshake.extensions)
            if handshake.extensions and config.ws_per_message_deflate
            else None
        )
        response = self._accept_response(
            handshake,
            message.get("subprotocol"),
            message.get("headers", ()),
            b"" if deflate is None else deflate.response,
        )
        self._process(_EV.ACCEPT, "websocket.accept")
        self.handshake = None  # answered: an open socket does not keep it
        self._engine = WebSocketConnection(
            config.websocket_max_message_size,
            config.websocket_max_frame_size,
            config.websocket_max_fragments,
            deflate,
        )
        connection.write(response)
        now = asyncio.get_running_loop().time()
        self._log("WSCONNECT")
        self._cancel_timer()
        self._ping_due_at = now + config.ping_interval
        delay = config.ping_interval
        lifetime = config.websocket_timeout
        if lifetime is not None:
            # The lifetime may end before the first ping is due.
            delay = min(delay, max(self.started_at + lifetime - now, 0.0))
        self._arm(delay)
        pending = self._pending
        self._pending = None
        if pending:
            self.feed_data(pending)

    # The handshake's three answers, as bytes to write (an HTTP/2 stream
    # sends them as HEADERS and DATA frames instead, and returns b"").

    def _accept_response(
        self, handshake: Handshake, subprotocol: Any, headers: Any, extensions: bytes
    ) -> bytes:
        """The answer that accepts the handshake (101). Raises ApplicationError first
        for a subprotocol the client did not offer or a header that cannot be sent."""
        server_header = self.connection.context.server_header
        return accept_response(handshake, subprotocol, headers, server_header, extensions)

    def _refusal_response(self, status: int) -> bytes:
        """The answer that refuses the handshake with *status* (403, 500, 503)."""
        return error_response(status, "", self.connection.context.server_header)

    def _denial_response(self, status: int, headers: Any, body: bytes) -> bytes:
        """The application's own answer (``websocket.http.response``); raises
        ApplicationError for one that cannot be sent."""
        return simple_response(status, headers, body, self.connection.context.server_header)

    def _reject(self, previous: WebSocketState, status: int) -> None:
        """Answer the handshake with *status*: the stream has just left *previous* for CLOSED."""
        connection = self.connection
        self._pending = None
        connection.write(self._refusal_response(status))
        self._log("WSREJECT")
        self._closed(previous, _ABNORMAL_CLOSURE, "")
        connection.close()

    def _send_denial(self) -> None:
        connection = self.connection
        denial = self._denial
        assert denial is not None
        status, headers, body = denial
        self._denial = None
        try:
            response = self._denial_response(status, headers, b"".join(body))
        except ApplicationError:
            # Still in DENIAL: the application failed, and the server ends the
            # connection when its task does.
            raise
        previous = self._process(_EV.DENIAL_LAST_BODY, "websocket.http.response.body")
        connection.write(response)
        self._log("WSREJECT")
        self._closed(previous, _ABNORMAL_CLOSURE, "")
        connection.close()

    def _send_close(self, code: int, reason: str) -> None:
        engine = self._engine
        assert engine is not None
        frame = engine.close(code, reason)
        if frame:
            self.connection.write(frame)
        self._cancel_timer()
        self._arm(self.connection.context.config.websocket_close_timeout)

    # -- running the application ------------------------------------------------------------

    def _description(self) -> str:
        return f"WebSocket {self.scope['path']}"

    def _application_finished(self) -> None:
        # Until the connection is closed, the timer still has work (the close handshake).
        if self.state is _WS.CLOSED:
            self._cancel_timer()

    def _application_ended(self, *, failed: bool) -> None:
        previous = self._process(_EV.SERVER_CLOSE)
        if previous is _WS.CONNECTING:
            if not failed:
                logger.warning(
                    "Application returned without accepting or rejecting WebSocket %s",
                    self.scope["path"],
                )
            self._reject(previous, 500 if failed else 403)
        elif previous is _WS.DENIAL:
            self._closed(previous, _ABNORMAL_CLOSURE, "")
            self.connection.abort()
        elif previous is _WS.OPEN:
            # The scope lives as long as the socket: the application is gone, so is the socket.
            code = _INTERNAL_ERROR if failed else 1000
            self._close_code = code
            self._send_close(code, "")

    # -- the timer ---------------------------------------------------------------------------

    def _arm(self, delay: float) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        state = self.state
        config = self.connection.context.config
        if state is _WS.CONNECTING:
            logger.warning(
                "Application did not accept or reject WebSocket %s within %ss; rejecting it",
                self.scope["path"],
                config.websocket_connect_timeout,
            )
            self._reject(self._process(_EV.SERVER_CLOSE), 403)
        elif state is _WS.OPEN:
            self._keepalive(config.ping_interval, config.ping_timeout, config.websocket_timeout)
        elif state is _WS.CLOSING:
            # The client never answered our close frame.
            self.connection.abort()
        elif state is _WS.CLOSED:
            task = self.task
            if task is not None and not task.done():
                logger.warning(
                    "Application for WebSocket %s was still running %ss after the connection "
                    "closed; cancelling it",
                    self.scope["path"],
                    config.application_close_timeout,
                )
                task.cancel()

    def _keepalive(self, interval: float, timeout: float, lifetime: float | None) -> None:
        """The timer of an open connection: lifetime, ping answers, pings.

        As daphne: the connection is closed (1000) once it has been open
        *lifetime* seconds, counted from the handshake; a ping goes out once
        no message has gone either way for *interval* seconds, and again
        every *interval* seconds while that lasts; a ping that nothing
        answers within *timeout* seconds drops the connection. The timer is
        set for whichever of these comes first.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        end = None if lifetime is None else self.started_at + lifetime
        if end is not None and now >= end:
            self.server_close(1000, "")
            return
        ping_sent_at = self._ping_sent_at
        if ping_sent_at is not None:
            if self._received != self._received_at_ping:
                # Anything received since the ping (its pong, or data) will do.
                ping_sent_at = self._ping_sent_at = None
            elif self.connection.reading_paused:
                # The server itself stopped reading (the application is
                # behind, or the client is slow to read what it is sent):
                # the answer may be waiting unread. The client gets a whole
                # timeout again from now.
                ping_sent_at = self._ping_sent_at = now
            elif now - ping_sent_at >= timeout:
                logger.info("WebSocket %s did not answer a ping; dropping it", self.scope["path"])
                self.connection.abort()
                return
        if self._traffic != self._traffic_seen:
            # Messages went by since the last look: the idle time starts over
            # (from now: when exactly is not recorded, see __init__).
            self._traffic_seen = self._traffic
            self._ping_due_at = now + interval
        elif now >= self._ping_due_at:
            if ping_sent_at is None:
                engine = self._engine
                assert engine is not None
                self.connection.write(engine.ping())
                ping_sent_at = self._ping_sent_at = now
                self._received_at_ping = self._received
            self._ping_due_at = now + interval
        wake = self._ping_due_at
        if ping_sent_at is not None:
            wake = min(wake, ping_sent_at + timeout)
        if end is not None:
            wake = min(wake, end)
        self._arm(max(wake - now, 0.0))

    def _log(self, action: str) -> None:
        connection = self.connection
        connection.context.access_log.websocket(
            action,
            self.scope["client"],
            self.scope["path"],
            asyncio.get_running_loop().time() - self.started_at,
        )
