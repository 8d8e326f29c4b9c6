"""What the HTTP and WebSocket communicators share: building a scope from a path."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote, urlsplit

# Characters a client sends as they are (RFC 3986 section 3.3 "pchar" and
# section 3.4): everything else, non-ASCII text included, is percent-encoded
# as UTF-8, and escapes already in the string are kept.
_PATH_SAFE = "/%!$&'()*+,;=:@"
_QUERY_SAFE = _PATH_SAFE + "?"


def path_parts(path: object) -> tuple[str, bytes, bytes]:
    """Split *path* into (decoded path, raw path, query string), as a server would.

    The raw path and the query string are what a client puts on the wire
    (percent-encoded, ASGI "raw_path" and "query_string"); the path is the
    raw path with its escapes decoded as UTF-8 (ASGI "path").
    """
    if not isinstance(path, str):
        raise TypeError(f"path must be a str such as '/chat/?x=1', not {type(path).__name__}")
    parts = urlsplit(path)
    raw = quote(parts.path or "/", safe=_PATH_SAFE)
    query = quote(parts.query, safe=_QUERY_SAFE)
    return unquote(raw), raw.encode("ascii"), query.encode("ascii")


def header_list(headers: object) -> list[tuple[bytes, bytes]]:
    """Check *headers* is an iterable of (bytes, bytes) pairs and return it as a list."""
    if headers is None:
        return []
    if isinstance(headers, (str, bytes, dict)) or not isinstance(headers, Iterable):
        raise TypeError(
            f"headers must be a list of (name, value) pairs of bytes, not {type(headers).__name__}"
        )
    result: list[tuple[bytes, bytes]] = []
    for pair in headers:
        if (
            not isinstance(pair, (tuple, list))
            or len(pair) != 2
            or not isinstance(pair[0], bytes)
            or not isinstance(pair[1], bytes)
        ):
            raise TypeError(f"each header must be a (bytes, bytes) pair, not {pair!r}")
        result.append((pair[0].lower(), pair[1]))
    return result


def base_scope(kind: str, path: object, headers: object) -> dict[str, Any]:
    decoded, raw, query = path_parts(path)
    return {
        "type": kind,
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "path": decoded,
        "raw_path": raw,
        "root_path": "",
        "query_string": query,
        "headers": header_list(headers),
    }
