"""Checks on where a WebSocket comes from (cross-site WebSocket hijacking).

A browser sends the user's cookies with a WebSocket handshake to your site
whichever page opened it, so any site could open a socket that is logged in
as your user. The browser also sends an ``Origin`` header naming the page's
origin, which that page cannot forge (RFC 6455 section 10.2). The
middleware here refuse handshakes from origins you do not allow:

* :class:`OriginValidator` with an explicit list of allowed origins;
* :class:`AllowedHostsOriginValidator` with Django's ``ALLOWED_HOSTS``;
* :class:`WebsocketDenier`, the application that refuses a handshake.

A refused handshake never reaches the wrapped application. It is closed
before being accepted, which servers answer with HTTP 403; when the server
offers the ``websocket.http.response`` extension, a 403 response is sent
through it instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import ParseResult, urlparse

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.http import is_same_domain

from ..asgi_types import (
    ASGIApplication,
    Receive,
    Scope,
    Send,
    WebSocketHTTPResponseBodyEvent,
    WebSocketHTTPResponseStartEvent,
    _as_message,
)
from ..generic.websocket import AsyncWebsocketConsumer

__all__ = ["AllowedHostsOriginValidator", "OriginValidator", "WebsocketDenier"]

logger = logging.getLogger("channels.security.websocket")

# The ports browsers leave out of an Origin (RFC 6454 section 4, via the
# URL scheme's default port).
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}

# A host: an IP literal in brackets, or an RFC 3986 reg-name (IPv4
# addresses included) without percent-encoding of its own.
_HOST = r"(?P<host>\[[0-9a-f:.]+\]|[a-z0-9\-._~!$&'()*+,;=%]+)"
_PORT = r"(?::(?P<port>[0-9]{1,5}))?"
_SCHEME = r"(?P<scheme>[a-z][a-z0-9+.\-]*)"
# RFC 6454 section 6.2: a serialised origin is scheme "://" host [":" port],
# nothing more (no user info, path, query or fragment).
_ORIGIN = re.compile(_SCHEME + "://" + _HOST + _PORT + r"\Z")
# An allowed origin: the same, or a host (with an optional port) alone.
_PATTERN = re.compile("(?:" + _SCHEME + "://)?" + _HOST + _PORT + r"\Z")

# When DEBUG is on and ALLOWED_HOSTS is empty, Django accepts these hosts
# (and subdomains of localhost); so do we.
_DEBUG_HOSTS = (".localhost", "127.0.0.1", "[::1]")


def _parse_origin(value: bytes) -> ParseResult | None:
    """The origin in an ``Origin`` header value, or ``None`` if it names none.

    ``None`` stands for the opaque origin ``null`` and anything that is not a
    serialised origin (RFC 6454 section 6.2: scheme, host and optional port,
    nothing more), including values that are not ASCII (hosts are sent in
    their IDNA A-label form).
    """
    try:
        text = value.decode("ascii").strip(" \t").lower()
    except UnicodeDecodeError:
        return None
    match = _ORIGIN.match(text)
    if match is None or _port(match["port"], match["scheme"]) == -1 or not _host(match["host"]):
        return None
    return urlparse(text)


def _port(digits: str | None, scheme: str | None) -> int | None:
    """The explicit port, the scheme's default, ``None`` if neither, ``-1`` if invalid."""
    if digits is None:
        return None if scheme is None else _DEFAULT_PORTS.get(scheme)
    number = int(digits)
    return number if number <= 65535 else -1


def _host(host: str) -> str:
    # "example.com." and "example.com" are the same host (an absolute DNS
    # name); Django's host validation strips the dot too.
    if host.endswith(".") and not host.startswith("["):
        return host[:-1]
    return host


def _origin_host(parsed_origin: ParseResult) -> str:
    """The host of a parsed origin as allowed-origin entries write it (IPv6 in brackets)."""
    hostname = parsed_origin.hostname or ""
    if ":" in hostname:
        return f"[{hostname}]"
    return _host(hostname)


@dataclass(frozen=True)
class _OriginPattern:
    """One entry of an allowed-origins list, parsed."""

    text: str
    any_origin: bool = False
    scheme: str | None = None
    host: str = ""
    #: The port written in the entry, if any.
    port: int | None = None
    #: The entry as ``urlparse()`` reads it, when it has a scheme.
    parsed: ParseResult | None = None


def _parse_pattern(pattern: str) -> _OriginPattern:
    """Parse one allowed origin; ``ValueError`` for one that can match nothing."""
    if pattern == "*":
        return _OriginPattern(pattern, any_origin=True)
    try:
        pattern.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(
            f"Allowed origin {pattern!r} is not ASCII: write internationalised domain names "
            "in their 'xn--' form, as browsers send them"
        ) from None
    match = _PATTERN.match(pattern.strip().lower())
    if match is None:
        raise ValueError(
            f"Allowed origin {pattern!r} is not valid: use '*', a domain such as "
            "'example.com' or '.example.com' (with subdomains), or an origin such as "
            "'https://example.com:8443'"
        )
    if _port(match["port"], match["scheme"]) == -1:
        raise ValueError(f"Allowed origin {pattern!r} has a port above 65535")
    scheme = match["scheme"]
    return _OriginPattern(
        pattern,
        scheme=scheme,
        host=_host(match["host"]),
        port=None if match["port"] is None else int(match["port"]),
        parsed=None if scheme is None else urlparse(pattern.strip().lower()),
    )


def _parse_patterns(allowed_origins: object) -> tuple[_OriginPattern, ...]:
    if isinstance(allowed_origins, (str, bytes)) or not isinstance(allowed_origins, Iterable):
        raise TypeError(
            "allowed_origins must be a list of str such as ['https://example.com'], "
            f"not {type(allowed_origins).__name__}"
        )
    patterns = []
    for pattern in allowed_origins:
        if not isinstance(pattern, str):
            raise TypeError(f"Each allowed origin must be a str, not {pattern!r}")
        patterns.append(_parse_pattern(pattern))
    return tuple(patterns)


class WebsocketDenier(AsyncWebsocketConsumer):
    """A WebSocket application that refuses every handshake with HTTP 403.

    Use an instance as an ASGI application (``WebsocketDenier()``) or
    ``WebsocketDenier.as_asgi()`` in a router. It never accepts: it answers
    ``websocket.connect`` with ``websocket.close``, which servers turn into a
    403 response, or, when the scope offers the ``websocket.http.response``
    extension, with a real 403 response through it. It uses no channel
    layer, so refusing a connection costs nothing but the reply.
    """

    #: The body of the 403 response sent through the denial-response extension.
    response_body = b"403 Forbidden\n"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "websocket":
            raise ValueError(
                f"WebsocketDenier only handles WebSocket connections, not {scope.get('type')!r}"
            )
        self.scope = scope
        self.base_send = send
        self.channel_layer = None
        # Nothing can follow a refused handshake, so the first event is the
        # only one to wait for (a websocket.disconnect means the client left).
        message = await receive()
        if message.get("type") == "websocket.connect":
            await self.connect()

    async def connect(self) -> None:
        await self.deny()

    async def deny(self) -> None:
        """Refuse the handshake (before any ``websocket.accept``)."""
        extensions = self.scope.get("extensions") or {}
        if "websocket.http.response" not in extensions:
            # ASGI www spec, "Close": before the accept, this is a 403.
            await self.close()
            return
        start: WebSocketHTTPResponseStartEvent = {
            "type": "websocket.http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(self.response_body)).encode("ascii")),
            ],
        }
        await self.base_send(_as_message(start))
        body: WebSocketHTTPResponseBodyEvent = {
            "type": "websocket.http.response.body",
            "body": self.response_body,
        }
        await self.base_send(_as_message(body))


class OriginValidator:
    """Lets a WebSocket through only if its ``Origin`` header is allowed.

    :param application: the application to protect.
    :param allowed_origins: a list of what to allow, each one of:

        * ``"*"``: any origin, and a missing or malformed ``Origin`` too;
        * a domain, ``"example.com"``: that host, with any scheme and port
          (or, written ``"example.com:8000"``, with that port);
        * a domain with a leading dot, ``".example.com"``: that domain and all
          its subdomains;
        * an origin, ``"https://example.com"`` or ``"http://example.com:8000"``:
          that scheme, host (a leading dot works here too) and port (the
          scheme's default when left out).

    Without ``"*"``, a missing ``Origin``, the opaque origin ``null``, several
    ``Origin`` headers and a malformed or non-ASCII one are all refused.
    Refused handshakes go to :class:`WebsocketDenier` and never reach
    *application*. Only ``websocket`` scopes are accepted (``ValueError``
    otherwise).

    The decision is made by methods a subclass may override, called in this
    order: :meth:`valid_origin` with the parsed origin (or ``None``), which
    calls :meth:`validate_origin`, which calls :meth:`match_allowed_origin`
    for each allowed origin, which calls :meth:`get_origin_port`.

    :raises TypeError: if *allowed_origins* is not a list of ``str``.
    :raises ValueError: for an entry that is not one of the forms above.
    """

    def __init__(self, application: ASGIApplication, allowed_origins: Sequence[str]) -> None:
        _parse_patterns(allowed_origins)
        #: The wrapped application.
        self.application = application
        #: The allowed origins, as given.
        self.allowed_origins: list[str] = list(allowed_origins)

    @property
    def inner(self) -> ASGIApplication:
        """The wrapped application (the name other middleware uses)."""
        return self.application

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") != "websocket":
            raise ValueError(
                f"OriginValidator only handles WebSocket connections, not {scope.get('type')!r} "
                "ones: put it under the 'websocket' key of ProtocolTypeRouter"
            )
        values = [
            bytes(value)
            for name, value in scope.get("headers") or ()
            if bytes(name).lower() == b"origin"
        ]
        # RFC 6454 section 7.3: a user agent sends at most one Origin header.
        parsed_origin = _parse_origin(values[0]) if len(values) == 1 else None
        if self.valid_origin(parsed_origin):
            return await self.application(scope, receive, send)
        logger.warning(
            "Refused a WebSocket handshake to %r: its Origin is not allowed (%r)",
            scope.get("path"),
            # Cut short: the header is the client's to make as long as it likes.
            [value[:200] for value in values],
        )
        return await WebsocketDenier()(scope, receive, send)

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        """Whether a handshake from *parsed_origin* may go through.

        *parsed_origin* is the ``Origin`` header as ``urllib.parse.urlparse()``
        reads it, or ``None`` when there is no usable one (missing, ``null``,
        several, malformed), which only ``"*"`` allows.
        """
        if parsed_origin is None and "*" not in self.allowed_origins:
            return False
        return self.validate_origin(parsed_origin)

    def validate_origin(self, parsed_origin: ParseResult | None) -> bool:
        """True if any allowed origin matches (:meth:`match_allowed_origin`), or is ``"*"``."""
        return any(
            pattern == "*" or self.match_allowed_origin(parsed_origin, pattern)
            for pattern in self.allowed_origins
        )

    def match_allowed_origin(self, parsed_origin: ParseResult | None, pattern: str) -> bool:
        """Whether *parsed_origin* matches one allowed origin, *pattern*.

        Hosts are compared as Django compares ``ALLOWED_HOSTS`` entries (a
        leading dot matches subdomains); schemes and ports only when the
        pattern names them, ports through :meth:`get_origin_port`.
        """
        if parsed_origin is None:
            return False
        allowed = _parse_pattern(pattern)
        if allowed.any_origin:
            return True
        host = _origin_host(parsed_origin)
        if not host:
            return False
        if allowed.parsed is None:
            # A domain alone: any scheme, and any port unless it names one.
            if allowed.port is not None and self.get_origin_port(parsed_origin) != allowed.port:
                return False
            return is_same_domain(host, allowed.host)
        return (
            parsed_origin.scheme == allowed.scheme
            and self.get_origin_port(parsed_origin) == self.get_origin_port(allowed.parsed)
            and is_same_domain(host, allowed.host)
        )

    def get_origin_port(self, origin: ParseResult) -> int | None:
        """The port of a parsed origin: its own, else its scheme's default, else ``None``."""
        if origin.port is not None:
            return origin.port
        return _DEFAULT_PORTS.get(origin.scheme)


class AllowedHostsOriginValidator(OriginValidator):
    """An :class:`OriginValidator` that allows the hosts in ``ALLOWED_HOSTS``.

    Entries are read as domains (``".example.com"``, ``"*"``), at each
    connection, so changes to the setting apply at once. When ``DEBUG`` is on
    and ``ALLOWED_HOSTS`` is empty, local origins are allowed as Django allows
    local hosts: ``localhost`` (and its subdomains), ``127.0.0.1`` and ``[::1]``.

    :raises django.core.exceptions.ImproperlyConfigured: at connection time,
        if an ``ALLOWED_HOSTS`` entry cannot be read as a domain.
    """

    def __init__(self, application: ASGIApplication) -> None:
        self.application = application

    @property
    def allowed_origins(self) -> list[str]:  # type: ignore[override]
        """What ``ALLOWED_HOSTS`` (and ``DEBUG``) allow now."""
        hosts = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not hosts:
            return list(_DEBUG_HOSTS)
        return hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        try:
            _parse_patterns(self.allowed_origins)
        except (TypeError, ValueError) as exc:
            raise ImproperlyConfigured(f"ALLOWED_HOSTS cannot be used for origins: {exc}") from exc
        return await super().__call__(scope, receive, send)
