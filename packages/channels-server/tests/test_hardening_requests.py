"""Hostile requests, over real sockets: proxy headers from untrusted peers,
handshakes with bodies, error responses that would echo the request, stray
line breaks, and slow or oversized request bodies.

Each test also has a well-behaved client served by the same server, during
or after the attack.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

pytestmark = pytest.mark.asyncio

OK_REQUEST = b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


async def served(http: SimpleNamespace, port: int) -> None:
    """A well-behaved client gets its 200."""
    data = await http.exchange(port, OK_REQUEST)
    (response,) = http.parse(data)
    assert (response.status, response.body) == (200, b"ok")


# -- 2. Daphne-Root-Path and forwarded headers -----------------------------------------------------


def _with_headers(*lines: bytes) -> bytes:
    return (
        b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + b"".join(line + b"\r\n" for line in lines)
        + b"\r\n"
    )


async def test_daphne_root_path_is_ignored_without_proxy_headers(
    serve: Any, http: SimpleNamespace, tmp_socket_path: str, recorder: Any
) -> None:
    """Loopback and unix-socket peers are trusted proxies only with --proxy-headers:
    without it, a client behind a same-host proxy could move its path past
    the proxy's location rules."""
    tcp = await serve(recorder, root_path="/mounted")
    await serve(recorder, endpoints=(f"unix:{tmp_socket_path}",), root_path="/mounted")
    request = _with_headers(b"Daphne-Root-Path: /admin", b"X-Forwarded-Proto: https")
    await http.exchange(http.port_of(tcp), request)
    reader, writer = await asyncio.open_unix_connection(tmp_socket_path)
    writer.write(request)
    assert http.parse(await asyncio.wait_for(reader.read(), 5))[0].status == 200
    writer.close()
    assert [scope["root_path"] for scope in recorder.scopes] == ["/mounted", "/mounted"]
    assert [scope["scheme"] for scope in recorder.scopes] == ["http", "http"]
    await served(http, http.port_of(tcp))


async def test_daphne_root_path_from_a_trusted_proxy(
    serve: Any, http: SimpleNamespace, tmp_socket_path: str, recorder: Any
) -> None:
    tcp = await serve(recorder, proxy_headers=True, root_path="/mounted")
    await serve(
        recorder, endpoints=(f"unix:{tmp_socket_path}",), proxy_headers=True, root_path="/mounted"
    )
    await http.exchange(http.port_of(tcp), _with_headers(b"Daphne-Root-Path: /app%20one"))
    reader, writer = await asyncio.open_unix_connection(tmp_socket_path)
    writer.write(_with_headers(b"Daphne-Root-Path: /"))
    await asyncio.wait_for(reader.read(), 5)
    writer.close()
    # Percent-decoded, otherwise as sent: "/" stays "/" (daphne's behaviour).
    assert [scope["root_path"] for scope in recorder.scopes] == ["/app one", "/"]


@pytest.mark.parametrize(
    ("header", "scope_key", "default"),
    [
        # Not an absolute path: a scheme and host, a network-path reference,
        # one hidden behind percent-encoding, a backslash, control characters.
        (b"Daphne-Root-Path: https://evil.example/app", "root_path", "/mounted"),
        (b"Daphne-Root-Path: //evil.example/app", "root_path", "/mounted"),
        (b"Daphne-Root-Path: /%2Fevil.example", "root_path", "/mounted"),
        (b"Daphne-Root-Path: /\\evil.example", "root_path", "/mounted"),
        (b"Daphne-Root-Path: /app%0d%0aSet-Cookie:%20a=b", "root_path", "/mounted"),
        (b"Daphne-Root-Path: app", "root_path", "/mounted"),
        (b"Daphne-Root-Path: /app\tx", "root_path", "/mounted"),
        # Malformed forwarded values are ignored whole, not half-read.
        (b"X-Forwarded-For: 203.0.113.7, evil", "client", ["127.0.0.1"]),
        (b"X-Forwarded-For: 203.0.113.7 198.51.100.1", "client", ["127.0.0.1"]),
        (b"X-Forwarded-For: 203.0.113.300", "client", ["127.0.0.1"]),
        (b"X-Forwarded-For: 203.0.113.7%0a", "client", ["127.0.0.1"]),
        (b"X-Forwarded-Proto: https, http", "scheme", "http"),
        (b"X-Forwarded-Proto: javascript", "scheme", "http"),
    ],
)
async def test_malformed_proxy_header_values_are_ignored(
    serve: Any, http: SimpleNamespace, header: bytes, scope_key: str, default: Any, recorder: Any
) -> None:
    server = await serve(recorder, proxy_headers=True, root_path="/mounted")
    port = http.port_of(server)
    await http.exchange(port, _with_headers(header))
    value = recorder.scopes[0][scope_key]
    assert (value[:1] if scope_key == "client" else value) == default
    await served(http, port)


@pytest.mark.parametrize(
    ("port_header", "expected"),
    [
        (b"X-Forwarded-Port: 8443", 8443),
        (b"X-Forwarded-Port: 80abc", 0),
        (b"X-Forwarded-Port: 99999", 0),
    ],
)
async def test_a_malformed_forwarded_port_is_ignored(
    serve: Any, http: SimpleNamespace, port_header: bytes, expected: int, recorder: Any
) -> None:
    server = await serve(recorder, proxy_headers=True)
    await http.exchange(
        http.port_of(server), _with_headers(b"X-Forwarded-For: [2001:db8::7]", port_header)
    )
    assert recorder.scopes[0]["client"] == ["2001:db8::7", expected]


# -- 5. WebSocket handshakes that carry a body -----------------------------------------------------

_HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


@pytest.mark.parametrize(
    "framing",
    [b"Content-Length: 5\r\n\r\nhello", b"Transfer-Encoding: chunked\r\n\r\n5\r\nhel"],
)
async def test_a_websocket_handshake_with_a_body_is_refused(
    serve: Any, http: SimpleNamespace, framing: bytes, recorder: Any
) -> None:
    """A chunked body that never ends used to hold the handshake open with no
    timer running; a Content-Length one was dropped and the socket upgraded."""
    server = await serve(recorder, header_timeout=30)
    port = http.port_of(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_HANDSHAKE + framing)
    # Refused at once, while the client still holds the rest of its body.
    answer = await asyncio.wait_for(reader.read(), 3)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert recorder.scopes == []
    writer.close()
    await served(http, port)


async def test_a_websocket_handshake_with_content_length_zero_is_accepted(
    serve: Any, http: SimpleNamespace, recorder: Any
) -> None:
    server = await serve(recorder)
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    writer.write(_HANDSHAKE + b"Content-Length: 0\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101 ")
    writer.close()


# -- 6. error responses never echo the request -----------------------------------------------------

SECRET = b"s3cr3t-T0KEN"


@pytest.mark.parametrize(
    "request_bytes",
    [
        # h11 quoted a rejected header line, cookie and all, into the 400.
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Cookie: session=" + SECRET + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Token: " + SECRET + b"\x01\r\n\r\n",
        b"GET /" + SECRET + b" HTTP/1.1 junk\r\nHost: x\r\n\r\n",
        b"GET / HTTP/7.7\r\nHost: x\r\nX: " + SECRET + b"\r\n\r\n",
        SECRET.upper() + b" / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + SECRET + b"\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1" + SECRET + b"\r\n\r\n",
        _HANDSHAKE + b"Sec-WebSocket-Protocol: chat, " + SECRET + b"@x\r\n\r\n",
    ],
)
async def test_error_responses_do_not_repeat_the_request(
    serve: Any, http: SimpleNamespace, request_bytes: bytes, recorder: Any
) -> None:
    server = await serve(recorder)
    port = http.port_of(server)
    data = await http.exchange(port, request_bytes)
    (response,) = http.parse(data)
    assert 400 <= response.status < 600
    assert SECRET.lower() not in data.lower()
    assert b"7.7" not in response.body
    # The body still says what kind of thing was wrong.
    assert len(response.body.splitlines()) == 2
    await served(http, port)


# -- 7. stray CRLF, bare LF, obs-fold --------------------------------------------------------------


async def test_a_stray_crlf_after_a_request_is_ignored(
    serve: Any, http: SimpleNamespace, recorder: Any
) -> None:
    """RFC 9112 §2.2 lets a client send an empty line after a request: no 400
    for it, and nothing unsolicited on the kept-alive connection."""
    # (Bytes between requests restart the wait at the header timeout.)
    server = await serve(recorder, keep_alive_timeout=0.5, header_timeout=0.5)
    port = http.port_of(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab\r\n")
    assert (await http.read_response(reader)).endswith(b"ok")
    writer.write(b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await http.read_response(reader)).endswith(b"ok")
    writer.write(b"\r\n")  # after the response this time
    await served(http, port)
    # The keep-alive timeout closes the connection without a word.
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert recorder.paths() == ["/1", "/2", "/ok"]
    writer.close()


async def test_a_stray_crlf_pipelined_with_requests(
    serve: Any, http: SimpleNamespace, recorder: Any
) -> None:
    server = await serve(recorder)
    data = await http.exchange(
        http.port_of(server),
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n\r\n"
        b"GET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert [response.status for response in http.parse(data)] == [200, 200]
    assert data.count(b"HTTP/1.1 ") == 2
    assert recorder.paths() == ["/1", "/2"]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n\r\n",
        b"GET /1 HTTP/1.0\r\n\r\n\r\n",
        b"POST /1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n\r\na\r\n",
        b"GET /1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",
    ],
)
async def test_bytes_after_a_closing_request_never_replace_its_response(
    serve: Any, http: SimpleNamespace, request_bytes: bytes, recorder: Any
) -> None:
    """h11 refused anything after a request that closes the connection, and the
    400 went out instead of the response (RFC 9112 §9.6: the rest is ignored)."""
    server = await serve(recorder)
    port = http.port_of(server)
    data = await http.exchange(port, request_bytes)
    assert [response.status for response in http.parse(data)] == [200]
    assert data.count(b"HTTP/1.") == 1
    assert recorder.paths() == ["/1"]
    await served(http, port)


async def test_empty_lines_without_a_request_are_bounded(
    serve: Any, http: SimpleNamespace, recorder: Any
) -> None:
    """A client sending only line breaks is not a client with a stray CRLF."""
    server = await serve(recorder)
    port = http.port_of(server)
    data = await http.exchange(port, b"\r\n" * 100)
    assert data.startswith(b"HTTP/1.1 400 ")
    assert recorder.scopes == []
    await served(http, port)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\nHost: x\n\n",
        b"GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n continued\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\tcontinued\r\n\r\n",
    ],
)
async def test_bare_lf_and_obs_fold_are_refused_by_both_engines(
    serve: Any, http: SimpleNamespace, request_bytes: bytes, recorder: Any
) -> None:
    """A head read one way here and another way by a front end is request smuggling."""
    server = await serve(recorder)
    port = http.port_of(server)
    assert http.parse(await http.exchange(port, request_bytes))[0].status == 400
    # Cut anywhere, the same.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for byte in range(len(request_bytes)):
        writer.write(request_bytes[byte : byte + 1])
        await writer.drain()
    assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 400 ")
    writer.close()
    assert recorder.scopes == []
    await served(http, port)


async def test_whitespace_at_the_start_of_a_body_is_not_a_fold(
    serve: Any, http: SimpleNamespace, recorder: Any
) -> None:
    server = await serve(recorder)
    data = await http.exchange(
        http.port_of(server),
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\n \n ",
    )
    assert http.parse(data)[0].status == 200
    assert recorder.messages[0]["body"] == b" \n "


# -- 10. request bodies: slow, or too large --------------------------------------------------------


async def test_a_slow_upload_gets_408_and_the_application_a_disconnect(
    serve: Any, http: SimpleNamespace, recorder: Any
) -> None:
    server = await serve(recorder, body_timeout=0.5)
    port = http.port_of(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"a" * 10)
    started = asyncio.get_running_loop().time()
    await served(http, port)  # meanwhile
    answer = await asyncio.wait_for(reader.read(), 5)
    elapsed = asyncio.get_running_loop().time() - started
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert 0.4 < elapsed < 2.5
    await asyncio.wait_for(recorder.disconnected.wait(), 5)
    writer.close()
    await served(http, port)


async def test_a_trickling_upload_is_timed_between_reads(
    serve: Any, http: SimpleNamespace, recorder: Any
) -> None:
    """The timeout is for a silence, not for the whole body: a client that keeps
    sending is served."""
    server = await serve(recorder, body_timeout=0.6)
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n")
    for _ in range(8):
        await asyncio.sleep(0.2)
        writer.write(b"b")
    assert (await http.read_response(reader)).endswith(b"ok")
    writer.close()


async def test_an_application_slow_to_read_is_not_the_clients_fault(
    serve: Any, http: SimpleNamespace
) -> None:
    """Time the application leaves the body unread (reading paused, or a
    100-continue not yet sent) does not count against the client."""
    read_later = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.sleep(0.8)
        size = 0
        while True:
            message = await receive()
            assert message["type"] == "http.request"
            size += len(message["body"])
            if not message["more_body"]:
                break
        read_later.set()
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"%d" % size})

    server = await serve(app, body_timeout=0.3)
    port = http.port_of(server)
    body = b"z" * 500_000
    data = await http.exchange(
        port,
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body,
    )
    assert http.parse(data)[0].body == b"500000"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 100 ")
    writer.write(b"abc")
    assert (await http.read_response(reader)).endswith(b"3")
    writer.close()


async def test_limit_request_body(serve: Any, http: SimpleNamespace, recorder: Any) -> None:
    server = await serve(recorder, limit_request_body=1000)
    port = http.port_of(server)
    # Declared too large: refused before the application is called.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n")
    assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 413 ")
    writer.close()
    assert recorder.scopes == []
    # Chunks that add up to too much: 413, and the application is told.
    chunk = b"%x\r\n%b\r\n" % (600, b"c" * 600)
    data = await http.exchange(
        port,
        b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 2,
    )
    assert data.startswith(b"HTTP/1.1 413 ")
    await asyncio.wait_for(recorder.disconnected.wait(), 5)
    # At the limit, served.
    data = await http.exchange(
        port,
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1000\r\n\r\n"
        + b"d" * 1000,
    )
    assert http.parse(data)[0].status == 200
    await served(http, port)
