"""Which HTTP versions this server speaks, decided once from the settings.

HTTP/2 needs the optional ``h2`` package (``pip install 'channels-server[http2]'``).
``Config.http2`` says what to do about it: ``"on"`` requires it (the server
does not start without it), ``"auto"`` uses it when it is installed, and
``"off"`` never speaks HTTP/2 (ALPN offers only ``http/1.1`` and the h2c
preface is answered as a malformed HTTP/1.1 request).
"""

from __future__ import annotations

import importlib.util

from ..config import Config
from ..errors import ConfigurationError

__all__ = ["HTTP2_EXTRA", "h2_installed", "http2_enabled"]

#: What to install for HTTP/2, in error messages and the docs.
HTTP2_EXTRA = "pip install 'channels-server[http2]'"


def h2_installed() -> bool:
    """Whether the ``h2`` package can be imported (without importing it)."""
    return importlib.util.find_spec("h2") is not None


def _load_http2() -> bool:
    """Import the HTTP/2 engine (and h2 with it); False if h2 is missing.

    The server calls :func:`http2_enabled` at startup: importing h2, hpack
    and hyperframe then takes about 0.3 s on a slow machine, which would
    otherwise delay the first HTTP/2 connection.
    """
    try:
        from . import http2  # noqa: F401
    except ImportError:
        return False
    return True


def http2_enabled(config: Config) -> bool:
    """Whether the server offers HTTP/2 (ALPN ``h2`` over TLS, h2c prior knowledge on TCP).

    When it does, the HTTP/2 engine is imported here, once (see :func:`_load_http2`).

    Raises :class:`~channels_server.errors.ConfigurationError` for ``http2="on"``
    when ``h2`` is not installed.
    """
    choice = config.http2
    if choice == "off":
        return False
    loaded = _load_http2()
    if choice == "on" and not loaded:
        raise ConfigurationError(f"http2 'on' needs the h2 package: {HTTP2_EXTRA}")
    return loaded
