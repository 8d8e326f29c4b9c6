"""The base of the server's state enums, and the HTTP engine's request phase.

Each state machine's table lives beside the one class that drives it, and
every change of state goes through that class's one transition method, which
consults the table (as h11's ``_state.py`` does):

* the HTTP response: ``HTTP_RESPONSE_TRANSITIONS`` in ``asgi/http_stream.py``;
* the WebSocket connection: ``WEBSOCKET_TRANSITIONS`` in ``asgi/websocket_stream.py``.

:class:`RequestPhase` is not a table: the HTTP engines (``protocol/http11.py``,
``protocol/fast_http11.py``) report it, and the transport reads it.
"""

from __future__ import annotations

import enum

__all__ = ["RequestPhase", "StateEnum"]


class StateEnum(enum.Enum):
    """An enum whose members hash by identity.

    The members key the transition tables on every message, and
    ``Enum.__hash__`` is Python code, identity hashing is not. (Members are
    singletons, and equality is identity already.)
    """

    __hash__ = object.__hash__


class RequestPhase(StateEnum):
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
