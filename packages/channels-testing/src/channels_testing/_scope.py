"""What the HTTP and WebSocket communicators share: building a scope from a path."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit


def path_parts(path: object) -> tuple[str, bytes, bytes]:
    """Split *path* into (decoded path, raw path, query string)."""
    if not isinstance(path, str):
        raise TypeError(f"path must be a str such as '/chat/?x=1', not {type(path).__name__}")
    parts = urlsplit(path)
    raw = parts.path or "/"
    return unquote(raw), raw.encode("ascii", "backslashreplace"), parts.query.encode("utf-8")


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
