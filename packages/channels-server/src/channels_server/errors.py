"""Exceptions raised by channels-server.

Every exception the server defines derives from :class:`ServerError`. Some
also derive from the built-in a caller already catches: the ASGI
specification asks for an ``OSError`` subclass when an application sends on
a connection the client has closed, and bad settings are ``ValueError``.

The tree::

    ServerError
    ├── ConfigurationError (also ValueError)   bad settings, flags or endpoint descriptions
    ├── ProtocolError                          bytes from the network broke HTTP or WebSocket
    │   └── HTTPProtocolError                  answered with .status_code (400, 413, 431, 501, ...)
    ├── ApplicationError (also RuntimeError)   the ASGI application broke the ASGI protocol
    ├── ClientDisconnected (also OSError)      send() after the client went away (www spec 2.4)
    └── LifespanFailure                        lifespan startup or shutdown reported failure

Errors from h11 and wsproto never leave the sans-IO engines: they are
translated there into :class:`ProtocolError` or a WebSocket close code.
"""

from __future__ import annotations

__all__ = [
    "ApplicationError",
    "ClientDisconnected",
    "ConfigurationError",
    "HTTPProtocolError",
    "LifespanFailure",
    "ProtocolError",
    "ServerError",
]


class ServerError(Exception):
    """Base class of every exception channels-server defines."""


class ConfigurationError(ServerError, ValueError):
    """A setting, command-line flag or endpoint description is invalid."""


class ProtocolError(ServerError):
    """The peer sent bytes that break the HTTP/1.1 or WebSocket protocol."""


class HTTPProtocolError(ProtocolError):
    """An HTTP request the server refuses, with the status code to answer it with.

    :param status_code: the 4xx or 5xx status of the error response.
    :param reason: what kind of thing was wrong, for the log and the response
        body: a fixed phrase such as ``"Malformed header field"``, never text
        taken from the request. A rejected line can hold a cookie or a token,
        and a response body can end up in a cache or a client-side log.
    """

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(f"{status_code}: {reason}")
        self.status_code = status_code
        self.reason = reason


class ApplicationError(ServerError, RuntimeError):
    """The application sent a message that is invalid, or invalid at this point.

    Raised from the ``send`` callable into the application, which is where
    the bug is.
    """


class ClientDisconnected(ServerError, OSError):
    """The application called ``send()`` after the client disconnected.

    An ``OSError`` as the ASGI HTTP and WebSocket specification (version 2.4)
    asks; the server does not log it as an error when the application lets
    it propagate.
    """


class LifespanFailure(ServerError):
    """The application reported ``lifespan.startup.failed`` or ``lifespan.shutdown.failed``,
    or raised during startup with ``--lifespan on``."""
