"""What every connection of one running server shares.

A :class:`ServerContext` is made by :class:`~channels_server.server.Server`
and handed to each connection: the application, the settings, the lifespan
state, and the registries through which the server owns every connection and
every application task it starts (so that shutdown can reach them all, and
nothing ever has to poll for them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from .config import Config
from .errors import ConfigurationError
from .logging import AccessLogger
from .protocol.http11 import HTTP11Connection, HTTPEngine, HTTPLimits

if TYPE_CHECKING:
    from channels.asgi_types import ASGIApplication

__all__ = ["ConnectionHandle", "ServerContext", "http_engine_class"]

logger = logging.getLogger("channels_server")


class ConnectionHandle:
    """What the server needs from a connection to shut it down."""

    __slots__ = ()

    def shutdown(self) -> None:
        """Finish the current response (HTTP) or close with 1012 (WebSocket), then close."""
        raise NotImplementedError

    def abort(self) -> None:
        """Drop the connection now."""
        raise NotImplementedError


class ServerContext:
    """The shared state of one server.

    :param application: the ASGI 3 application.
    :param config: the settings.
    """

    def __init__(self, application: ASGIApplication, config: Config) -> None:
        self.application = application
        self.config = config
        #: The lifespan namespace; each connection scope gets a shallow copy (lifespan spec).
        self.state: dict[str, Any] = {}
        #: Open connections (added on connect, removed on disconnect).
        self.connections: set[ConnectionHandle] = set()
        #: Application tasks still running; each removes itself when done.
        self.tasks: set[asyncio.Task[None]] = set()
        #: Set once shutdown begins: no new requests are started.
        self.shutting_down = False
        self.limits = HTTPLimits(
            config.max_request_line_size,
            config.max_header_size,
            config.max_header_count,
            config.limit_request_body,
        )
        self.server_header = (
            b"server: " + config.server_name.encode("ascii") + b"\r\n"
            if config.server_name
            else b""
        )
        self.access_log = AccessLogger()
        #: Makes the HTTP engine of each new connection.
        self.http_engine = http_engine_class(config.http)
        #: The connections served under ``config.limit_concurrency``: each is
        #: admitted at its first request and counts until it closes.
        self.admitted: set[ConnectionHandle] = set()
        self._drained: asyncio.Event | None = None

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Start an application task the server owns until it finishes.

        The coroutine removes its task from :attr:`tasks` when it ends (the
        streams' ``run()`` does, in ``finally``): cheaper than a done callback,
        which costs a second trip through the event loop per request.
        """
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        return task

    def admit(self, connection: ConnectionHandle) -> bool:
        """Whether a request on *connection* may be served under ``limit_concurrency``.

        A connection is admitted at its first request while fewer than the
        limit are admitted and fewer than the limit of application tasks run
        (a task outlives its connection for up to application_close_timeout);
        once admitted it is served until it closes.
        """
        limit = self.config.limit_concurrency
        if limit is None or connection in self.admitted:
            return True
        if len(self.admitted) >= limit or len(self.tasks) >= limit:
            return False
        self.admitted.add(connection)
        return True

    def add_connection(self, connection: ConnectionHandle) -> None:
        self.connections.add(connection)

    def remove_connection(self, connection: ConnectionHandle) -> None:
        self.connections.discard(connection)
        self.admitted.discard(connection)
        if not self.connections and self._drained is not None:
            self._drained.set()

    async def wait_connections_closed(self) -> None:
        """Return once every connection has closed."""
        if not self.connections:
            return
        self._drained = asyncio.Event()
        await self._drained.wait()


def http_engine_class(choice: str) -> type[HTTPEngine]:
    """The HTTP engine for *choice*: httptools for "httptools" (and "auto" when installed)."""
    if choice in ("auto", "httptools"):
        try:
            from .protocol.fast_http11 import HTTPToolsConnection
        except ImportError:
            if choice == "httptools":
                raise ConfigurationError(
                    "http 'httptools' needs httptools: pip install 'channels-server[fast]'"
                ) from None
        else:
            return HTTPToolsConnection
    return HTTP11Connection
