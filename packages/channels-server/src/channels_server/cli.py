"""The ``channels-server`` command (also ``python -m channels_server``).

It takes daphne's flags, with daphne's defaults, so that a daphne command
line keeps working when ``daphne`` is replaced by ``channels-server``::

    channels-server -b 0.0.0.0 -p 8001 myproject.asgi:application
    channels-server -u /run/app/app.sock --access-log - --proxy-headers myproject.asgi:application

and adds ``--forwarded-allow-ips``, ``--lifespan``, ``--version``, the
request limits and timeouts, and ``--port 0`` (a free port, printed on
standard output).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from . import __version__
from .config import DEFAULT_HOST, DEFAULT_PORT, Config, tcp_endpoint_description
from .errors import ConfigurationError
from .logging import DEFAULT_LOG_FORMAT, configure_logging, open_access_log
from .server import run
from .supervisor import check_arguments, supervise

__all__ = [
    "PROCESS_LOG_FORMAT",
    "build_parser",
    "config_from_arguments",
    "import_application",
    "log_format",
    "main",
    "serve",
]

logger = logging.getLogger("channels_server")

_MiB = 1024 * 1024

#: The default log format with the process id, for --workers and --reload.
PROCESS_LOG_FORMAT = "%(asctime)-15s %(levelname)-8s [%(process)d] %(message)s"


def _websocket_timeout(value: str) -> float | None:
    seconds = float(value)
    # daphne: -1 means no timeout.
    return None if seconds == -1 else seconds


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (daphne's flags first, then the additions)."""
    parser = argparse.ArgumentParser(
        prog="channels-server",
        description="Serve an ASGI application over HTTP/1.1 and WebSocket.",
    )
    parser.add_argument(
        "application",
        help="The application to serve, as path.to.module:instance.path",
    )
    parser.add_argument(
        "-p",
        "--port",
        type=int,
        default=None,
        help="Port number to listen on (0: any free port, printed on start)",
    )
    parser.add_argument(
        "-b", "--bind", dest="host", default=None, help="The host/address to bind to"
    )
    parser.add_argument(
        "-u",
        "--unix-socket",
        dest="unix_socket",
        default=None,
        help="Bind to a UNIX socket rather than a TCP host/port",
    )
    parser.add_argument(
        "--fd",
        type=int,
        dest="file_descriptor",
        default=None,
        help="Bind to a file descriptor rather than a TCP host/port or named socket",
    )
    parser.add_argument(
        "-e",
        "--endpoint",
        dest="socket_strings",
        action="append",
        default=[],
        help="An endpoint description (tcp:, ssl:, unix:, fd:) to listen on; repeatable",
    )
    parser.add_argument(
        "-v", "--verbosity", type=int, default=1, help="How verbose to make the output (0-2)"
    )
    parser.add_argument(
        "-t",
        "--http-timeout",
        type=float,
        default=None,
        help="Seconds the application has to respond before the client gets 503 (default: none)",
    )
    parser.add_argument(
        "--access-log",
        default=None,
        help="Where to write the access log (- for stdout, the default for verbosity 1 or more)",
    )
    parser.add_argument("--log-fmt", default=DEFAULT_LOG_FORMAT, help="Log format to use")
    parser.add_argument(
        "--ping-interval",
        type=float,
        default=20,
        help="Seconds a WebSocket must be idle before a keepalive ping is sent",
    )
    parser.add_argument(
        "--ping-timeout",
        type=float,
        default=30,
        help="Seconds before a WebSocket is closed if no response to a keepalive ping",
    )
    parser.add_argument(
        "--websocket_timeout",
        "--websocket-timeout",
        dest="websocket_timeout",
        type=_websocket_timeout,
        default=86400,
        help="Maximum seconds to allow a WebSocket to be connected; -1 for infinite",
    )
    parser.add_argument(
        "--websocket_connect_timeout",
        "--websocket-connect-timeout",
        dest="websocket_connect_timeout",
        type=float,
        default=5,
        help="Maximum seconds the application may take to accept or reject a WebSocket",
    )
    parser.add_argument(
        "--websocket-max-message-size",
        "--websocket_max_message_size",
        dest="websocket_max_message_size",
        type=int,
        default=_MiB,
        help="Largest WebSocket message in bytes; larger ones close the connection with 1009",
    )
    parser.add_argument(
        "--websocket-max-frame-size",
        "--websocket_max_frame_size",
        dest="websocket_max_frame_size",
        type=int,
        default=_MiB,
        help="Largest WebSocket frame in bytes; larger ones close the connection with 1009",
    )
    parser.add_argument(
        "--websocket-max-fragments",
        type=int,
        default=4096,
        help="Most frames a WebSocket message may arrive in; more close the connection with 1009",
    )
    parser.add_argument(
        "--write-timeout",
        type=float,
        default=60,
        help="Seconds a client may read nothing of a full write buffer before it is dropped",
    )
    parser.add_argument(
        "--application-close-timeout",
        type=float,
        default=10,
        help="Seconds an application may run after its client disconnected before it is cancelled",
    )
    parser.add_argument(
        "--root-path",
        default="",
        help="The setting for the ASGI root_path variable (a mount point such as /app)",
    )
    parser.add_argument(
        "--proxy-headers",
        action="store_true",
        default=False,
        help="Take the client address and scheme from X-Forwarded-For, X-Forwarded-Port and "
        "X-Forwarded-Proto (from the peers of --forwarded-allow-ips only)",
    )
    parser.add_argument(
        "--proxy-headers-host",
        default=None,
        help="Header to take the client address from (with --proxy-headers; X-Forwarded-For)",
    )
    parser.add_argument(
        "--proxy-headers-port",
        default=None,
        help="Header to take the client port from (with --proxy-headers; X-Forwarded-Port)",
    )
    parser.add_argument(
        "-s",
        "--server-name",
        default="channels-server",
        help="Specify which value should be passed to response header Server",
    )
    parser.add_argument(
        "--no-server-name",
        action="store_true",
        default=False,
        help="Send no Server response header",
    )
    # Beyond daphne.
    parser.add_argument(
        "--forwarded-allow-ips",
        default=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1"),
        help="Comma-separated addresses or networks whose forwarded headers are trusted, or * "
        "(default: $FORWARDED_ALLOW_IPS or 127.0.0.1,::1)",
    )
    # Choices whose default, "auto", decides at startup.
    for flag, choices, help_text in (
        (
            "--lifespan",
            ("on", "off", "auto"),
            "Run the ASGI lifespan protocol (auto: when the application supports it)",
        ),
        ("--loop", ("auto", "asyncio", "uvloop"), "Event loop (auto: uvloop when installed)"),
        (
            "--http",
            ("auto", "h11", "httptools"),
            "HTTP/1.1 parser (auto: httptools when installed)",
        ),
    ):
        parser.add_argument(flag, choices=choices, default="auto", help=help_text)
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30,
        help="Seconds in-flight HTTP responses have to finish on SIGTERM/SIGINT",
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        default=10,
        help="Seconds a client has to send a complete request head once it started one",
    )
    parser.add_argument(
        "--keep-alive-timeout",
        type=float,
        default=75,
        help="Seconds an idle keep-alive connection stays open",
    )
    parser.add_argument(
        "--max-request-line",
        type=int,
        default=8190,
        help="Longest request line in bytes (longer: 414)",
    )
    parser.add_argument(
        "--max-header-size",
        type=int,
        default=16384,
        help="Largest request head in bytes (larger: 431)",
    )
    parser.add_argument(
        "--max-header-count", type=int, default=100, help="Most request header fields (more: 431)"
    )
    parser.add_argument(
        "--limit-concurrency",
        type=int,
        default=None,
        help="Most connections served at once; beyond it HTTP requests get 503 and "
        "WebSockets close with 1013 (default: no limit)",
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=30,
        help="Seconds the server waits for more of a request body it is reading (then: 408)",
    )
    parser.add_argument(
        "--limit-request-body",
        type=int,
        default=None,
        help="Largest request body in bytes; larger ones get 413 (default: no limit)",
    )
    _add_tls_and_protocol_arguments(parser)
    _add_process_arguments(parser)
    parser.add_argument("--version", action="version", version=f"channels-server {__version__}")
    return parser


def _on_off(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("on", "true", "1", "yes"):
        return True
    if lowered in ("off", "false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, not {value!r}")


def _add_tls_and_protocol_arguments(parser: argparse.ArgumentParser) -> None:
    """uvicorn's TLS flags (for every endpoint but ssl: ones), HTTP/2 and compression."""
    tls = parser.add_argument_group(
        "TLS", "for the -b/-p, -u, --fd and tcp: endpoints (ssl: endpoints carry their own)"
    )
    tls.add_argument("--ssl-certfile", default=None, help="PEM certificate (or chain) file")
    tls.add_argument(
        "--ssl-keyfile", default=None, help="PEM private key file (if not in --ssl-certfile)"
    )
    tls.add_argument("--ssl-keyfile-password", default=None, help="Password of the private key")
    tls.add_argument(
        "--ssl-ca-certs",
        default=None,
        help="PEM file of the CAs that client certificates must chain to",
    )
    tls.add_argument(
        "--ssl-cert-reqs",
        type=int,
        choices=(0, 1, 2),
        default=0,
        help="Client certificates: 0 not asked for, 1 optional, 2 required (default: 0)",
    )
    tls.add_argument("--ssl-ciphers", default=None, help="OpenSSL cipher list (default: Python's)")
    parser.add_argument(
        "--http2",
        choices=("auto", "on", "off"),
        default="auto",
        help="HTTP/2 by ALPN over TLS and h2c with prior knowledge "
        "(auto: when the h2 package is installed)",
    )
    parser.add_argument(
        "--http2-max-concurrent-streams",
        type=int,
        default=100,
        help="Most HTTP/2 streams open at once per connection (default: 100)",
    )
    parser.add_argument(
        "--ws-per-message-deflate",
        type=_on_off,
        default=True,
        metavar="{on,off}",
        help="Offer permessage-deflate compression to WebSocket clients (default: on)",
    )


def _add_process_arguments(parser: argparse.ArgumentParser) -> None:
    """Worker processes and reloading (channels_server.supervisor)."""
    processes = parser.add_argument_group(
        "Processes", "a supervisor binds the sockets once and runs the servers in child processes"
    )
    processes.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Run N worker processes on the same sockets, under a supervisor that replaces "
        "any that dies; SIGHUP replaces them all without dropping a connection "
        "(default: one process, no supervisor)",
    )
    processes.add_argument(
        "--reload",
        action="store_true",
        default=False,
        help="Restart the server when a watched file changes (development; uses watchfiles "
        "when installed, polling otherwise)",
    )
    processes.add_argument(
        "--reload-dir",
        dest="reload_dirs",
        action="append",
        default=[],
        metavar="DIR",
        help="Folder to watch for --reload; repeatable (default: the current directory)",
    )
    processes.add_argument(
        "--reload-include",
        dest="reload_includes",
        action="append",
        default=[],
        metavar="PATTERN",
        help="Glob of file names (or paths, with a /) that trigger a reload, added to *.py "
        "(and watched even where a default exclude matches); repeatable",
    )
    processes.add_argument(
        "--reload-exclude",
        dest="reload_excludes",
        action="append",
        default=[],
        metavar="PATTERN",
        help="Glob of file or folder names (or paths, with a /) that never trigger a reload, "
        "added to .* *.py[cod] *~ __pycache__ node_modules; repeatable",
    )
    processes.add_argument(
        "--reload-delay",
        type=float,
        default=0.25,
        metavar="SECONDS",
        help="How long files must stay unchanged before the restart (default: 0.25)",
    )


def config_from_arguments(arguments: argparse.Namespace) -> Config:
    """The :class:`~channels_server.config.Config` for parsed command-line arguments.

    Follows daphne: with no endpoint at all, 127.0.0.1:8000; a host without a
    port gets 8000 and a port without a host 127.0.0.1.
    """
    host, port = arguments.host, arguments.port
    if not any(
        [
            host,
            port is not None,
            arguments.unix_socket,
            arguments.file_descriptor is not None,
            arguments.socket_strings,
        ]
    ):
        host, port = DEFAULT_HOST, DEFAULT_PORT
    elif host and port is None:
        port = DEFAULT_PORT
    elif port is not None and not host:
        host = DEFAULT_HOST
    endpoints: list[str] = []
    if host and port is not None:
        endpoints.append(tcp_endpoint_description(host, port))
    if arguments.unix_socket:
        endpoints.append(f"unix:{arguments.unix_socket.replace(':', chr(92) + ':')}")
    if arguments.file_descriptor is not None:
        endpoints.append(f"fd:fileno={arguments.file_descriptor}")
    endpoints.extend(arguments.socket_strings)
    if not arguments.proxy_headers and (
        arguments.proxy_headers_host or arguments.proxy_headers_port
    ):
        raise ConfigurationError(
            "--proxy-headers-host and --proxy-headers-port need --proxy-headers"
        )
    extra: dict[str, Any] = {}
    if arguments.proxy_headers_host:
        extra["proxy_headers_host"] = arguments.proxy_headers_host
    if arguments.proxy_headers_port:
        extra["proxy_headers_port"] = arguments.proxy_headers_port
    return Config(
        endpoints=tuple(endpoints),
        http_timeout=arguments.http_timeout,
        ping_interval=arguments.ping_interval,
        ping_timeout=arguments.ping_timeout,
        websocket_timeout=arguments.websocket_timeout,
        websocket_connect_timeout=arguments.websocket_connect_timeout,
        websocket_max_message_size=arguments.websocket_max_message_size,
        websocket_max_frame_size=arguments.websocket_max_frame_size,
        websocket_max_fragments=arguments.websocket_max_fragments,
        write_timeout=arguments.write_timeout,
        application_close_timeout=arguments.application_close_timeout,
        root_path=arguments.root_path,
        proxy_headers=arguments.proxy_headers,
        forwarded_allow_ips=tuple(
            item.strip() for item in arguments.forwarded_allow_ips.split(",") if item.strip()
        ),
        server_name=None if arguments.no_server_name else arguments.server_name,
        lifespan=arguments.lifespan,
        loop=arguments.loop,
        http=arguments.http,
        shutdown_timeout=arguments.shutdown_timeout,
        header_timeout=arguments.header_timeout,
        keep_alive_timeout=arguments.keep_alive_timeout,
        max_request_line_size=arguments.max_request_line,
        max_header_size=arguments.max_header_size,
        max_header_count=arguments.max_header_count,
        limit_concurrency=arguments.limit_concurrency,
        body_timeout=arguments.body_timeout,
        limit_request_body=arguments.limit_request_body,
        http2=arguments.http2,
        http2_max_concurrent_streams=arguments.http2_max_concurrent_streams,
        ws_per_message_deflate=arguments.ws_per_message_deflate,
        ssl_certfile=arguments.ssl_certfile,
        ssl_keyfile=arguments.ssl_keyfile,
        ssl_keyfile_password=arguments.ssl_keyfile_password,
        ssl_ca_certs=arguments.ssl_ca_certs,
        ssl_cert_reqs=arguments.ssl_cert_reqs,
        ssl_ciphers=arguments.ssl_ciphers,
        **extra,
    )


def import_application(path: str) -> Any:
    """Import ``module.path:attribute.path`` (the current directory is importable, as in daphne)."""
    module_name, sep, attributes = path.partition(":")
    if not sep or not module_name or not attributes:
        raise ConfigurationError(
            f"application must be given as path.to.module:instance.path, not {path!r}"
        )
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, "")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise ConfigurationError(f"Cannot import module {module_name!r}: {exc}") from exc
        raise
    for attribute in attributes.split("."):
        try:
            target = getattr(target, attribute)
        except AttributeError:
            raise ConfigurationError(
                f"Module {module_name!r} has no attribute {attributes!r}"
            ) from None
    if not callable(target):
        raise ConfigurationError(f"{path!r} is not callable, so it is not an ASGI application")
    return target


def log_format(arguments: argparse.Namespace, *, supervised: bool) -> str:
    """The server log's format: with the process id when several processes share the log."""
    if supervised and arguments.log_fmt == DEFAULT_LOG_FORMAT:
        return PROCESS_LOG_FORMAT
    return str(arguments.log_fmt)


def serve(
    arguments: argparse.Namespace,
    config: Config,
    *,
    announce: TextIO | None,
    handover_delay: float = 0.0,
) -> int:
    """Import the application and serve it in this process (a worker does this too)."""
    try:
        application = import_application(arguments.application)
    except ConfigurationError as exc:
        print(f"channels-server: {exc}", file=sys.stderr)
        return 1
    logger.info("Starting channels-server %s on %s", __version__, ", ".join(config.endpoints))
    try:
        access_log = open_access_log(arguments.access_log, arguments.verbosity)
    except OSError as exc:
        print(f"channels-server: cannot open the access log: {exc}", file=sys.stderr)
        return 1
    try:
        return run(
            application,
            config,
            announce=announce,
            access_log_stream=access_log,
            handover_delay=handover_delay,
        )
    finally:
        if access_log is not None and access_log is not sys.stdout:
            access_log.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    cli_arguments = list(sys.argv[1:] if argv is None else argv)
    arguments = parser.parse_args(cli_arguments)
    try:
        config = config_from_arguments(arguments)
        supervised = check_arguments(arguments)
    except ConfigurationError as exc:
        parser.error(str(exc))
    configure_logging(arguments.verbosity, log_format(arguments, supervised=supervised))
    random_port = any(
        endpoint.kind == "tcp" and endpoint.port == 0 for endpoint in config.parsed_endpoints
    )
    announce = sys.stdout if random_port else None
    if supervised:
        return supervise(arguments, config, cli_arguments, announce=announce)
    return serve(arguments, config, announce=announce)
