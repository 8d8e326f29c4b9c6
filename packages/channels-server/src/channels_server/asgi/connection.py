"""What the ASGI streams need from the connection that carries them.

The streams translate between ASGI messages and the sans-IO engines; the
connection (``transport/tcp.py``) owns the socket. This protocol is the whole
of what a stream may ask of it, which keeps the streams testable with an
in-memory connection.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..context import ServerContext


class StreamConnection(Protocol):
    """The connection side of an HTTP or WebSocket stream."""

    context: ServerContext
    #: The peer's (host, port), or None over a unix socket.
    client: tuple[str, int] | None
    #: The local (host, port), or (socket path, None).
    server: tuple[str, int | None] | None

    @property
    def closed(self) -> bool:
        """Whether the connection has been lost or closed."""

    def write(self, data: bytes) -> None:
        """Queue bytes for the client (never blocks)."""

    def drain_waiter(self) -> asyncio.Future[None] | None:
        """A future to await while the write buffer is over its limit, or None."""

    def pause_reading(self) -> None: ...

    @property
    def reading_paused(self) -> bool:
        """Whether the connection has stopped reading from the socket (for any reason)."""

    def resume_reading(self) -> None: ...

    def close(self) -> None:
        """Close after the queued bytes are written."""

    def close_lingering(self) -> None:
        """Close after the queued bytes, first reading what the client still sends."""

    def abort(self) -> None:
        """Drop the connection now, discarding queued bytes."""
