"""What the two ASGI streams (``http_stream.py``, ``websocket_stream.py``) share.

A stream serves one connection scope to the application: the connection
feeds it what the client sends, and the application task runs
:meth:`ASGIStream.run`, awaiting ``receive()`` (which parks on one future,
``_waiter``, until :meth:`ASGIStream._wake`) and ``send()``. Each stream has one timer at
a time, and the task the server spawned for it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..errors import ClientDisconnected

if TYPE_CHECKING:
    from channels.asgi_types import ASGIApplication, Message, Scope

    from .connection import StreamConnection

__all__ = ["ASGIStream"]

logger = logging.getLogger("channels_server")


class ASGIStream:
    """The base of :class:`~channels_server.asgi.http_stream.HTTPStream` and
    :class:`~channels_server.asgi.websocket_stream.WebSocketStream`.

    :param connection: the connection carrying the stream.
    :param scope: the connection scope handed to the application.
    :param started_at: the loop time the scope started, for the access log.
    """

    __slots__ = ("_timer", "_waiter", "connection", "scope", "started_at", "task")

    def __init__(self, connection: StreamConnection, scope: Scope, started_at: float) -> None:
        self.connection = connection
        self.scope = scope
        self.started_at = started_at
        #: The application task (set by the connection once spawned).
        self.task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def receive(self) -> Message:
        raise NotImplementedError

    async def send(self, message: Message) -> None:
        raise NotImplementedError

    def _wake(self) -> None:
        """Let ``receive()`` look again (it parks on ``_waiter`` when it has nothing)."""
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _cancel_timer(self) -> None:
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.cancel()

    # -- running the application ------------------------------------------------------

    async def run(self, application: ASGIApplication) -> None:
        """The body of the application task."""
        try:
            await application(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except Exception:
            logger.exception("Exception inside application handling %s", self._description())
            self._application_ended(failed=True)
        else:
            self._application_ended(failed=False)
        finally:
            self._application_finished()
            task = self.task
            if task is not None:
                self.connection.context.tasks.discard(task)

    def _description(self) -> str:
        """The scope in a log line (``GET /path``, ``WebSocket /path``)."""
        raise NotImplementedError

    def _application_ended(self, *, failed: bool) -> None:
        """The application raised (*failed*) or returned: end the scope for the client."""
        raise NotImplementedError

    def _application_finished(self) -> None:
        """Last, however the application ended."""
        self._cancel_timer()
