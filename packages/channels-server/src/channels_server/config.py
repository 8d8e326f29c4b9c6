"""Server settings: one frozen dataclass, with daphne's defaults.

:class:`Config` is what the command line, ``manage.py runserver`` and
``ChannelsLiveServerTestCase`` build, and what every part of the server
reads. Values are checked when the object is made, so a bad flag is a
:class:`~channels_server.errors.ConfigurationError` naming the flag's
setting before any socket is opened.

Endpoints are described with the strings daphne took from Twisted::

    tcp:port=8000:interface=127.0.0.1     (also tcp:8000, tcp6:..., with \\: for colons)
    unix:/run/app.sock                    (also unix:path=/run/app.sock:mode=660)
    fd:fileno=0                           (also fd:0)
    ssl:443:privateKey=key.pem:certKey=crt.pem   (Twisted's TLS endpoint, with interface=,
                                          extraCertChain= and dhParameters=)

Files named in TLS settings are not opened here: ``transport/tls.py`` loads
them when the server starts, and names the file that fails.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Literal

from .errors import ConfigurationError

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "Config",
    "Endpoint",
    "TLSSettings",
    "TrustedPeers",
    "parse_endpoint",
    "tcp_endpoint_description",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000

_MiB = 1024 * 1024

EndpointKind = Literal["tcp", "unix", "fd"]


@dataclass(frozen=True)
class TLSSettings:
    """One endpoint's TLS: from an ``ssl:`` description or the ``--ssl-*`` flags."""

    #: PEM certificate, or chain (Twisted's ``certKey``, which defaults to ``privateKey``).
    certfile: str
    #: PEM private key (Twisted's ``privateKey``); None when it is in *certfile*.
    keyfile: str | None = None
    #: The private key's password (``--ssl-keyfile-password``).
    password: str | None = field(default=None, repr=False)
    #: CA certificates to verify client certificates against (``--ssl-ca-certs``).
    ca_certs: str | None = None
    #: ``ssl.CERT_NONE`` (0), ``CERT_OPTIONAL`` (1) or ``CERT_REQUIRED`` (2): whether
    #: a client certificate is asked for, and whether it is required.
    cert_reqs: int = 0
    #: OpenSSL cipher list (``--ssl-ciphers``); None for Python's defaults.
    ciphers: str | None = None
    #: Intermediate certificates sent after *certfile* (Twisted's ``extraCertChain``).
    extra_cert_chain: str | None = None
    #: Diffie-Hellman parameters (Twisted's ``dhParameters``).
    dh_params: str | None = None

    def __post_init__(self) -> None:
        for name in ("certfile", "keyfile", "ca_certs", "extra_cert_chain", "dh_params"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigurationError(f"TLS {name} must be a file path, not {value!r}")
        if self.cert_reqs not in (0, 1, 2) or isinstance(self.cert_reqs, bool):
            raise ConfigurationError(
                "ssl_cert_reqs must be 0 (no client certificate), 1 (optional) or "
                f"2 (required), not {self.cert_reqs!r}"
            )
        if self.cert_reqs and self.ca_certs is None:
            raise ConfigurationError(
                "client certificates (ssl_cert_reqs 1 or 2) need ssl_ca_certs, the CAs "
                "to verify them against"
            )


@dataclass(frozen=True)
class Endpoint:
    """One place to listen: a TCP address, a unix socket path or an inherited descriptor."""

    kind: EndpointKind
    host: str | None = None
    port: int | None = None
    path: str | None = None
    fileno: int | None = None
    #: Permissions for a unix socket file (``unix:...:mode=660``), or None to keep the umask's.
    mode: int | None = None
    backlog: int | None = None
    #: TLS for connections to this endpoint, or None for plain TCP.
    tls: TLSSettings | None = None

    def describe(self) -> str:
        """The endpoint in the description syntax it was parsed from."""
        if self.kind == "tcp":
            host = (self.host or "").replace(":", "\\:")
            kind = "ssl" if self.tls is not None else "tcp"
            return f"{kind}:port={self.port}:interface={host}"
        if self.kind == "unix":
            return f"unix:{self.path}"
        return f"fd:fileno={self.fileno}"


def _split_description(description: str) -> list[str]:
    # Twisted's syntax: fields separated by ":", a backslash escapes the next
    # character (IPv6 interfaces are written "\:\:1").
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in description:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        raise ConfigurationError(
            f"endpoint description {description!r} ends with an unfinished backslash escape"
        )
    parts.append("".join(current))
    return parts


def _as_int(description: str, name: str, value: str, *, base: int = 10) -> int:
    try:
        return int(value, base)
    except ValueError:
        raise ConfigurationError(
            f"endpoint description {description!r}: {name} must be an integer, not {value!r}"
        ) from None


def parse_endpoint(description: str) -> Endpoint:
    """Parse one endpoint description (``tcp:``, ``tcp6:``, ``ssl:``, ``unix:`` or ``fd:``)."""
    if not isinstance(description, str) or not description:
        raise ConfigurationError(
            f"endpoint description must be a non-empty str, not {description!r}"
        )
    kind, *fields = _split_description(description)
    positional: list[str] = []
    options: dict[str, str] = {}
    for item in fields:
        name, sep, value = item.partition("=")
        if sep:
            options[name] = value
        else:
            positional.append(item)

    def take(name: str, index: int) -> str | None:
        if name in options:
            return options.pop(name)
        if len(positional) > index:
            return positional[index]
        return None

    backlog_text = options.pop("backlog", None)
    backlog = None if backlog_text is None else _as_int(description, "backlog", backlog_text)
    endpoint: Endpoint
    if kind == "ssl":
        # Twisted's TLS endpoint: a TCP endpoint with a certificate and key.
        # sslmethod names a protocol version (TLS 1.2 is the least accepted
        # here whatever it says); it is taken so Daphne command lines work.
        options.pop("sslmethod", None)
        private_key = options.pop("privateKey", None)
        cert_key = options.pop("certKey", None) or private_key
        if cert_key is None:
            raise ConfigurationError(
                f"endpoint description {description!r} needs privateKey= (and certKey= "
                "when the certificate is in another file)"
            )
        tls: TLSSettings | None = TLSSettings(
            certfile=cert_key,
            keyfile=private_key if private_key != cert_key else None,
            extra_cert_chain=options.pop("extraCertChain", None),
            dh_params=options.pop("dhParameters", None),
        )
        kind = "tcp"
    else:
        tls = None
    if kind in ("tcp", "tcp6"):
        port_text = take("port", 0)
        if port_text is None:
            raise ConfigurationError(f"endpoint description {description!r} has no port")
        port = _as_int(description, "port", port_text)
        if not 0 <= port <= 65535:
            raise ConfigurationError(
                f"endpoint description {description!r}: port must be 0-65535, not {port}"
            )
        host = take("interface", 1) or ("::" if kind == "tcp6" else "0.0.0.0")
        endpoint = Endpoint("tcp", host=host, port=port, backlog=backlog, tls=tls)
        used = 2
    elif kind == "unix":
        path = options.pop("path", None) or take("address", 0)
        if not path:
            raise ConfigurationError(f"endpoint description {description!r} has no socket path")
        mode_text = options.pop("mode", None)
        mode = None if mode_text is None else _as_int(description, "mode", mode_text, base=8)
        options.pop("lockfile", None)  # Twisted's advisory lock: nothing to do here.
        endpoint = Endpoint("unix", path=path, mode=mode, backlog=backlog)
        used = 1
    elif kind == "fd":
        fileno_text = take("fileno", 0)
        if fileno_text is None:
            raise ConfigurationError(f"endpoint description {description!r} has no fileno")
        fileno = _as_int(description, "fileno", fileno_text)
        if fileno < 0:
            raise ConfigurationError(
                f"endpoint description {description!r}: fileno must not be negative"
            )
        options.pop("domain", None)  # The socket knows its own family.
        endpoint = Endpoint("fd", fileno=fileno, backlog=backlog)
        used = 1
    else:
        raise ConfigurationError(
            f"endpoint description {description!r}: unknown kind {kind!r} "
            "(expected tcp:, tcp6:, ssl:, unix: or fd:)"
        )
    if options or len(positional) > used:
        extra = sorted(options) + positional[used:]
        raise ConfigurationError(f"endpoint description {description!r}: unexpected {extra!r}")
    return endpoint


def tcp_endpoint_description(host: str, port: int) -> str:
    """The description of a TCP endpoint, escaping the colons of an IPv6 host."""
    host = host.strip("[]")
    return f"tcp:port={port}:interface={host.replace(':', chr(92) + ':')}"


class TrustedPeers:
    """The peers whose forwarded headers are believed (``--forwarded-allow-ips``).

    Entries are addresses, networks in CIDR notation, or ``*`` for every peer.
    Connections over a unix socket come from the local proxy and are always
    trusted.
    """

    __slots__ = ("_addresses", "_any", "_networks")

    def __init__(self, entries: tuple[str, ...]) -> None:
        self._any = False
        self._addresses: set[str] = set()
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            entry = entry.strip()
            if entry == "*":
                self._any = True
                continue
            try:
                if "/" in entry:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                else:
                    self._addresses.add(str(ipaddress.ip_address(entry)))
            except ValueError:
                raise ConfigurationError(
                    f"forwarded_allow_ips: {entry!r} is not an IP address, a network "
                    "such as 10.0.0.0/8, or '*'"
                ) from None
        self._networks = tuple(networks)

    def __contains__(self, host: object) -> bool:
        if self._any:
            return True
        if not isinstance(host, str):
            return False
        if host in self._addresses:
            return True
        if not self._networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)


def _positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a number, not {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigurationError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, not {value!r}")


@dataclass(frozen=True)
class Config:
    """Every setting of the server. The defaults are daphne's where daphne had the setting.

    Times are in seconds; sizes in bytes.
    """

    #: Where to listen, as endpoint descriptions (see the module docstring).
    endpoints: tuple[str, ...] = (f"tcp:port={DEFAULT_PORT}:interface={DEFAULT_HOST}",)
    #: How long an HTTP application may take to start its response before the
    #: client gets 503 (daphne's ``--http-timeout``); None for no limit.
    http_timeout: float | None = None
    #: Largest ``http.request`` message body handed to the application; a
    #: longer request body arrives in several messages (daphne's ``request_buffer_size``).
    request_buffer_size: int = 8192
    #: Seconds without a message either way before the server pings a
    #: WebSocket, and between pings while it stays idle.
    ping_interval: float = 20
    #: Seconds a ping may go unanswered (no frame at all) before the connection is dropped.
    ping_timeout: float = 30
    #: The longest a WebSocket may stay open, from its handshake, whatever the
    #: ping interval; None for no limit (daphne's -1).
    websocket_timeout: float | None = 86400
    #: How long the application has to accept or reject a WebSocket handshake.
    websocket_connect_timeout: float = 5
    #: Largest WebSocket message (all its fragments together), closed with 1009 above it.
    websocket_max_message_size: int = _MiB
    #: Largest single WebSocket frame, closed with 1009 above it.
    websocket_max_frame_size: int = _MiB
    #: How long to wait for the client's close frame after the server sent one.
    websocket_close_timeout: float = 5
    #: Most frames one WebSocket message may arrive in, closed with 1009 above it.
    websocket_max_fragments: int = 4096
    #: How long a client may read none of what the server has queued for it
    #: (over the write buffer's high-water mark, or anything once the
    #: connection is closing) before the connection is dropped.
    write_timeout: float = 60
    #: How long an application may run after its client disconnected before it is cancelled.
    application_close_timeout: float = 10
    #: ``root_path`` of every scope (the mount point, WSGI's SCRIPT_NAME).
    root_path: str = ""
    #: Take the client address and scheme from forwarded headers (from trusted peers only).
    proxy_headers: bool = False
    proxy_headers_host: str = "X-Forwarded-For"
    proxy_headers_port: str = "X-Forwarded-Port"
    proxy_headers_proto: str = "X-Forwarded-Proto"
    #: Peers whose forwarded headers are trusted: addresses, CIDR networks or "*".
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1", "::1")
    #: The Server response header; None to send none.
    server_name: str | None = "channels-server"
    #: Run the ASGI lifespan protocol: "on", "off" or "auto" (on if the application supports it).
    lifespan: Literal["on", "off", "auto"] = "auto"
    #: Longest request line (method, target and version) before 414.
    max_request_line_size: int = 8190
    #: Largest request head (request line and headers) before 431.
    max_header_size: int = 16384
    #: Most request header fields before 431.
    max_header_count: int = 100
    #: How long a client has to send a complete request head once it has started one.
    header_timeout: float = 10
    #: How long an idle keep-alive connection is kept open.
    keep_alive_timeout: float = 75
    #: How long the server waits for the next bytes of a request body it is
    #: reading (not counting time the application leaves the body unread)
    #: before answering 408.
    body_timeout: float = 30
    #: Largest request body in bytes, answered 413 above it; None for no limit.
    limit_request_body: int | None = None
    #: On SIGTERM or SIGINT, how long in-flight HTTP responses have to finish.
    shutdown_timeout: float = 30
    #: listen() backlog of sockets the server binds itself.
    backlog: int = 2048
    #: The most connections served at once; a request on a connection beyond
    #: it is answered 503 (a WebSocket handshake: accepted, then closed with
    #: 1013 Try Again Later). None for no limit. See the Deploying guide.
    limit_concurrency: int | None = None
    #: The event loop: "auto" (uvloop when installed), "asyncio" or "uvloop".
    loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    #: The HTTP/1.1 parser: "auto" (httptools when installed), "h11" or "httptools".
    http: Literal["auto", "h11", "httptools"] = "auto"
    #: HTTP/2 (negotiated by ALPN over TLS, h2c with prior knowledge on plain
    #: TCP): "auto" (when the h2 package is installed), "on" (start fails
    #: without it) or "off".
    http2: Literal["auto", "on", "off"] = "auto"
    #: Most HTTP/2 streams a client may have open at once on one connection.
    http2_max_concurrent_streams: int = 100
    #: Offer permessage-deflate (RFC 7692) to WebSocket clients that ask for it.
    ws_per_message_deflate: bool = True
    #: TLS for every endpoint that is not an ``ssl:`` one (uvicorn's
    #: ``--ssl-*`` flags); all need ``ssl_certfile``.
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = field(default=None, repr=False)
    #: CA certificates to verify client certificates against.
    ssl_ca_certs: str | None = None
    #: 0: no client certificate asked for; 1: optional; 2: required.
    ssl_cert_reqs: int = 0
    #: OpenSSL cipher list; None for Python's defaults.
    ssl_ciphers: str | None = None

    # Derived values, computed once here rather than on every request.
    parsed_endpoints: tuple[Endpoint, ...] = field(init=False, repr=False, compare=False)
    trusted_peers: TrustedPeers = field(init=False, repr=False, compare=False)
    proxy_header_names: tuple[bytes, bytes, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.endpoints, str) or not self.endpoints:  # type: ignore[unreachable]
            raise ConfigurationError(
                "endpoints must be a non-empty tuple of endpoint descriptions, "
                f"not {self.endpoints!r}"
            )
        object.__setattr__(self, "parsed_endpoints", self._endpoints_with_tls())
        for name in ("http_timeout", "websocket_timeout"):
            value = getattr(self, name)
            if value is not None:
                _positive(name, value)
        for name in (
            "ping_interval",
            "ping_timeout",
            "websocket_connect_timeout",
            "websocket_close_timeout",
            "application_close_timeout",
            "header_timeout",
            "keep_alive_timeout",
            "write_timeout",
            "body_timeout",
        ):
            _positive(name, getattr(self, name))
        _positive("shutdown_timeout", self.shutdown_timeout, allow_zero=True)
        for name in (
            "request_buffer_size",
            "websocket_max_message_size",
            "websocket_max_frame_size",
            "websocket_max_fragments",
            "max_request_line_size",
            "max_header_size",
            "max_header_count",
            "backlog",
            "http2_max_concurrent_streams",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive int, not {value!r}")
        if self.limit_concurrency is not None and (
            isinstance(self.limit_concurrency, bool)
            or not isinstance(self.limit_concurrency, int)
            or self.limit_concurrency <= 0
        ):
            raise ConfigurationError(
                f"limit_concurrency must be a positive int or None, not {self.limit_concurrency!r}"
            )
        if self.limit_request_body is not None and (
            isinstance(self.limit_request_body, bool)
            or not isinstance(self.limit_request_body, int)
            or self.limit_request_body < 0
        ):
            raise ConfigurationError(
                f"limit_request_body must be an int >= 0 or None, not {self.limit_request_body!r}"
            )
        if self.max_request_line_size > self.max_header_size:
            raise ConfigurationError(
                f"max_request_line_size ({self.max_request_line_size}) cannot exceed "
                f"max_header_size ({self.max_header_size}), which includes the request line"
            )
        if self.lifespan not in ("on", "off", "auto"):
            raise ConfigurationError(
                f"lifespan must be 'on', 'off' or 'auto', not {self.lifespan!r}"
            )
        if self.http2 not in ("auto", "on", "off"):
            raise ConfigurationError(f"http2 must be 'auto', 'on' or 'off', not {self.http2!r}")
        if not isinstance(self.ws_per_message_deflate, bool):
            raise ConfigurationError(
                f"ws_per_message_deflate must be a bool, not {self.ws_per_message_deflate!r}"
            )
        if self.http not in ("auto", "h11", "httptools"):
            raise ConfigurationError(
                f"http must be 'auto', 'h11' or 'httptools', not {self.http!r}"
            )
        if self.loop not in ("auto", "asyncio", "uvloop"):
            raise ConfigurationError(
                f"loop must be 'auto', 'asyncio' or 'uvloop', not {self.loop!r}"
            )
        if not isinstance(self.root_path, str) or (
            self.root_path and (not self.root_path.startswith("/") or self.root_path.endswith("/"))
        ):
            raise ConfigurationError(
                f"root_path must be '' or a path such as '/app' (leading slash, no trailing "
                f"slash), not {self.root_path!r}"
            )
        if self.server_name is not None and (
            not isinstance(self.server_name, str)
            or not self.server_name.isprintable()
            or not self.server_name.isascii()
        ):
            raise ConfigurationError(
                f"server_name must be printable ASCII or None, not {self.server_name!r}"
            )
        names = []
        for setting in ("proxy_headers_host", "proxy_headers_port", "proxy_headers_proto"):
            value = getattr(self, setting)
            if not isinstance(value, str) or not value or not value.isascii() or ":" in value:
                raise ConfigurationError(f"{setting} must be a header name, not {value!r}")
            names.append(value.strip().lower().encode("ascii"))
        object.__setattr__(self, "proxy_header_names", (names[0], names[1], names[2]))
        if isinstance(self.forwarded_allow_ips, str):  # type: ignore[unreachable]
            raise ConfigurationError(
                "forwarded_allow_ips must be a tuple of addresses, not a str "
                f"({self.forwarded_allow_ips!r}); split it on commas first"
            )
        object.__setattr__(self, "trusted_peers", TrustedPeers(tuple(self.forwarded_allow_ips)))

    def _endpoints_with_tls(self) -> tuple[Endpoint, ...]:
        """The parsed endpoints, each non-``ssl:`` one with the ``ssl_*`` settings' TLS."""
        endpoints = tuple(parse_endpoint(text) for text in self.endpoints)
        flags = {
            "ssl_keyfile": self.ssl_keyfile,
            "ssl_keyfile_password": self.ssl_keyfile_password,
            "ssl_ca_certs": self.ssl_ca_certs,
            "ssl_ciphers": self.ssl_ciphers,
        }
        if self.ssl_certfile is None:
            given = [name for name, value in flags.items() if value is not None]
            if self.ssl_cert_reqs:
                given.append("ssl_cert_reqs")
            if given:
                verb = "needs" if len(given) == 1 else "need"
                raise ConfigurationError(f"{', '.join(given)} {verb} ssl_certfile")
            return endpoints
        tls = TLSSettings(
            certfile=self.ssl_certfile,
            keyfile=self.ssl_keyfile,
            password=self.ssl_keyfile_password,
            ca_certs=self.ssl_ca_certs,
            cert_reqs=self.ssl_cert_reqs,
            ciphers=self.ssl_ciphers,
        )
        return tuple(
            endpoint if endpoint.tls is not None else replace(endpoint, tls=tls)
            for endpoint in endpoints
        )
