"""Building the parts of HTTP and WebSocket scopes that come from the request.

The request target is split into ``path`` (percent-decoded, UTF-8),
``raw_path`` and ``query_string`` as the www specification describes. The
client address, scheme and root path can come from a reverse proxy's
headers, but only when the peer is one the server trusts
(``--forwarded-allow-ips``): anyone else could write those headers.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import unquote, urlsplit

from ..config import Config
from ..errors import HTTPProtocolError
from ..protocol.http11 import RequestHead

__all__ = [
    "ASGI_VERSION",
    "SPEC_VERSION",
    "ForwardedValues",
    "build_scope",
    "decode_method",
    "forwarded_values",
    "split_target",
]

#: The ASGI version and the www specification version the server implements
#: (2.5: ``reason`` in websocket.disconnect; 2.4: send() after a disconnect raises).
ASGI_VERSION: Final = "3.0"
SPEC_VERSION: Final = "2.5"

_METHODS = {
    method.encode("ascii"): method
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")
}


def decode_method(method: bytes) -> str:
    """The method as a str (the common ones without decoding)."""
    text = _METHODS.get(method)
    return text if text is not None else method.decode("ascii")


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


def forwarded_values(
    headers: list[tuple[bytes, bytes]], config: Config, *, websocket: bool
) -> ForwardedValues | None:
    """Read the forwarded headers of a request from a trusted peer.

    Returns None when no header changes anything. With ``proxy_headers``
    the client address comes from ``X-Forwarded-For`` (the right-most entry
    that is not itself a trusted proxy, so that a client cannot prepend an
    address of its choosing), the port from ``X-Forwarded-Port`` and the
    scheme from ``X-Forwarded-Proto``. ``Daphne-Root-Path`` (percent-encoded)
    sets the root path, as with daphne.
    """
    host_name, port_name, proto_name = config.proxy_header_names
    use_proxy = config.proxy_headers
    addresses: list[bytes] = []
    port: bytes | None = None
    proto: bytes | None = None
    root_path: str | None = None
    for name, value in headers:
        if name == _ROOT_PATH_HEADER:
            # As daphne: the value as sent, percent-decoded ("/" stays "/").
            root_path = unquote(value.decode("latin-1"))
        elif use_proxy:
            if name == host_name:
                addresses.extend(part.strip() for part in value.split(b","))
            elif name == port_name:
                port = value.strip()
            elif name == proto_name:
                proto = value.strip().lower()
    client: tuple[str, int] | None = None
    if addresses:
        trusted = config.trusted_peers
        chosen = addresses[0]
        for candidate in reversed(addresses):
            if candidate.decode("latin-1") not in trusted:
                chosen = candidate
                break
        host = chosen.decode("latin-1").strip("[]")
        number = 0
        if port is not None and port.isdigit() and int(port) <= 65535:
            number = int(port)
        if host:
            client = (host, number)
    scheme: str | None = None
    if proto in (b"http", b"https", b"ws", b"wss"):
        secure = proto in (b"https", b"wss")
        scheme = ("wss" if secure else "ws") if websocket else ("https" if secure else "http")
    if client is None and scheme is None and root_path is None:
        return None
    return ForwardedValues(client, scheme, root_path)


def build_scope(
    head: RequestHead,
    *,
    websocket: bool,
    client: tuple[str, int] | None,
    server: tuple[str, int | None] | None,
    trusted: bool,
    config: Config,
    state: dict[str, Any],
) -> dict[str, Any]:
    """The connection scope of a request (www spec, "HTTP" and "WebSocket" scopes).

    Raises :class:`~channels_server.errors.HTTPProtocolError` for a request
    target that cannot be split into a path.
    """
    path, raw_path, query_string = split_target(head.target)
    scheme = "ws" if websocket else "http"
    root_path = config.root_path
    if trusted:
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
        "headers": head.headers,
        # Lists, as daphne gives them: applications compare them with lists.
        "client": [client[0], client[1]] if client is not None else None,
        "server": [server[0], server[1]] if server is not None else None,
        # Lifespan spec: each connection gets a shallow copy of the namespace.
        "state": state.copy(),
    }
    if websocket:
        scope["subprotocols"] = []
        scope["extensions"] = {"websocket.http.response": {}}
    else:
        scope["method"] = decode_method(head.method)
    return scope
