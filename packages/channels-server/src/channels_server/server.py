"""The server's lifecycle: bind, lifespan startup, serve, graceful shutdown.

::

    Server.startup()   bind every endpoint ─► lifespan.startup ─► start accepting
    Server.serve()     startup() ─► wait for request_shutdown() ─► shutdown()
    Server.shutdown()  stop accepting ─► idle connections close, responses in flight
                       finish (up to shutdown_timeout), WebSockets close with 1012
                       ─► application tasks finish (or are cancelled) ─► lifespan.shutdown

:func:`run` is what the command line calls: it picks the event loop (uvloop
when installed), raises the soft limit on open files to the hard limit,
sizes the thread pool from ``ASGI_THREADS``, and turns
SIGTERM and SIGINT into a graceful shutdown (a second signal skips the
waiting).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import resource
import signal
import socket
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, Any, TextIO

from asgiref.compatibility import guarantee_single_callable

from .config import Config, TLSSettings
from .context import ServerContext
from .errors import ConfigurationError, LifespanFailure
from .lifespan import Lifespan
from .logging import AccessLogger, StreamAccessLog
from .protocol.versions import http2_enabled
from .transport.accept import Acceptor
from .transport.tcp import ServerProtocol, bind, describe_socket
from .transport.tls import ServerSSLContext, server_context

if TYPE_CHECKING:
    from channels.asgi_types import ASGIApplication

__all__ = ["Server", "ServerThread", "new_event_loop", "run"]

logger = logging.getLogger("channels_server")


class Server:
    """Serves one ASGI application on the endpoints of *config*.

    :param application: an ASGI 3 application (ASGI 2 double callables are adapted).
    :param config: the settings; the defaults serve on 127.0.0.1:8000.
    :param access_logger: where access-log records go (``channels_server.access``
        by default; ``manage.py runserver`` uses Django's ``django.server``).
    :param access_log_stream: write the access-log lines to this text stream
        instead of making log records (the command line's ``--access-log``).
    """

    def __init__(
        self,
        application: Any,
        config: Config | None = None,
        *,
        access_logger: logging.Logger | None = None,
        access_log_stream: IO[str] | None = None,
    ) -> None:
        self.config = config if config is not None else Config()
        app: ASGIApplication = guarantee_single_callable(application)  # type: ignore[no-untyped-call]
        self.context = ServerContext(app, self.config)
        if access_logger is not None and access_log_stream is not None:
            raise ConfigurationError("give access_logger or access_log_stream, not both")
        if access_logger is not None:
            self.context.access_log = AccessLogger(access_logger)
        elif access_log_stream is not None:
            self.context.access_log = StreamAccessLog(access_log_stream)
        self.lifespan = Lifespan(app, self.config.lifespan, self.context.state)
        #: The listening sockets, once started.
        self.sockets: list[socket.socket] = []
        #: The TLS context of each socket in :attr:`sockets` (None for plain TCP).
        self.ssl_contexts: list[ServerSSLContext | None] = []
        self._acceptors: list[Acceptor] = []
        self._unix_paths: list[str] = []
        self._stop: asyncio.Event | None = None
        self._force = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def addresses(self) -> list[tuple[str, int] | str]:
        """Where the server listens: (host, port) for TCP, the path for unix sockets."""
        found: list[tuple[str, int] | str] = []
        for sock in self.sockets:
            address = sock.getsockname()
            if sock.family == socket.AF_UNIX:
                found.append(str(address))
            else:
                found.append((address[0], address[1]))
        return found

    async def startup(self) -> None:
        """Bind, run lifespan startup, and start accepting connections.

        Raises :class:`~channels_server.errors.ConfigurationError` when a TLS
        file cannot be loaded (before anything is bound), when an endpoint
        cannot be bound, and
        :class:`~channels_server.errors.LifespanFailure` when the application
        fails to start; nothing is left listening in either case.
        """
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        config = self.config
        # Every certificate and key is loaded before any socket is bound, so
        # that a bad file stops the server before anything listens.
        http2 = http2_enabled(config)
        made: dict[TLSSettings, ServerSSLContext] = {}
        contexts: list[ServerSSLContext | None] = []
        for endpoint in config.parsed_endpoints:
            settings = endpoint.tls
            if settings is not None and settings not in made:
                # One context per set of settings: --ssl-* applies to every endpoint.
                made[settings] = server_context(settings, http2=http2)
            contexts.append(None if settings is None else made[settings])
        try:
            for endpoint, ssl_context in zip(config.parsed_endpoints, contexts, strict=True):
                sock = bind(endpoint, config.backlog)
                self.sockets.append(sock)
                self.ssl_contexts.append(ssl_context)
                if endpoint.kind == "unix" and endpoint.path is not None:
                    self._unix_paths.append(endpoint.path)
            # Lifespan spec: startup runs once the server is ready to receive
            # connections but before it does (the sockets queue them meanwhile).
            await self.lifespan.startup()
            factory = functools.partial(ServerProtocol, self.context)
            for sock, ssl_context in zip(self.sockets, self.ssl_contexts, strict=True):
                # Not loop.create_server: see transport/accept.py for what
                # both loops do when the process runs out of descriptors.
                acceptor = Acceptor(
                    sock,
                    factory,
                    config.backlog,
                    ssl_context=ssl_context,
                    # The handshake is the first thing a client sends.
                    handshake_timeout=config.header_timeout,
                )
                self._acceptors.append(acceptor)
                acceptor.start()
        except BaseException:
            self._close_sockets()
            raise
        for sock, ssl_context in zip(self.sockets, self.ssl_contexts, strict=True):
            logger.info("Listening on %s", describe_socket(sock, tls=ssl_context is not None))

    def stop_accepting(self) -> None:
        """Stop accepting connections; those already accepted are served on.

        For a worker whose listening sockets other processes share: they take
        the new connections, and a client accepted here just before gets its
        request answered instead of the 503 or the close a shutdown gives it.
        :meth:`shutdown` later closes the sockets.
        """
        for acceptor in self._acceptors:
            acceptor.close()

    def request_shutdown(self, *, force: bool = False) -> None:
        """Ask :meth:`serve` to stop; safe to call from another thread or a signal handler."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if force:
            self._force = True
        stop = self._stop
        if stop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            stop.set()
            if force:
                self._abort_everything()
        else:
            loop.call_soon_threadsafe(stop.set)
            if force:
                loop.call_soon_threadsafe(self._abort_everything)

    async def serve(self, on_started: Callable[[Server], None] | None = None) -> None:
        """Start, serve until :meth:`request_shutdown`, then shut down gracefully.

        :param on_started: called once the server accepts connections.
        """
        await self.startup()
        assert self._stop is not None
        if on_started is not None:
            on_started(self)
        try:
            await self._stop.wait()
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        """Stop accepting, finish or close every connection, then run lifespan shutdown."""
        context = self.context
        config = self.config
        context.shutting_down = True
        for acceptor in self._acceptors:
            acceptor.close()
        # Closed now, new connections are refused instead of waiting in the
        # listen queue for a server that will not accept them.
        for sock in self.sockets:
            sock.close()
        for acceptor in self._acceptors:
            # Connections accepted just before reach their protocol, which
            # sees the shutdown and closes them.
            await acceptor.wait_closed()
        for connection in list(context.connections):
            connection.shutdown()
        if context.connections and not self._force:
            try:
                await asyncio.wait_for(context.wait_connections_closed(), config.shutdown_timeout)
            except asyncio.TimeoutError:
                logger.warning(
                    "%d connection(s) still open %ss after shutdown began; closing them",
                    len(context.connections),
                    config.shutdown_timeout,
                )
        for connection in list(context.connections):
            connection.abort()
        await self._finish_tasks()
        await self.lifespan.shutdown(config.shutdown_timeout)
        self._acceptors.clear()
        self._close_sockets()
        context.access_log.flush()

    async def _finish_tasks(self) -> None:
        # Every connection is closed, so each application has been told it
        # disconnected; give them application_close_timeout to return.
        tasks = set(self.context.tasks)
        if not tasks:
            return
        timeout = 0 if self._force else self.config.application_close_timeout
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        if pending:
            logger.warning(
                "Cancelling %d application task(s) still running at shutdown", len(pending)
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        # A task cancelled before it started never ran the code that removes it.
        self.context.tasks.difference_update(tasks)

    def _abort_everything(self) -> None:
        for connection in list(self.context.connections):
            connection.abort()
        for task in list(self.context.tasks):
            task.cancel()

    def _close_sockets(self) -> None:
        for acceptor in self._acceptors:
            acceptor.close()
        for sock in self.sockets:
            sock.close()
        for path in self._unix_paths:
            with contextlib.suppress(OSError):
                os.unlink(path)
        self._unix_paths.clear()


def new_event_loop(choice: str = "auto") -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop for "uvloop" (and for "auto" when it is installed)."""
    if choice in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise ConfigurationError(
                    "loop 'uvloop' needs uvloop: pip install 'channels-server[fast]'"
                ) from None
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


def _thread_pool_size() -> int | None:
    value = os.environ.get("ASGI_THREADS")
    if value is None or not value.strip():
        return None
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size <= 0:
        raise ConfigurationError(f"ASGI_THREADS must be a positive integer, not {value!r}")
    return size


def _raise_open_file_limit() -> None:
    """Raise the soft limit on open files to the hard limit (never fails).

    Every connection costs a descriptor, and the soft limit is often 1024
    while the hard limit allows far more: without this, a server that could
    hold tens of thousands of WebSockets stops accepting at about a thousand.
    """
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):  # pragma: no cover - no such limit on this platform
        return
    if soft == resource.RLIM_INFINITY or (soft >= hard and hard != resource.RLIM_INFINITY):
        return
    # An unlimited hard limit cannot be the soft one (Linux caps it at
    # fs.nr_open, macOS at kern.maxfilesperproc): try large finite values.
    targets = [hard] if hard != resource.RLIM_INFINITY else [1_048_576, 65_536, 10_240]
    for target in targets:
        if target <= soft:
            continue
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError):
            continue
        logger.debug("Raised the open-file limit (RLIMIT_NOFILE) from %d to %d", soft, target)
        return
    logger.debug("Could not raise the open-file limit (RLIMIT_NOFILE) above %d", soft)


def run(
    application: Any,
    config: Config | None = None,
    *,
    announce: TextIO | None = None,
    access_log_stream: IO[str] | None = None,
    handover_delay: float = 0.0,
) -> int:
    """Serve *application* until SIGTERM or SIGINT; returns the process exit status.

    :param announce: where to print the listening addresses (the command line
        passes standard output when a port is 0, so the chosen port can be read).
    :param access_log_stream: where to write the access log (see :class:`Server`).
    :param handover_delay: on the first signal, stop accepting and serve on for
        this many seconds before the graceful shutdown begins (a ``--workers``
        worker: see :meth:`Server.stop_accepting`).
    """
    config = config if config is not None else Config()
    _raise_open_file_limit()
    threads = _thread_pool_size()
    loop = new_event_loop(config.loop)
    asyncio.set_event_loop(loop)
    if threads is not None:
        # asgiref's sync_to_async(thread_sensitive=False) runs in the default executor.
        loop.set_default_executor(
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="asgi")
        )
    server = Server(application, config, access_log_stream=access_log_stream)
    in_main_thread = threading.current_thread() is threading.main_thread()
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen == 1:
            logger.info("Received %s; shutting down gracefully", signal.Signals(signum).name)
            if handover_delay > 0:
                server.stop_accepting()
                loop.call_later(handover_delay, server.request_shutdown)
            else:
                server.request_shutdown()
        else:
            logger.warning("Received %s again; exiting now", signal.Signals(signum).name)
            server.request_shutdown(force=True)

    async def main() -> None:
        if in_main_thread:
            for signum in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(signum, on_signal, signum)
        await server.serve(on_started=announce_addresses)

    def announce_addresses(started: Server) -> None:
        if announce is not None:
            for sock, ssl_context in zip(started.sockets, started.ssl_contexts, strict=True):
                where = describe_socket(sock, tls=ssl_context is not None)
                print(f"Listening on {where}", file=announce, flush=True)

    try:
        loop.run_until_complete(main())
    except (ConfigurationError, LifespanFailure) as exc:
        logger.error("%s", exc)
        print(f"channels-server: {exc}", file=sys.stderr)
        return 1
    finally:
        try:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
    return 0


class ServerThread(threading.Thread):
    """Runs a :class:`Server` in a background thread with its own event loop.

    For tests and tools that need a real server next to synchronous code
    (``ChannelsLiveServerTestCase`` uses it)::

        thread = ServerThread(application, Config(endpoints=("tcp:port=0:interface=127.0.0.1",)))
        thread.start()
        host, port = thread.wait_ready()[0]
        ...
        thread.stop()

    :param application: the ASGI application.
    :param config: the settings (signals are left alone: the thread is not the main one).
    """

    def __init__(self, application: Any, config: Config, **server_options: Any) -> None:
        super().__init__(name="channels-server", daemon=True)
        self.server = Server(application, config, **server_options)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def run(self) -> None:
        loop = new_event_loop(self.server.config.loop)
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.server.serve(on_started=lambda _: self._ready.set()))
        except BaseException as exc:  # noqa: BLE001 - handed to the thread in wait_ready()
            self._error = exc
        finally:
            self._ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    def wait_ready(self, timeout: float = 30) -> list[tuple[str, int] | str]:
        """Block until the server accepts connections; its addresses.

        Re-raises what stopped it from starting (a port in use, a failed lifespan startup).
        """
        if not self._ready.wait(timeout):
            raise TimeoutError(f"channels-server did not start within {timeout}s")
        if self._error is not None:
            raise self._error
        return self.server.addresses

    def stop(self, timeout: float = 30) -> None:
        """Shut the server down gracefully and wait for the thread to end."""
        self.server.request_shutdown()
        self.join(timeout)
