"""The server's state machines, as tables, in one place.

Everything that moves a response or a WebSocket from one state to another is
listed here, so that the rules can be read (and tested) without reading the
code that drives them. A transition that is not in a table is not allowed;
the code that drives the machine decides what a refused event means (an
:class:`~channels_server.errors.ApplicationError` for a message sent at the
wrong time, :class:`~channels_server.errors.ClientDisconnected` once the
client is gone).

HTTP response, driven by the application's messages::

    WAITING ─start─► STARTED ─body(more)─► STREAMING ─body(more)─┐
                        │                     │   ▲──────────────┘
                        │                     ├─body(last)─► COMPLETE
                        ├─body(last)──────────┼─────────────► COMPLETE
                        └─body(last, trailers)┴─► TRAILERS ─trailers(last)─► COMPLETE

WebSocket (ASGI side)::

    CONNECTING ─accept─► OPEN ─app close / server close─► CLOSING ─client close / lost─► CLOSED
        │                 └─client close / lost / error ─────────────────────────────────► CLOSED
        ├─close / timeout / lost ─► CLOSED            (403 before the handshake completes)
        └─http.response.start ─► DENIAL ─http.response.body(last) / lost─► CLOSED
"""

from __future__ import annotations

import enum

__all__ = [
    "HTTP_RESPONSE_TRANSITIONS",
    "WEBSOCKET_TRANSITIONS",
    "RequestPhase",
    "ResponseEvent",
    "ResponseState",
    "WebSocketEvent",
    "WebSocketState",
]


class _Enum(enum.Enum):
    """Members hash by identity: they key the transition tables on every
    message, and ``Enum.__hash__`` is Python code, identity hashing is not.
    (Members are singletons, and equality is identity already.)"""

    __hash__ = object.__hash__


class RequestPhase(_Enum):
    """Where the HTTP engine is in reading the current request."""

    #: Waiting for the first byte of a request (a new or idle keep-alive connection).
    IDLE = "idle"
    #: Some of the request head has arrived, not all of it.
    HEAD = "head"
    #: The head has been parsed; the body is arriving.
    BODY = "body"
    #: The whole request has been read; the response is in progress.
    COMPLETE = "complete"
    #: The connection switched to the WebSocket protocol.
    UPGRADED = "upgraded"
    #: The client closed its side, or the request was refused.
    CLOSED = "closed"


class ResponseState(_Enum):
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


class ResponseEvent(_Enum):
    START = "http.response.start"
    BODY = "http.response.body (more_body)"
    LAST_BODY = "http.response.body"
    LAST_BODY_BEFORE_TRAILERS = "http.response.body (trailers follow)"
    TRAILERS = "http.response.trailers (more_trailers)"
    LAST_TRAILERS = "http.response.trailers"


HTTP_RESPONSE_TRANSITIONS: dict[tuple[ResponseState, ResponseEvent], ResponseState] = {
    (ResponseState.WAITING, ResponseEvent.START): ResponseState.STARTED,
    (ResponseState.STARTED, ResponseEvent.BODY): ResponseState.STREAMING,
    (ResponseState.STARTED, ResponseEvent.LAST_BODY): ResponseState.COMPLETE,
    (ResponseState.STARTED, ResponseEvent.LAST_BODY_BEFORE_TRAILERS): ResponseState.TRAILERS,
    (ResponseState.STREAMING, ResponseEvent.BODY): ResponseState.STREAMING,
    (ResponseState.STREAMING, ResponseEvent.LAST_BODY): ResponseState.COMPLETE,
    (ResponseState.STREAMING, ResponseEvent.LAST_BODY_BEFORE_TRAILERS): ResponseState.TRAILERS,
    (ResponseState.TRAILERS, ResponseEvent.TRAILERS): ResponseState.TRAILERS,
    (ResponseState.TRAILERS, ResponseEvent.LAST_TRAILERS): ResponseState.COMPLETE,
}


class WebSocketState(_Enum):
    #: ``websocket.connect`` delivered; waiting for accept, close or a denial response.
    CONNECTING = "connecting"
    #: The application is sending an HTTP denial response (``websocket.http.response``).
    DENIAL = "denial"
    OPEN = "open"
    #: The server sent a close frame and waits for the client's.
    CLOSING = "closing"
    CLOSED = "closed"


class WebSocketEvent(_Enum):
    # From the application.
    ACCEPT = "websocket.accept"
    SEND = "websocket.send"
    CLOSE = "websocket.close"
    DENIAL_START = "websocket.http.response.start"
    DENIAL_BODY = "websocket.http.response.body (more_body)"
    DENIAL_LAST_BODY = "websocket.http.response.body"
    # From the client or the server itself.
    CLIENT_CLOSE = "close frame received"
    SERVER_CLOSE = "server closes (timeout, limit, protocol error, shutdown)"
    LOST = "connection lost"


_WS = WebSocketState
_EV = WebSocketEvent

WEBSOCKET_TRANSITIONS: dict[tuple[WebSocketState, WebSocketEvent], WebSocketState] = {
    (_WS.CONNECTING, _EV.ACCEPT): _WS.OPEN,
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
    (_WS.OPEN, _EV.LOST): _WS.CLOSED,
    # A second close from the application while the handshake runs is harmless.
    (_WS.CLOSING, _EV.CLOSE): _WS.CLOSING,
    (_WS.CLOSING, _EV.SERVER_CLOSE): _WS.CLOSING,
    (_WS.CLOSING, _EV.CLIENT_CLOSE): _WS.CLOSED,
    (_WS.CLOSING, _EV.LOST): _WS.CLOSED,
    (_WS.CLOSED, _EV.CLOSE): _WS.CLOSED,
    (_WS.CLOSED, _EV.SERVER_CLOSE): _WS.CLOSED,
    (_WS.CLOSED, _EV.LOST): _WS.CLOSED,
}
