"""Scope pieces built from the request: path splitting and forwarded headers."""

from __future__ import annotations

import pytest

from channels_server.asgi.scope import (
    decode_method,
    forwarded_address,
    forwarded_port,
    forwarded_root_path,
    forwarded_values,
    split_target,
)
from channels_server.config import Config
from channels_server.errors import HTTPProtocolError


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"/", ("/", b"/", b"")),
        (b"/a/b?c=d&e", ("/a/b", b"/a/b", b"c=d&e")),
        (b"/caf%C3%A9/%2F?q=%20", ("/café//", b"/caf%C3%A9/%2F", b"q=%20")),
        (b"/a?b?c", ("/a", b"/a", b"b?c")),
        (b"http://example.com/x/y?z", ("/x/y", b"/x/y", b"z")),
        (b"http://example.com", ("/", b"/", b"")),
        (b"*", ("*", b"*", b"")),
    ],
)
def test_split_target(target: bytes, expected: tuple[str, bytes, bytes]) -> None:
    assert split_target(target) == expected


def test_authority_form_target_is_refused() -> None:
    with pytest.raises(HTTPProtocolError) as info:
        split_target(b"example.com:443")
    assert info.value.status_code == 400


def test_decode_method() -> None:
    assert decode_method(b"GET") == "GET"
    assert decode_method(b"PROPFIND") == "PROPFIND"


PROXY = Config(proxy_headers=True, forwarded_allow_ips=("127.0.0.1", "10.0.0.0/8"))


def test_forwarded_for_takes_the_rightmost_untrusted_address() -> None:
    values = forwarded_values(
        [(b"x-forwarded-for", b"6.6.6.6, 1.2.3.4, 10.0.0.5"), (b"x-forwarded-port", b"4443")],
        PROXY,
        websocket=False,
    )
    assert values is not None
    assert values.client == ("1.2.3.4", 4443)


def test_forwarded_for_with_only_trusted_hops_takes_the_first() -> None:
    values = forwarded_values([(b"x-forwarded-for", b"10.0.0.1, 10.0.0.2")], PROXY, websocket=False)
    assert values is not None
    assert values.client == ("10.0.0.1", 0)


def test_forwarded_proto_maps_to_the_scope_scheme() -> None:
    headers = [(b"x-forwarded-proto", b"HTTPS")]
    assert forwarded_values(headers, PROXY, websocket=False).scheme == "https"  # type: ignore[union-attr]
    assert forwarded_values(headers, PROXY, websocket=True).scheme == "wss"  # type: ignore[union-attr]
    assert forwarded_values([(b"x-forwarded-proto", b"gopher")], PROXY, websocket=False) is None


def test_custom_header_names() -> None:
    config = Config(
        proxy_headers=True, proxy_headers_host="X-Real-IP", proxy_headers_port="X-Real-Port"
    )
    values = forwarded_values(
        [(b"x-forwarded-for", b"9.9.9.9"), (b"x-real-ip", b"8.8.8.8"), (b"x-real-port", b"12")],
        config,
        websocket=False,
    )
    assert values is not None
    assert values.client == ("8.8.8.8", 12)


def test_daphne_root_path_is_percent_decoded_and_otherwise_kept() -> None:
    values = forwarded_values([(b"daphne-root-path", b"/mount%20point/")], PROXY, websocket=False)
    assert values is not None
    # As daphne: percent-decoded, otherwise as sent (a trailing slash stays).
    assert values.root_path == "/mount point/"


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"app",
        b"https://evil.example/",
        b"//evil.example",
        b"/%2f%2fevil.example",
        b"/%2Fevil.example",
        b"/\\evil.example",
        b"/%5cevil.example",
        b"/a%00b",
        b"/a%0d%0ab",
        b"/a%c2%85b",
        b"/a b",
        b"/caf\xe9",
    ],
)
def test_a_root_path_that_is_not_an_absolute_path_is_ignored(value: bytes) -> None:
    assert forwarded_root_path(value) is None
    assert forwarded_values([(b"daphne-root-path", value)], PROXY, websocket=False) is None


def test_a_root_path_sent_twice_differently_is_ignored() -> None:
    headers = [(b"daphne-root-path", b"/a"), (b"daphne-root-path", b"/b")]
    assert forwarded_values(headers, PROXY, websocket=False) is None
    headers = [(b"daphne-root-path", b"/a"), (b"daphne-root-path", b"/a")]
    assert forwarded_values(headers, PROXY, websocket=False).root_path == "/a"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"203.0.113.7", "203.0.113.7"),
        (b" 2001:DB8::1 ", "2001:db8::1"),
        (b"[2001:db8::1]", "2001:db8::1"),
        (b"203.0.113.7:80", None),
        (b"unknown", None),
        (b"1.2.3", None),
        (b"", None),
        (b"203.0.113.7\x85", None),
    ],
)
def test_forwarded_address(value: bytes, expected: str | None) -> None:
    assert forwarded_address(value) == expected


def test_a_malformed_forwarded_for_entry_voids_the_whole_header() -> None:
    headers = [(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-for", b"5.6.7.8, junk")]
    assert forwarded_values(headers, PROXY, websocket=False) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(b"443", 443), (b" 8080 ", 8080), (b"0", None), (b"65536", None), (b"+80", None), (b"", None)],
)
def test_forwarded_port(value: bytes, expected: int | None) -> None:
    assert forwarded_port(value) == expected
