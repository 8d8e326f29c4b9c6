"""channels-server: an ASGI HTTP/1.1 and WebSocket server for Django Channels.

Run it with ``channels-server myproject.asgi:application`` (daphne's flags
work unchanged), or from Python::

    from channels_server import Config, Server

    server = Server(application, Config(endpoints=("tcp:port=8000:interface=127.0.0.1",)))
    await server.serve()

Add ``"channels_server"`` to ``INSTALLED_APPS`` and ``manage.py runserver``
serves ``ASGI_APPLICATION`` with it. Neither Django nor channels-core is
needed to serve a bare ASGI application (``pip install
'channels-server[django]'`` brings them).
"""

from __future__ import annotations

from importlib import import_module as _import_module

try:
    # With channels-core installed, its check refuses a folder that Django
    # Channels has also written into (MixedInstallationError). The server
    # itself needs neither channels-core nor Django: it serves any ASGI app.
    _import_module("channels._installation")
except ModuleNotFoundError as exc:
    if exc.name not in ("channels", "channels._installation"):
        raise

from .config import Config, Endpoint, parse_endpoint
from .errors import (
    ApplicationError,
    ClientDisconnected,
    ConfigurationError,
    HTTPProtocolError,
    LifespanFailure,
    ProtocolError,
    ServerError,
)
from .server import Server, run

__all__ = [
    "ApplicationError",
    "ClientDisconnected",
    "Config",
    "ConfigurationError",
    "Endpoint",
    "HTTPProtocolError",
    "LifespanFailure",
    "ProtocolError",
    "Server",
    "ServerError",
    "__version__",
    "parse_endpoint",
    "run",
]

__version__ = "0.2.0"
