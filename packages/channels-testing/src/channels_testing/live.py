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
in a background thread with its own event loop, and stops after the class.
Static files are served from the finders (no ``collectstatic``) while
:attr:`~ChannelsLiveServerTestCase.serve_static` is true.

It needs the channels-server package, and a database that other threads can
see: a SQLite *file* (set ``DATABASES["default"]["TEST"]["NAME"]``) or a
server database; an in-memory SQLite database is refused.
"""

from __future__ import annotations

from typing import Any, ClassVar

_HINT = (
    "ChannelsLiveServerTestCase needs Django and channels-server: "
    "pip install channels-testing[live]"
)

try:
    from django.core.exceptions import ImproperlyConfigured
    from django.db import connections
    from django.test import TransactionTestCase
    from django.test.utils import modify_settings
    from django.utils.functional import classproperty
except ImportError as exc:  # pragma: no cover - exercised by tools/import_alone.py
    raise ImportError(_HINT) from exc

__all__ = [
    "ChannelsLiveServerTestCase",
    "project_application",
    "require_shared_database",
    "start_server",
]


def _uses_in_memory_sqlite() -> bool:
    for connection in connections.all():
        # Only the SQLite backend has is_in_memory_db().
        in_memory = getattr(connection, "is_in_memory_db", None)
        if connection.vendor == "sqlite" and in_memory is not None and in_memory():
            return True
    return False


def require_shared_database(what: str) -> None:
    """Refuse an in-memory SQLite database, which the server's thread cannot see."""
    if _uses_in_memory_sqlite():
        raise ImproperlyConfigured(
            f"{what} cannot use an in-memory SQLite database: the server runs in another "
            "thread. Set DATABASES['default']['TEST']['NAME'] to a file."
        )


def project_application(serve_static: bool) -> Any:
    """``ASGI_APPLICATION``, behind the staticfiles handler if *serve_static*."""
    from channels.routing import get_default_application

    application: Any = get_default_application()
    if serve_static:
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        application = ASGIStaticFilesHandler(application)
    return application


def start_server(
    application: Any, host: str, port: int, options: dict[str, Any]
) -> tuple[Any, int]:
    """Run channels-server in a background thread; (the thread, the port it listens on).

    Stop it with ``thread.stop()``.
    """
    try:
        from channels_server import Config
        from channels_server.config import tcp_endpoint_description
        from channels_server.server import ServerThread
    except ImportError as exc:  # pragma: no cover - exercised without channels-server
        raise ImproperlyConfigured(
            "A live server needs channels-server: pip install channels-server"
        ) from exc
    options = {"lifespan": "auto", "shutdown_timeout": 5, **options}
    config = Config(endpoints=(tcp_endpoint_description(host, port),), **options)
    thread = ServerThread(application, config)
    thread.start()
    try:
        addresses = thread.wait_ready()
    except BaseException:
        thread.join(5)
        raise
    address = addresses[0]
    return thread, address[1] if isinstance(address, tuple) else 0


class ChannelsLiveServerTestCase(TransactionTestCase):
    """A TransactionTestCase with channels-server serving the project on a free port."""

    #: The host the server listens on and the URLs name.
    host: ClassVar[str] = "localhost"
    #: The port to listen on; 0 lets the operating system pick a free one.
    port: ClassVar[int] = 0
    #: Serve static files from the staticfiles finders, as StaticLiveServerTestCase does.
    serve_static: ClassVar[bool] = True
    #: Extra channels-server settings (``channels_server.Config`` keyword arguments).
    server_options: ClassVar[dict[str, Any]] = {}

    _server_thread: ClassVar[Any] = None
    _server_port: ClassVar[int] = 0

    @classproperty
    def live_server_url(cls) -> str:
        """``http://host:port`` of the running server."""
        return f"http://{cls.host}:{cls._server_port}"

    @classproperty
    def live_server_ws_url(cls) -> str:
        """``ws://host:port`` of the running server."""
        return f"ws://{cls.host}:{cls._server_port}"

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        require_shared_database("ChannelsLiveServerTestCase")
        modified = modify_settings(ALLOWED_HOSTS={"append": cls.host})
        modified.enable()
        cls.addClassCleanup(modified.disable)
        cls._start_server()

    @classmethod
    def get_application(cls) -> Any:
        """The application to serve: ``ASGI_APPLICATION``, with static files if asked."""
        return project_application(cls.serve_static)

    @classmethod
    def _start_server(cls) -> None:
        cls._server_thread, cls._server_port = start_server(
            cls.get_application(), cls.host, cls.port, cls.server_options
        )
        cls.addClassCleanup(cls._stop_server)

    @classmethod
    def _stop_server(cls) -> None:
        thread = cls._server_thread
        if thread is not None:
            thread.stop()
            cls._server_thread = None
