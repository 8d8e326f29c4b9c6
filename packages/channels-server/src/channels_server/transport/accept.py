"""Accepting connections, with a back-off when the process runs out of descriptors.

The server accepts on its listening sockets itself instead of through
``loop.create_server``, because neither event loop survives running out of
file descriptors well:

* asyncio's selector loop logs a full traceback for *every* failed
  ``accept()`` in a batch (up to the backlog, 2048 here) before it pauses
  for a second, then does it again: thousands of log records a second;
* uvloop (libuv) accepts and immediately closes every waiting connection,
  so clients are reset and nothing is logged at all.

:class:`Acceptor` watches one listening socket with ``loop.add_reader`` and
calls ``accept()`` until the socket has nothing more to give. When
``accept()`` fails with EMFILE, ENFILE, ENOBUFS or ENOMEM it stops watching
the socket for a short interval that doubles on each consecutive failure (up
to a second), so waiting connections stay in the kernel's queue instead of
being dropped, the process does not spin, and the condition is logged once
when it starts, at most every ten seconds while it lasts, and once when it
ends. Each accepted socket is handed to the loop with
``loop.connect_accepted_socket``, which both loops implement.

On a TLS listener the loop also runs the handshake, within
``ssl_handshake_timeout``, before the connection reaches its protocol. A
client that fails it (plain HTTP on the TLS port, a certificate the server
refuses, a connection dropped mid-handshake, a handshake that never ends)
costs one debug line and nothing else; at shutdown, handshakes still in
progress are abandoned.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

from .tcp import describe_socket

__all__ = ["Acceptor"]

logger = logging.getLogger("channels_server")

# accept() failing with one of these means the process (or the system) has no
# descriptor or buffer memory for a new connection right now; retrying at
# once would fail again, so accepting pauses.
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

# accept(2) on Linux reports errors of the connection being accepted (it was
# aborted, or its network went away) that say nothing about the listening
# socket: the next connection may be accepted at once.
_CONNECTION_ERRORS = frozenset(
    {
        errno.ECONNABORTED,
        errno.EPROTO,
        errno.ENOPROTOOPT,
        errno.EHOSTDOWN,
        errno.EHOSTUNREACH,
        errno.ENETDOWN,
        errno.ENETUNREACH,
        errno.EOPNOTSUPP,
        errno.EPERM,  # A firewall rule refused the connection.
    }
    | ({errno.ENONET} if hasattr(errno, "ENONET") else set())
)

#: The first pause after accept() ran out of resources, in seconds.
FIRST_PAUSE = 0.05
#: The longest pause: accepting resumes at least this often while out of resources.
LONGEST_PAUSE = 1.0
#: While the condition lasts, how often it is logged again.
LOG_INTERVAL = 10.0


class Acceptor:
    """Accepts the connections of one listening socket and hands them to *protocol_factory*.

    :param sock: a listening, non-blocking socket (the caller keeps owning it).
    :param protocol_factory: makes the protocol of each accepted connection.
    :param batch: the most connections accepted in one turn of the event
        loop (the listen backlog), so that a flood of connections does not
        starve the connections already open.
    :param ssl_context: the TLS context of a TLS listener, None for plain TCP.
    :param handshake_timeout: how long a TLS client has to finish its handshake.
    """

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        batch: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float = 10,
    ) -> None:
        self.sock = sock
        self._ssl = ssl_context
        self._handshake_timeout = handshake_timeout
        self._factory = protocol_factory
        self._batch = max(1, batch)
        self._loop = asyncio.get_running_loop()
        self._fileno = sock.fileno()
        self._watching = False
        self._closed = False
        self._pause = 0.0
        self._resume: asyncio.TimerHandle | None = None
        self._trouble_since = 0.0
        self._last_logged = 0.0
        self._failures = 0
        #: Connections being handed to the loop (one short task each).
        self._connecting: set[asyncio.Task[None]] = set()
        #: The protocol each TLS handshake under way will hand its connection to.
        self._protocols: dict[asyncio.Task[Any], Any] = {}

    def start(self) -> None:
        """Start accepting."""
        if not self._closed and not self._watching:
            self._loop.add_reader(self._fileno, self._accept)
            self._watching = True

    def close(self) -> None:
        """Stop accepting for good (the socket itself is left open)."""
        self._closed = True
        self._stop_watching()
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        if self._ssl is not None:
            # A handshake may take up to its timeout; a closing server does
            # not wait for it (a plain connection reaches its protocol at once).
            # One that has just completed is left alone: its protocol has the
            # connection and the server's shutdown closes it (cancelling the
            # task now would close its transport under the protocol, and the
            # protocol's own close then cannot abort it).
            for task in self._connecting:
                protocol = self._protocols.get(task)
                if getattr(protocol, "transport", None) is None:
                    task.cancel()

    async def wait_closed(self) -> None:
        """Wait for the connections accepted before :meth:`close` to reach their protocol."""
        if self._connecting:
            await asyncio.gather(*self._connecting, return_exceptions=True)

    def _stop_watching(self) -> None:
        if self._watching:
            self._watching = False
            self._loop.remove_reader(self._fileno)

    def _accept(self) -> None:
        sock = self.sock
        for _ in range(self._batch):
            try:
                connection, address = sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno in _CONNECTION_ERRORS:
                    continue
                self._back_off(exc)
                return
            self._recovered()
            connection.setblocking(False)
            task = self._loop.create_task(self._connect(connection, address))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    async def _connect(self, connection: socket.socket, address: Any) -> None:
        if self._ssl is not None:
            await self._connect_tls(connection, address, self._ssl)
            return
        try:
            await self._loop.connect_accepted_socket(self._factory, connection)
        except OSError as exc:
            # The loop could not set the connection up (uvloop, for one,
            # needs descriptors of its own): drop this client; the next
            # accept() tells whether the process is out of resources.
            logger.debug("Could not set up an accepted connection: %s", exc)
            connection.close()

    async def _connect_tls(
        self, connection: socket.socket, address: Any, context: ssl.SSLContext
    ) -> None:
        task = asyncio.current_task()
        assert task is not None

        def factory() -> asyncio.Protocol:
            protocol = self._protocols[task] = self._factory()
            return protocol

        try:
            await self._loop.connect_accepted_socket(
                factory,
                connection,
                ssl=context,
                ssl_handshake_timeout=self._handshake_timeout,
            )
        except (OSError, asyncio.TimeoutError, EOFError) as exc:
            # ssl.SSLError is an OSError. The loop has closed the transport
            # (and with it the socket) already; closing again is harmless.
            logger.debug(
                "TLS handshake with %s failed: %s",
                address or "a unix socket peer",
                _handshake_error(exc),
            )
            connection.close()
        finally:
            self._protocols.pop(task, None)

    def _back_off(self, exc: OSError) -> None:
        """Stop accepting for a while after accept() failed with *exc*."""
        self._stop_watching()
        now = self._loop.time()
        where = describe_socket(self.sock, tls=self._ssl is not None)
        if exc.errno in _OUT_OF_RESOURCES:
            self._pause = FIRST_PAUSE if self._pause == 0 else min(self._pause * 2, LONGEST_PAUSE)
        else:
            # Anything else is unexpected: pause the longest, so a persistent
            # error costs one log record every LOG_INTERVAL, not a busy loop.
            self._pause = LONGEST_PAUSE
        self._failures += 1
        if self._failures == 1:
            self._trouble_since = self._last_logged = now
            logger.warning(
                "Cannot accept connections on %s: %s; pausing accepts "
                "(connections wait in the listen queue) and retrying with a back-off "
                "of up to %ss",
                where,
                _reason(exc),
                LONGEST_PAUSE,
            )
        elif now - self._last_logged >= LOG_INTERVAL:
            self._last_logged = now
            logger.warning(
                "Still cannot accept connections on %s after %.0fs (%d attempts): %s",
                where,
                now - self._trouble_since,
                self._failures,
                _reason(exc),
            )
        self._resume = self._loop.call_later(self._pause, self._resume_accepting)

    def _resume_accepting(self) -> None:
        self._resume = None
        if self._closed:
            return
        self.start()
        # Try at once rather than waiting for the next readiness event: a
        # connection already queued would otherwise wait for another client.
        self._accept()

    def _recovered(self) -> None:
        if self._failures:
            logger.warning(
                "Accepting connections on %s again after %.1fs",
                describe_socket(self.sock, tls=self._ssl is not None),
                self._loop.time() - self._trouble_since,
            )
            self._failures = 0
            self._pause = 0.0


def _handshake_error(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return f"{exc.library or 'SSL'}: {exc.reason}"
    return str(exc) or type(exc).__name__


def _reason(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    hint = ""
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        hint = " (out of file descriptors: raise the open-file limit or use --limit-concurrency)"
    return f"{name} {exc.strerror}{hint}"
