"""Logging: the access log, and the command line's logging setup.

Everything but the command line's access log goes through the standard
library: the server logs to ``channels_server`` (errors, warnings,
lifecycle). The access log has one entry per HTTP request and per WebSocket
connecting, connect, reject and disconnect, naming the scope's ``client``
(with ``--proxy-headers``, the address a trusted proxy forwarded). It goes
one of two ways:

* :class:`StreamAccessLog` writes lines to a text stream in the NCSA-like
  format of daphne's access log: the command line does this, to standard
  output by default, as daphne does::

      127.0.0.1:51234 - - [12/May/2026:10:01:02] "GET /path?q=1" 200 1312
      127.0.0.1:51236 - - [12/May/2026:10:01:03] "WSCONNECT /ws/chat/" - -

  (local time; ``-`` for a missing status and an empty body, as daphne). A
  log record costs about ten microseconds, a sizeable part of a small
  request, so these lines are written directly, and the stream is flushed
  once per turn of the event loop rather than once per line.

* :class:`AccessLogger` makes a record on the ``channels_server.access``
  logger at INFO (what :class:`~channels_server.server.Server` does unless
  told otherwise; ``manage.py runserver`` uses ``django.server``), in the
  Common Log Format with the HTTP version, the zone and the duration in
  seconds::

      127.0.0.1:51234 - - [12/May/2026:10:01:02 +0000] "GET /path?q=1 HTTP/1.1" 200 1312 0.004

  Each record also carries the fields as attributes (``client``,
  ``request``, ``status``, ``size``, ``duration``) for structured
  formatters. Nothing is formatted when the logger is disabled for INFO.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from typing import IO

__all__ = [
    "ACCESS_LOGGER_NAME",
    "AccessLogger",
    "StreamAccessLog",
    "configure_logging",
    "open_access_log",
]

ACCESS_LOGGER_NAME = "channels_server.access"
DEFAULT_LOG_FORMAT = "%(asctime)-15s %(levelname)-8s %(message)s"

_VERBOSITY_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}

#: A scope's ``client``: [host, port] (a tuple is accepted too), or None.
Address = Sequence[object] | None


def _client_text(client: Address) -> str:
    if not client:
        return "-"
    host, port = client[0], client[1]
    # daphne writes "host:port"; an IPv6 host is bracketed so that the port
    # can still be told from the address.
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


class _LogDate:
    # strftime costs a few microseconds and the text changes once a second;
    # every request is logged in bench/server.py's rows (-v 1: the access log is on).
    __slots__ = ("pattern", "second", "text")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.second = -1
        self.text = ""

    def get(self) -> str:
        now = time.time()
        second = int(now)
        if second != self.second:
            self.second = second
            self.text = time.strftime(self.pattern, time.localtime(now))
        return self.text


class AccessLogger:
    """Writes access-log records to a logger (``channels_server.access`` by default)."""

    __slots__ = ("_date", "logger")

    # How an HTTP request is written: with its HTTP version, and "0" for no
    # body (daphne's stream lines, below, have neither).
    _WITH_HTTP_VERSION = True
    _NO_BODY = "0"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(ACCESS_LOGGER_NAME)
        self._date = _LogDate("%d/%b/%Y:%H:%M:%S %z")

    @property
    def enabled(self) -> bool:
        """Whether an entry would be written (callers skip gathering the fields otherwise)."""
        return self.logger.isEnabledFor(logging.INFO)

    def http(
        self,
        client: Address,
        method: str,
        target: bytes,
        http_version: str,
        status: int | None,
        size: int,
        duration: float,
    ) -> None:
        """One HTTP request; *status* None means no response was sent."""
        if not self.enabled:
            return
        request = f"{method} {target.decode('ascii', 'replace')}"
        if self._WITH_HTTP_VERSION:
            request += f" HTTP/{http_version}"
        status_text = "-" if status is None else str(status)
        self._record(client, request, status_text, str(size) if size else self._NO_BODY, duration)

    def websocket(self, action: str, client: Address, path: str, duration: float) -> None:
        """One WebSocket event: WSCONNECTING, WSCONNECT, WSREJECT or WSDISCONNECT."""
        if self.enabled:
            self._record(client, f"{action} {path}", "-", "-", duration)

    def flush(self) -> None:
        """Write what is held back (records are not: the logging handlers decide)."""

    def _record(
        self, client: Address, request: str, status: str, size: str, duration: float
    ) -> None:
        client_text = _client_text(client)
        self.logger.info(
            '%s - - [%s] "%s" %s %s %.3f',
            client_text,
            self._date.get(),
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


class StreamAccessLog(AccessLogger):
    """Writes daphne's access-log lines straight to a text stream (``--access-log``).

    :param stream: where the lines go (standard output, or a file opened for appending).

    The lines of one turn of the event loop are written together, with one
    flush, at the end of that turn: one system call for many requests
    under load (whatever the stream's own buffering, which
    ``PYTHONUNBUFFERED`` turns off), and still out before the server waits
    for the network again. A stream that fails (a closed pipe) is given up
    with one warning: the requests go on being served.
    """

    __slots__ = ("_lines", "stream")

    _WITH_HTTP_VERSION = False
    _NO_BODY = "-"

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        # daphne's date: local time, no zone.
        self._date = _LogDate("%d/%b/%Y:%H:%M:%S")
        self.stream: IO[str] | None = stream
        self._lines: list[str] = []

    @property
    def enabled(self) -> bool:
        return self.stream is not None

    def _record(
        self, client: Address, request: str, status: str, size: str, duration: float
    ) -> None:
        lines = self._lines
        if not lines:
            asyncio.get_running_loop().call_soon(self.flush)
        lines.append(
            f'{_client_text(client)} - - [{self._date.get()}] "{request}" {status} {size}\n'
        )

    def flush(self) -> None:
        """Write the lines not written yet (the server calls this last when it stops)."""
        lines = self._lines
        stream = self.stream
        if not lines or stream is None:
            return
        text = "".join(lines)
        lines.clear()
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError) as error:
            self.stream = None
            logging.getLogger("channels_server").warning(
                "Access log stream failed (%s); no more access-log lines will be written", error
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


def open_access_log(access_log: str | None, verbosity: int) -> IO[str] | None:
    """Where the command line writes its access log, by daphne's rule.

    ``--access-log -`` is standard output and any other value a file opened
    for appending; without the flag, standard output at verbosity 1 or more
    and no access log at verbosity 0.
    """
    if access_log:
        if access_log == "-":
            return sys.stdout
        return open(access_log, "a", encoding="utf-8")
    if verbosity >= 1:
        return sys.stdout
    return None
