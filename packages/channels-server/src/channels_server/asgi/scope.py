"""Building the parts of HTTP and WebSocket scopes that come from the request.

The request target is split into ``path`` (percent-decoded, UTF-8),
``raw_path`` and ``query_string`` as the www specification describes. The
client address, scheme and root path can come from a reverse proxy's
headers, but only when the peer is one the server trusts
(``--proxy-headers``, from the peers of ``--forwarded-allow-ips``):
anyone else could write those headers. Each value is validated whole, and a
malformed one is ignored.

On a TLS connection the scheme is ``https`` (``wss``), unless a trusted
proxy's headers say otherwise, and the scope carries the ASGI ``tls``
extension (``../shared/reference/asgi/tls.rst``), which
:class:`~channels_server.transport.tls.ConnectionTLS` builds once per
connection.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import unquote, urlsplit

from ..config import Config
from ..errors import HTTPProtocolError
from ..protocol.http11 import RequestHead

if TYPE_CHECKING:
    from ..transport.tls import ConnectionTLS

__all__ = [
    "ASGI_VERSION",
    "SPEC_VERSION",
    "ForwardedValues",
    "build_scope",
    "decode_method",
    "forwarded_address",
    "forwarded_port",
    "forwarded_root_path",
    "forwarded_values",
    "split_target",
]

#: The ASGI version and the www specification version the server implements
#: (2.5: ``reason`` in websocket.disconnect; 2.4: send() after a disconnect raises).
ASGI_VERSION: Final = "3.0"
SPEC_VERSION: Final = "2.5"


def decode_method(method: bytes) -> str:
    """The method as a str."""
    return method.decode("ascii")


def split_target(target: bytes) -> tuple[str, bytes, bytes]:
    """(path, raw_path, query_string) of a request target.

    Handles the origin form (``/a/b?q``), the absolute form a client sends to
    a proxy (``http://host/a/b?q``) and the asterisk form (``*``, RFC 9112
    §3.2.4). Raises :class:`~channels_server.errors.HTTPProtocolError` (400)
    for anything else.
    """
    if target[:1] == b"/":
        raw_path, _, query = target.partition(b"?")
    elif target == b"*":
        return "*", b"*", b""
    elif b"://" in target:
        parts = urlsplit(target)
        raw_path, query = (parts.path or b"/"), parts.query
    else:
        raise HTTPProtocolError(400, "Invalid request target")
    # h11 admits only visible ASCII in the target, so decoding cannot fail.
    text = raw_path.decode("ascii")
    path = unquote(text) if "%" in text else text
    return path, raw_path, query


class ForwardedValues:
    """What a trusted proxy's headers say about the client."""

    __slots__ = ("client", "root_path", "scheme")

    def __init__(
        self, client: tuple[str, int] | None, scheme: str | None, root_path: str | None
    ) -> None:
        self.client = client
        self.scheme = scheme
        self.root_path = root_path


_ROOT_PATH_HEADER: Final = b"daphne-root-path"
_SCHEMES: Final = {b"http": False, b"https": True, b"ws": False, b"wss": True}
# What a forwarded value may contain: visible ASCII (a header value may also
# hold tabs and bytes above 0x7f, which no address, port or path needs).
_VISIBLE_ASCII = re.compile(rb"[\x21-\x7e]+").fullmatch


def forwarded_address(value: bytes) -> str | None:
    """The address in one ``X-Forwarded-For`` entry, or None if it is not one.

    An IPv4 or IPv6 address (an IPv6 one may be in brackets), normalised.
    """
    text = value.strip()
    if text[:1] == b"[" and text[-1:] == b"]":
        text = text[1:-1]
    if not _VISIBLE_ASCII(text):
        return None
    try:
        return str(ipaddress.ip_address(text.decode("ascii")))
    except ValueError:
        return None


def forwarded_port(value: bytes) -> int | None:
    """The port of ``X-Forwarded-Port`` (1-65535), or None."""
    text = value.strip()
    if not 0 < len(text) <= 5 or not text.isdigit():
        return None
    port = int(text)
    return port if 0 < port <= 65535 else None


def forwarded_root_path(value: bytes) -> str | None:
    """The root path of ``Daphne-Root-Path``, percent-decoded, or None if it is no path.

    Only an absolute path is one: it starts with ``/``, not ``//`` (a
    network-path reference, which a browser reads as another host), and
    holds no scheme, backslash or control character, before or after
    decoding. As daphne, the value is otherwise kept as sent (``/`` stays
    ``/``, a trailing slash stays).
    """
    text = value.strip()
    if not _VISIBLE_ASCII(text):
        return None
    path = unquote(text.decode("ascii")) if b"%" in text else text.decode("ascii")
    if path[:1] != "/" or path[:2] == "//" or "\\" in path or not path.isprintable():
        return None
    return path


def forwarded_values(
    headers: list[tuple[bytes, bytes]], config: Config, *, websocket: bool
) -> ForwardedValues | None:
    """Read the forwarded headers of a request from a peer whose proxy headers are trusted.

    The caller checks that first: ``proxy_headers`` is on and the peer is
    in ``forwarded_allow_ips`` (or a unix socket). Returns None when no header
    changes anything. The client address comes from ``X-Forwarded-For``
    (the right-most entry that is not itself a trusted proxy, so that a
    client cannot prepend an address of its choosing), the port from
    ``X-Forwarded-Port`` and the scheme from ``X-Forwarded-Proto``.
    ``Daphne-Root-Path`` (percent-encoded) sets the root path, as with daphne.

    Each value is checked whole (:func:`forwarded_address`,
    :func:`forwarded_port`, :func:`forwarded_root_path`, a known scheme): a
    header with a malformed value, or sent twice with a different value, is
    ignored as a whole, never half-read.
    """
    host_name, port_name, proto_name = config.proxy_header_names
    # Every value of each header; X-Forwarded-For lines are one list (RFC 9110 §5.3).
    found: dict[bytes, list[bytes]] = {}
    wanted = (host_name, port_name, proto_name, _ROOT_PATH_HEADER)
    for name, value in headers:
        if name in wanted:
            found.setdefault(name, []).append(value)
    if not found:
        return None
    client: tuple[str, int] | None = None
    lines = found.get(host_name)
    if lines is not None:
        parsed = [forwarded_address(part) for line in lines for part in line.split(b",")]
        addresses = [address for address in parsed if address is not None]
        if addresses and len(addresses) == len(parsed):
            trusted = config.trusted_peers
            chosen = addresses[0]
            for candidate in reversed(addresses):
                if candidate not in trusted:
                    chosen = candidate
                    break
            port = _single(found.get(port_name), forwarded_port)
            client = (chosen, port or 0)
    scheme: str | None = None
    secure = _single(found.get(proto_name), lambda value: _SCHEMES.get(value.strip().lower()))
    if secure is not None:
        scheme = ("wss" if secure else "ws") if websocket else ("https" if secure else "http")
    root_path = _single(found.get(_ROOT_PATH_HEADER), forwarded_root_path)
    if client is None and scheme is None and root_path is None:
        return None
    return ForwardedValues(client, scheme, root_path)


_T = TypeVar("_T")

#: Header names and values that WebSocket handshakes share, held once by the
#: server: a WebSocket scope's headers live as long as the connection, and a
#: copy of each costs 35-60 bytes per socket (bench/server.py idle rows).
_SHARED_HEADER_BYTES: Final[dict[bytes, bytes]] = {
    item: item
    for item in (
        # Names.
        b"accept-encoding",
        b"accept-language",
        b"authorization",
        b"cache-control",
        b"connection",
        b"cookie",
        b"forwarded",
        b"host",
        b"origin",
        b"pragma",
        b"sec-websocket-extensions",
        b"sec-websocket-key",
        b"sec-websocket-protocol",
        b"sec-websocket-version",
        b"upgrade",
        b"user-agent",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-real-ip",
        # Values.
        b"13",
        b"Upgrade",
        b"upgrade",
        b"websocket",
        b"keep-alive, Upgrade",
        b"no-cache",
        b"gzip, deflate, br",
        b"gzip, deflate, br, zstd",
        b"permessage-deflate; client_max_window_bits",
    )
}


def _shared_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """*headers* with the common names and values replaced by the server's one copy."""
    shared = _SHARED_HEADER_BYTES
    return [(shared.get(name, name), shared.get(value, value)) for name, value in headers]


def _single(values: list[bytes] | None, parse: Callable[[bytes], _T | None]) -> _T | None:
    """The one value of a header that may appear once: None if absent, malformed or ambiguous."""
    if not values:
        return None
    parsed = {parse(value) for value in values}
    if len(parsed) != 1:
        return None
    return parsed.pop()


def build_scope(
    head: RequestHead,
    *,
    websocket: bool,
    client: tuple[str, int] | None,
    server: tuple[str, int | None] | None,
    trusted: bool,
    config: Config,
    state: dict[str, Any],
    tls: ConnectionTLS | None = None,
) -> dict[str, Any]:
    """The connection scope of a request (www spec, "HTTP" and "WebSocket" scopes).

    *tls* is the connection's TLS side, None for plain TCP (the TLS spec
    forbids the ``tls`` extension there).

    Raises :class:`~channels_server.errors.HTTPProtocolError` for a request
    target that cannot be split into a path.
    """
    path, raw_path, query_string = split_target(head.target)
    secure = tls is not None
    scheme = ("wss" if secure else "ws") if websocket else ("https" if secure else "http")
    root_path = config.root_path
    # Proxy headers, Daphne-Root-Path included, are believed only with
    # --proxy-headers and only from a trusted peer: any client can send them.
    if trusted and config.proxy_headers:
        forwarded = forwarded_values(head.headers, config, websocket=websocket)
        if forwarded is not None:
            if forwarded.client is not None:
                client = forwarded.client
            if forwarded.scheme is not None:
                scheme = forwarded.scheme
            if forwarded.root_path is not None:
                root_path = forwarded.root_path
    scope: dict[str, Any] = {
        "type": "websocket" if websocket else "http",
        "asgi": {"version": ASGI_VERSION, "spec_version": SPEC_VERSION},
        "http_version": "1.1" if head.http_version == b"1.1" else "1.0",
        "scheme": scheme,
        "path": path,
        "raw_path": raw_path,
        "query_string": query_string,
        "root_path": root_path,
        "headers": _shared_headers(head.headers) if websocket else head.headers,
        # Lists, as daphne gives them: applications compare them with lists.
        "client": [client[0], client[1]] if client is not None else None,
        "server": [server[0], server[1]] if server is not None else None,
        # Lifespan spec: each connection gets a shallow copy of the namespace.
        "state": state.copy(),
    }
    if websocket:
        scope["subprotocols"] = []
        scope["extensions"] = {"websocket.http.response": {}}
        if tls is not None:
            scope["extensions"]["tls"] = tls.extension()
    else:
        scope["method"] = decode_method(head.method)
        if tls is not None:
            scope["extensions"] = {"tls": tls.extension()}
    return scope
