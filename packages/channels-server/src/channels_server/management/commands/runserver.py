"""``manage.py runserver`` on channels-server.

With ``"channels_server"`` in ``INSTALLED_APPS`` (above
``django.contrib.staticfiles``), ``runserver`` serves the application named by
``ASGI_APPLICATION`` — HTTP and WebSocket — with channels-server, keeps
Django's autoreloader, system checks and migration warnings, and serves
static files through the staticfiles app when ``DEBUG`` is on (or with
``--insecure``), exactly as Django's own ``runserver`` does for WSGI.

``--noasgi`` runs Django's WSGI development server instead.
"""

from __future__ import annotations

import asyncio
import datetime
import errno
import logging
import os
import signal
import sys
import threading
from typing import Any

import django
from django.apps import apps
from django.conf import settings
from django.contrib.staticfiles.management.commands.runserver import (
    Command as StaticfilesRunserverCommand,
)
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError, CommandParser
from django.db import connections
from django.utils import autoreload

from ... import __version__
from ...config import Config, tcp_endpoint_description
from ...errors import ConfigurationError, LifespanFailure
from ...server import Server, new_event_loop

__all__ = ["Command"]

logger = logging.getLogger("channels_server")

_BIND_ERRORS = {
    errno.EACCES: "You don't have permission to access that port.",
    errno.EADDRINUSE: "That port is already in use.",
    errno.EADDRNOTAVAIL: "That IP address can't be assigned to.",
}


class Command(StaticfilesRunserverCommand):
    """Django's ``runserver`` (with the staticfiles options), serving ASGI with channels-server.

    The staticfiles flavour is the base whether or not the staticfiles app is
    installed, as Django's own command module is always importable; static
    files are only served when the app is installed.
    """

    help = "Starts a development web server for HTTP and WebSocket, on channels-server."
    # Set by Django's handle() from the addrport argument.
    addr: str
    port: str

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--noasgi",
            action="store_false",
            dest="use_asgi",
            help="Run Django's WSGI development server instead of channels-server.",
        )
        parser.add_argument(
            "--http_timeout",
            "--http-timeout",
            dest="http_timeout",
            type=float,
            default=None,
            help="Seconds an HTTP request may take before the client gets 503 (default: no limit).",
        )
        parser.add_argument(
            "--websocket_handshake_timeout",
            "--websocket-handshake-timeout",
            dest="websocket_handshake_timeout",
            type=float,
            default=5,
            help="Seconds the application has to accept or reject a WebSocket (default 5).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["use_asgi"] and not getattr(settings, "ASGI_APPLICATION", None):
            raise CommandError(
                "You have not set ASGI_APPLICATION, which channels-server's runserver needs "
                "(for example ASGI_APPLICATION = 'mysite.asgi.application'); "
                "use --noasgi for Django's WSGI server."
            )
        super().handle(*args, **options)

    def inner_run(self, *args: Any, **options: Any) -> None:
        if not options["use_asgi"]:
            super().inner_run(*args, **options)
            return
        # An exception the reloader's parent process silenced is raised here.
        autoreload.raise_last_exception()
        if not options.get("skip_checks"):
            self.stdout.write("Performing system checks...\n\n")
            self.check(display_num_errors=True)
        self.check_migrations()
        for connection in connections.all(initialized_only=True):
            connection.close()
        try:
            application = self.get_application(options)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        config = Config(
            endpoints=(tcp_endpoint_description(self._bind_address(), int(self.port)),),
            http_timeout=options["http_timeout"],
            websocket_connect_timeout=options["websocket_handshake_timeout"],
            root_path=(getattr(settings, "FORCE_SCRIPT_NAME", None) or "").rstrip("/"),
            # The development server stops at once on CONTROL-C.
            shutdown_timeout=1,
            application_close_timeout=1,
        )
        server = Server(application, config, access_logger=logging.getLogger("django.server"))
        loop = new_event_loop(config.loop)
        try:
            loop.run_until_complete(self._serve(server))
        except ConfigurationError as exc:
            cause = exc.__cause__
            message = str(exc)
            if isinstance(cause, OSError) and cause.errno in _BIND_ERRORS:
                message = _BIND_ERRORS[cause.errno]
            self.stderr.write(f"Error: {message}")
            # sys.exit does not end the process from the reloader's thread.
            os._exit(1)
        except LifespanFailure as exc:
            self.stderr.write(f"Error: {exc}")
            os._exit(1)
        except KeyboardInterrupt:
            shutdown_message = options.get("shutdown_message", "")
            if shutdown_message:
                self.stdout.write(shutdown_message)
            sys.exit(0)
        finally:
            loop.close()

    async def _serve(self, server: Server) -> None:
        if threading.current_thread() is threading.main_thread():
            # Without the reloader this is the main thread: CONTROL-C shuts down cleanly.
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, server.request_shutdown)
        await server.serve(on_started=self._banner)

    def _bind_address(self) -> str:
        if self.addr == "0":
            return "0.0.0.0"
        return str(self.addr)

    def _banner(self, server: Server) -> None:
        address = server.addresses[0]
        if isinstance(address, tuple):
            host, port = address
        else:  # pragma: no cover - runserver binds TCP
            host, port = address, 0
        shown = f"[{host}]" if ":" in host else host
        if self.addr == "0":
            shown = "0.0.0.0"
        now = datetime.datetime.now().strftime("%B %d, %Y - %X")
        channels_version = _version_of("channels")
        quit_command = "CTRL-BREAK" if sys.platform == "win32" else "CONTROL-C"
        self.stdout.write(
            f"{now}\n"
            f"Django version {django.get_version()}, using settings {settings.SETTINGS_MODULE!r}\n"
            f"Channels {channels_version}, channels-server {__version__}\n"
            f"Starting ASGI/channels-server development server at http://{shown}:{port}/\n"
            f"Quit the server with {quit_command}.\n"
        )
        self.stdout.flush()

    def get_application(self, options: dict[str, Any]) -> Any:
        """``ASGI_APPLICATION``, behind the static files handler when static files are served."""
        from channels.routing import get_default_application

        application = get_default_application()
        use_static = options.get("use_static_handler", True) and (
            settings.DEBUG or options.get("insecure_serving", False)
        )
        if use_static and apps.is_installed("django.contrib.staticfiles"):
            from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

            return ASGIStaticFilesHandler(application)  # type: ignore[arg-type]
        return application


def _version_of(module_name: str) -> str:
    try:
        module = __import__(module_name)
    except ImportError:  # pragma: no cover - channels-core is a dependency
        return "(not installed)"
    return str(getattr(module, "__version__", "(unknown version)"))
