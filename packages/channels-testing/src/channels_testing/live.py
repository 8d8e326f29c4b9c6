"""``ChannelsLiveServerTestCase``: Django's LiveServerTestCase, on channels-server.

A real channels-server runs the project's ``ASGI_APPLICATION`` against the
test database, on a port the operating system picks, so that a browser (or
any client) can reach HTTP views and the WebSocket routes alike::

    from channels.testing import ChannelsLiveServerTestCase

    class ChatTests(ChannelsLiveServerTestCase):
        def test_page(self):
            browser.get(self.live_server_url + "/chat/")
            # WebSocket clients connect to self.live_server_ws_url + "/ws/chat/lobby/"

The server starts once per test class (as Django's LiveServerTestCase does)
and stops after the class. Static files are served from the finders (no
``collectstatic``) while :attr:`~ChannelsLiveServerTestCase.serve_static` is
true.

The class has the hooks of Channels' own: :attr:`host`, :attr:`serve_static`,
:attr:`static_wrapper` and :attr:`ProtocolServerProcess`, a class built as
``ProtocolServerProcess(host, get_application, setup=...)`` that has
``start()``, ``ready`` (an event), ``port.value``, ``is_alive()``,
``terminate()`` and ``join()``, as Daphne's ``DaphneProcess`` has. The
default, :class:`ChannelsServerProcess`, runs channels-server in a thread of
the test process, so that the server shares the test's in-memory channel
layer and its settings; ``DaphneProcess`` itself still works there.

It needs the channels-server package, and a database that other threads can
see: a SQLite *file* (set ``DATABASES["default"]["TEST"]["NAME"]``) or a
server database; an in-memory SQLite database is refused.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import traceback
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

_HINT = (
    "ChannelsLiveServerTestCase needs Django, channels-core and channels-server: "
    "pip install channels-testing[live]"
)

try:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.core.exceptions import ImproperlyConfigured
    from django.db import connections
    from django.test import TransactionTestCase
    from django.test.utils import modify_settings
    from django.utils.functional import classproperty

    from channels.routing import get_default_application
except ImportError as exc:  # pragma: no cover - exercised by tools/import_alone.py
    raise ImportError(_HINT) from exc

__all__ = [
    "ChannelsLiveServerTestCase",
    "ChannelsServerProcess",
    "make_application",
    "require_shared_database",
    "set_database_connection",
    "start_server",
    "wait_until_listening",
]

#: How long to wait for a live server to listen before giving up.
_STARTUP_TIMEOUT = 60.0


def _uses_in_memory_sqlite() -> bool:
    return any(_is_in_memory_db(connection) for connection in connections.all())


def _is_in_memory_db(connection: Any) -> bool:
    # Only the SQLite backend has is_in_memory_db().
    in_memory = getattr(connection, "is_in_memory_db", None)
    return connection.vendor == "sqlite" and in_memory is not None and bool(in_memory())


def require_shared_database(what: str) -> None:
    """Refuse an in-memory SQLite database, which the server's thread cannot see."""
    if _uses_in_memory_sqlite():
        raise ImproperlyConfigured(
            f"{what} cannot use an in-memory SQLite database: the server runs in another "
            "thread. Set DATABASES['default']['TEST']['NAME'] to a file."
        )


def make_application(*, static_wrapper: Callable[[Any], Any] | None) -> Any:
    """``ASGI_APPLICATION``, wrapped by *static_wrapper* unless it is ``None``.

    A module-level function, so that ``partial(make_application, ...)`` can be
    pickled for a server that runs in a process of its own.
    """
    application: Any = get_default_application()
    if static_wrapper is not None:
        application = static_wrapper(application)
    return application


def set_database_connection() -> None:
    """Point the default database at its test database, in a fresh server process.

    The ``setup`` that :class:`ChannelsLiveServerTestCase` gives its server
    process, as Channels does. A process started afresh (the "spawn" start
    method) reads the settings as written, so its default database is renamed
    to the test one: ``TEST["NAME"]``, else ``test_`` and the name. In the
    test process itself (a thread, as :class:`ChannelsServerProcess` runs)
    or a fork of it, the test runner has already done that, and has set up
    the test environment: then nothing is done, rather than rename twice.
    """
    from django.conf import settings
    from django.core import mail

    # setup_test_environment() gives django.core.mail an outbox; a process
    # started afresh has none.
    if hasattr(mail, "outbox"):
        return
    database = settings.DATABASES["default"]
    test_name = (database.get("TEST") or {}).get("NAME")
    database["NAME"] = test_name or f"test_{database['NAME']}"


class _PortValue:
    """``port.value``, as ``multiprocessing.Value`` has it (0 until the server listens)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


def _require_channels_server() -> None:
    try:
        import channels_server  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "ChannelsLiveServerTestCase runs channels-server, which is not installed: "
            "pip install channels-testing[live]"
        ) from exc


class ChannelsServerProcess(threading.Thread):
    """channels-server for a live-server test, with the interface of ``DaphneProcess``.

    It runs in a thread of the test process, not in a process of its own: the
    server then sees the test's settings, its database connections' settings
    and its in-memory channel layer, and nothing has to be pickled.

    :param host: the interface to listen on (``"localhost"``).
    :param get_application: called in the server's thread to make the application.
    :param kwargs: ``channels_server.Config`` keyword arguments; ``"port"``
        picks the port (0, the default, lets the operating system choose).
    :param setup: called in the server's thread before it starts listening.
    :param teardown: called in the server's thread after it stopped.

    Once the server listens, :attr:`ready` is set and ``port.value`` is its
    port. What stops it from starting is put on :attr:`errors` as
    ``(exception, traceback text)``, and the thread ends without ``ready``.
    """

    def __init__(
        self,
        host: str,
        get_application: Callable[[], Any],
        kwargs: dict[str, Any] | None = None,
        setup: Callable[[], object] | None = None,
        teardown: Callable[[], object] | None = None,
    ) -> None:
        _require_channels_server()
        super().__init__(name="channels-live-server", daemon=True)
        self.host = host
        self.get_application = get_application
        self.kwargs = dict(kwargs or {})
        self.setup = setup
        self.teardown = teardown
        #: Set once the server listens.
        self.ready = threading.Event()
        #: ``port.value``: the port the server listens on, once :attr:`ready`.
        self.port = _PortValue()
        #: ``(exception, traceback text)`` of what stopped the server from running.
        self.errors: queue.Queue[tuple[BaseException, str]] = queue.Queue()
        self.server: Any = None
        self._terminated = False
        self._lock = threading.Lock()

    def run(self) -> None:
        try:
            from channels_server import Config, Server
            from channels_server.config import tcp_endpoint_description
            from channels_server.server import new_event_loop

            options = {"lifespan": "auto", "shutdown_timeout": 5, **self.kwargs}
            port = options.pop("port", 0)
            config = Config(endpoints=(tcp_endpoint_description(self.host, port),), **options)
            server = Server(self.get_application(), config)
            with self._lock:
                self.server = server
            if self.setup is not None:
                self.setup()
            try:
                loop = new_event_loop(config.loop)
                asyncio.set_event_loop(loop)
                try:
                    loop.run_until_complete(server.serve(on_started=self._listening))
                finally:
                    try:
                        loop.run_until_complete(loop.shutdown_asyncgens())
                    finally:
                        asyncio.set_event_loop(None)
                        loop.close()
            finally:
                if self.teardown is not None:
                    self.teardown()
        except BaseException as exc:  # noqa: BLE001 - handed to the test through errors
            self.errors.put((exc, traceback.format_exc()))

    def _listening(self, server: Any) -> None:
        address = server.addresses[0]
        self.port.value = address[1] if isinstance(address, tuple) else 0
        self.ready.set()
        with self._lock:
            stop = self._terminated
        if stop:
            # terminate() came before the server could be told.
            server.request_shutdown()

    def terminate(self) -> None:
        """Ask the server to shut down gracefully; ``join()`` waits for it."""
        with self._lock:
            self._terminated = True
            server = self.server
        if server is not None:
            server.request_shutdown()


def wait_until_listening(process: Any, timeout: float = _STARTUP_TIMEOUT) -> int:
    """Wait for a started server process to be ``ready``; the port it listens on.

    Raises ``RuntimeError`` (from what stopped it, when the process says)
    if the server stops first or is not ready within *timeout* seconds.
    """
    deadline = time.monotonic() + timeout
    while not process.ready.wait(timeout=0.5):
        if not process.is_alive():
            errors = getattr(process, "errors", None)
            if errors is not None and not errors.empty():
                cause, text = errors.get()
                message = f"The live server stopped before it was ready:\n{text}"
                raise RuntimeError(message) from cause
            raise RuntimeError("The live server stopped before it was ready")
        if time.monotonic() > deadline:
            process.terminate()
            raise RuntimeError(f"The live server was not ready within {timeout} seconds")
    port: int = process.port.value
    return port


def start_server(
    process_class: Callable[..., Any],
    host: str,
    static_wrapper: Callable[[Any], Any] | None,
    **arguments: Any,
) -> tuple[Any, int]:
    """Start a *process_class* server on *host*; return it and its port, once it listens.

    It serves ``ASGI_APPLICATION``, wrapped by *static_wrapper* unless that is
    ``None`` (:func:`make_application`); *arguments* go to *process_class*
    (``setup``, ``kwargs``). A server that does not come up is stopped before
    the error (from :func:`wait_until_listening`) is raised.
    """
    get_application = partial(make_application, static_wrapper=static_wrapper)
    process = process_class(host, get_application, **arguments)
    process.start()
    try:
        port = wait_until_listening(process)
    except BaseException:
        process.terminate()
        process.join()
        raise
    return process, port


class ChannelsLiveServerTestCase(TransactionTestCase):
    """A TransactionTestCase with channels-server serving the project on a free port."""

    #: The host the server listens on and the URLs name.
    host: ClassVar[str] = "localhost"
    #: The port to listen on; 0 lets the operating system pick a free one.
    port: ClassVar[int] = 0
    #: Serve static files, through :attr:`static_wrapper`.
    serve_static: ClassVar[bool] = True
    #: What wraps the application when :attr:`serve_static` is true: Django's
    #: handler that serves files from the staticfiles finders.
    static_wrapper: ClassVar[Callable[[Any], Any]] = ASGIStaticFilesHandler
    #: The server process class (see the module's documentation).
    ProtocolServerProcess: ClassVar[Callable[..., Any]] = ChannelsServerProcess
    #: Extra channels-server settings (``channels_server.Config`` keyword
    #: arguments), handed to :attr:`ProtocolServerProcess` as ``kwargs``.
    server_options: ClassVar[dict[str, Any]] = {}

    _server_process: ClassVar[Any] = None
    _port: ClassVar[int] = 0

    @classproperty
    def live_server_url(cls) -> str:
        """``http://host:port`` of the running server."""
        return f"http://{cls.host}:{cls._port}"

    @classproperty
    def live_server_ws_url(cls) -> str:
        """``ws://host:port`` of the running server."""
        return f"ws://{cls.host}:{cls._port}"

    @classmethod
    def _is_in_memory_db(cls, connection: Any) -> bool:
        """Whether *connection* is to an in-memory SQLite database."""
        return _is_in_memory_db(connection)

    @classmethod
    def setUpClass(cls) -> None:
        require_shared_database("ChannelsLiveServerTestCase")
        super().setUpClass()
        modified = modify_settings(ALLOWED_HOSTS={"append": cls.host})
        modified.enable()
        cls.addClassCleanup(modified.disable)
        kwargs = dict(cls.server_options)
        if cls.port:
            kwargs["port"] = cls.port
        # Only what DaphneProcess takes too, so that it can stand in.
        extra = {"kwargs": kwargs} if kwargs else {}
        cls._server_process, cls._port = start_server(
            cls.ProtocolServerProcess,
            cls.host,
            cls.static_wrapper if cls.serve_static else None,
            setup=set_database_connection,
            **extra,
        )
        cls.addClassCleanup(cls._stop_server)

    @classmethod
    def _stop_server(cls) -> None:
        process = cls._server_process
        if process is not None:
            process.terminate()
            process.join()
            cls._server_process = None
