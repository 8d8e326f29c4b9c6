"""Logging: the access log, and the command line's logging setup.

Everything goes through the standard library. The server logs to
``channels_server`` (errors, warnings, lifecycle) and writes one access-log
record per HTTP request and per WebSocket connect, reject and disconnect to
``channels_server.access`` at INFO, in the Common Log Format daphne used,
followed by the duration in seconds::

    127.0.0.1:51234 - - [12/May/2026:10:01:02 +0000] "GET /path?q=1 HTTP/1.1" 200 1312 0.004
    127.0.0.1:51236 - - [12/May/2026:10:01:03 +0000] "WSCONNECT /ws/chat/" - - 0.001

Each record also carries the fields as attributes (``client``, ``request``,
``status``, ``size``, ``duration``) for structured formatters. Nothing is
formatted when the access logger is disabled for INFO.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO

__all__ = ["ACCESS_LOGGER_NAME", "AccessLogger", "configure_logging"]

ACCESS_LOGGER_NAME = "channels_server.access"
DEFAULT_LOG_FORMAT = "%(asctime)-15s %(levelname)-8s %(message)s"

_VERBOSITY_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}


def _client_text(client: tuple[str, int] | None) -> str:
    if client is None:
        return "-"
    host, port = client
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class AccessLogger:
    """Writes access-log records to the ``channels_server.access`` logger."""

    __slots__ = ("logger",)

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(ACCESS_LOGGER_NAME)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def http(
        self,
        client: tuple[str, int] | None,
        method: str,
        target: bytes,
        http_version: str,
        status: int | None,
        size: int,
        duration: float,
    ) -> None:
        """One HTTP request; *status* None means no response was sent."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        request = f"{method} {target.decode('ascii', 'replace')} HTTP/{http_version}"
        self._write(client, request, "-" if status is None else str(status), str(size), duration)

    def websocket(
        self, action: str, client: tuple[str, int] | None, path: str, duration: float
    ) -> None:
        """One WebSocket event: WSCONNECTING, WSCONNECT, WSREJECT or WSDISCONNECT."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        self._write(client, f"{action} {path}", "-", "-", duration)

    def _write(
        self, client: tuple[str, int] | None, request: str, status: str, size: str, duration: float
    ) -> None:
        client_text = _client_text(client)
        date = time.strftime("%d/%b/%Y:%H:%M:%S %z")
        self.logger.info(
            '%s - - [%s] "%s" %s %s %.3f',
            client_text,
            date,
            request,
            status,
            size,
            duration,
            extra={
                "client": client_text,
                "request": request,
                "status": status,
                # Django's ServerFormatter colours runserver lines by this.
                "status_code": int(status) if status.isdigit() else None,
                "size": size,
                "duration": duration,
            },
        )


def configure_logging(
    verbosity: int = 1,
    log_format: str | None = None,
    access_log: str | None = None,
    *,
    stream: IO[str] | None = None,
) -> list[logging.Handler]:
    """Set up logging for the command line, as daphne did.

    :param verbosity: 0 warnings only, 1 information (the default), 2 or more debug.
    :param log_format: a :mod:`logging` format for the server's own messages.
    :param access_log: a file to append the access log to, ``"-"`` for standard
        output, or None for no access log.
    :returns: the handlers installed, for :func:`logging.Logger.removeHandler`.
    """
    level = _VERBOSITY_LEVELS.get(verbosity, logging.DEBUG if verbosity > 2 else logging.WARNING)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(log_format or DEFAULT_LOG_FORMAT))
    server_logger = logging.getLogger("channels_server")
    server_logger.addHandler(handler)
    server_logger.setLevel(level)
    installed: list[logging.Handler] = [handler]
    access_logger = logging.getLogger(ACCESS_LOGGER_NAME)
    # The access log goes only where --access-log says, never into the server log.
    access_logger.propagate = False
    if access_log is None:
        access_logger.setLevel(logging.CRITICAL + 1)
        return installed
    access_handler: logging.Handler
    if access_log == "-":
        access_handler = logging.StreamHandler(sys.stdout)
    else:
        access_handler = logging.FileHandler(access_log, encoding="utf-8")
    access_handler.setFormatter(logging.Formatter("%(message)s"))
    access_logger.addHandler(access_handler)
    access_logger.setLevel(logging.INFO)
    installed.append(access_handler)
    return installed
