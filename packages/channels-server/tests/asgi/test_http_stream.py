"""HTTP over real sockets: scopes, bodies both ways, flow control, errors.

Each test runs on asyncio and on uvloop (see ``pytest_asyncio_loop_factories``).
"""

from __future__ import annotations

import asyncio
import http.client
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from channels_server.errors import ClientDisconnected

pytestmark = pytest.mark.asyncio


def client_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """A request with the standard library's client (independent of the server's code)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


async def test_hello_world_with_an_independent_client(
    serve: Any, apps: SimpleNamespace, http: SimpleNamespace
) -> None:
    server = await serve(apps.hello)
    status, headers, body = await asyncio.to_thread(
        client_request, http.port_of(server), "GET", "/"
    )
    assert status == 200
    assert body == b"Hello, world!"
    assert headers["content-type"] == "text/plain"
    assert headers["content-length"] == "13"
    assert headers["server"] == "channels-server"
    assert "date" in headers


async def test_the_http_scope_is_complete(
    serve: Any, http: SimpleNamespace, apps: SimpleNamespace
) -> None:
    app = apps.NoContent()
    scopes = app.scopes

    server = await serve(app, root_path="/mount", lifespan="off")
    port = http.port_of(server)
    status, _, _ = await asyncio.to_thread(
        client_request, port, "PATCH", "/caf%C3%A9/x%2Fy?a=1&b=%20", None, {"X-Custom": "v"}
    )
    assert status == 204
    (scope,) = scopes
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "PATCH"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/café/x/y"
    assert scope["raw_path"] == b"/caf%C3%A9/x%2Fy"
    assert scope["query_string"] == b"a=1&b=%20"
    assert scope["root_path"] == "/mount"
    assert (b"x-custom", b"v") in scope["headers"]
    assert (b"host", f"127.0.0.1:{port}".encode()) in scope["headers"]
    assert scope["client"][0] == "127.0.0.1"
    assert isinstance(scope["client"][1], int)
    assert scope["server"] == ["127.0.0.1", port]
    assert scope["state"] == {}


async def test_request_body_in_chunked_encoding_is_decoded(
    serve: Any, apps: SimpleNamespace, http: SimpleNamespace
) -> None:
    server = await serve(apps.echo)
    data = await http.exchange(
        http.port_of(server),
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\n\r\n",
    )
    (response,) = http.parse(data)
    assert response.body == b"hello world"


async def test_streamed_response_is_chunked(serve: Any, http: SimpleNamespace) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"a", b"bb", b"ccc"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    server = await serve(app)
    data = await http.exchange(
        http.port_of(server), b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert b"transfer-encoding: chunked" in data
    assert http.parse(data)[0].body == b"abbccc"


async def test_keep_alive_and_pipelining(
    serve: Any, apps: SimpleNamespace, http: SimpleNamespace
) -> None:
    server = await serve(apps.echo)
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    writer.write(b"POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none")
    first = await http.read_response(reader)
    assert first.endswith(b"\r\n\r\none")
    # Two pipelined requests in one write, answered in order.
    writer.write(
        b"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo"
        b"POST /3 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nthree"
    )
    rest = await asyncio.wait_for(reader.read(), 5)
    responses = http.parse(rest)
    assert [response.body for response in responses] == [b"two", b"three"]
    assert responses[1].header(b"connection") == b"close"
    writer.close()


async def test_head_gets_headers_only(
    serve: Any, apps: SimpleNamespace, http: SimpleNamespace
) -> None:
    server = await serve(apps.hello)
    data = await http.exchange(
        http.port_of(server), b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert b"content-length: 13\r\n" in data
    assert data.endswith(b"\r\n\r\n")


async def test_expect_100_continue(
    serve: Any, apps: SimpleNamespace, http: SimpleNamespace
) -> None:
    server = await serve(apps.echo)
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    writer.write(
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n"
        b"Connection: close\r\n\r\n"
    )
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"body")
    rest = await asyncio.wait_for(reader.read(), 5)
    assert http.parse(rest)[0].body == b"body"
    writer.close()


async def test_no_100_continue_when_the_application_answers_without_reading(
    serve: Any, http: SimpleNamespace
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 413})
        await send({"type": "http.response.body", "body": b"too big"})

    server = await serve(app)
    data = await http.exchange(
        http.port_of(server),
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n",
    )
    assert b"100 Continue" not in data
    (response,) = http.parse(data)
    assert response.status == 413
    assert response.header(b"connection") == b"close"


async def test_request_body_flow_control(serve: Any, http: SimpleNamespace) -> None:
    """A slow application is never handed, and the server never buffers, an unbounded body."""
    release = asyncio.Event()
    sizes: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        first = await receive()
        sizes.append(len(first["body"]))
        await release.wait()
        total = len(first["body"])
        more = first["more_body"]
        while more:
            message = await receive()
            sizes.append(len(message["body"]))
            total += len(message["body"])
            more = message["more_body"]
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": str(total).encode()})

    server = await serve(app)
    size = 16 * 1024 * 1024
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    writer.write(
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % size
    )
    writer.write(b"x" * size)
    drained = asyncio.ensure_future(writer.drain())
    await asyncio.sleep(0.5)
    # The server stopped reading: the client cannot get its body out.
    assert not drained.done()
    assert writer.transport.get_write_buffer_size() > 0
    release.set()
    await asyncio.wait_for(drained, 10)
    response = await asyncio.wait_for(reader.read(), 10)
    assert http.parse(response)[0].body == str(size).encode()
    # Each message holds at most the queue limit plus one read from the socket.
    assert max(sizes) <= 64 * 1024 + 256 * 1024
    writer.close()


async def test_response_write_back_pressure(serve: Any, http: SimpleNamespace) -> None:
    sent: list[int] = []
    chunk = b"y" * 65536

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % (len(chunk) * 400))],
            }
        )
        for index in range(400):
            await send({"type": "http.response.body", "body": chunk, "more_body": index < 399})
            sent.append(index)

    server = await serve(app)
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server), limit=1024)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await asyncio.sleep(0.5)
    # 26 MB would fit in memory; the application is held back by the socket instead.
    assert len(sent) < 200
    total = 0
    while True:
        data = await asyncio.wait_for(reader.read(1 << 20), 10)
        if not data:
            break
        total += len(data)
    assert len(sent) == 400
    assert total > len(chunk) * 400
    writer.close()


async def test_disconnect_is_delivered_and_send_raises(serve: Any, http: SimpleNamespace) -> None:
    events: list[Any] = []
    finished = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            events.append(await receive())
            events.append(await receive())
            try:
                await send({"type": "http.response.start", "status": 200})
                await send({"type": "http.response.body", "body": b"late"})
            except OSError as exc:
                events.append(exc)
        finally:
            finished.set()

    server = await serve(app)
    _, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()
    await asyncio.wait_for(finished.wait(), 5)
    assert events[0] == {"type": "http.request", "body": b"", "more_body": False}
    assert events[1] == {"type": "http.disconnect"}
    assert isinstance(events[2], ClientDisconnected)


async def test_application_exception_is_500_and_the_server_goes_on(
    serve: Any, http: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/boom":
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"fine"})

    server = await serve(app)
    port = http.port_of(server)
    with caplog.at_level(logging.ERROR, logger="channels_server"):
        data = await http.exchange(port, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
    assert http.parse(data)[0].status == 500
    assert "Exception inside application" in caplog.text
    assert "RuntimeError: boom" in caplog.text
    data = await http.exchange(port, b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert http.parse(data)[0].body == b"fine"


async def test_exception_after_the_response_started_cuts_it_short(
    serve: Any, http: SimpleNamespace
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]}
        )
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("half way")

    server = await serve(app)
    data = await http.exchange(http.port_of(server), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.endswith(b"partial")


async def test_returning_without_a_response_is_500(serve: Any, http: SimpleNamespace) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})

    server = await serve(app)
    data = await http.exchange(http.port_of(server), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert http.parse(data)[0].status == 500


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"type": "http.response.body", "body": b"x"}], "response is waiting"),
        (
            [
                {"type": "http.response.start", "status": 200},
                {"type": "http.response.start", "status": 200},
            ],
            "response is started",
        ),
        ([{"type": "websocket.accept"}], "Unexpected ASGI message type"),
        (
            [
                {"type": "http.response.start", "status": 200},
                {"type": "http.response.body", "body": "text"},
            ],
            "must be bytes",
        ),
        ([{"type": "http.response.start", "status": "200"}], "must be an int"),
        ([{"no": "type"}], "with a 'type'"),
    ],
)
async def test_invalid_messages_raise_in_the_application(
    serve: Any, http: SimpleNamespace, messages: list[dict[str, Any]], error: str
) -> None:
    raised: list[BaseException] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            for message in messages:
                await send(message)
        except Exception as exc:
            raised.append(exc)
            raise

    server = await serve(app)
    data = await http.exchange(http.port_of(server), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert http.parse(data)[0].status == 500
    assert error in str(raised[0])


async def test_messages_after_the_response_are_ignored(serve: Any, http: SimpleNamespace) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"done"})
        await send({"type": "http.response.body", "body": b"ignored"})
        assert await receive() == {"type": "http.disconnect"}

    server = await serve(app)
    data = await http.exchange(
        http.port_of(server), b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert http.parse(data)[0].body == b"done"


async def test_http_timeout_is_503(serve: Any, http: SimpleNamespace) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.sleep(30)

    server = await serve(app, http_timeout=0.2, application_close_timeout=0.2)
    data = await http.exchange(http.port_of(server), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    (response,) = http.parse(data)
    assert response.status == 503
    assert b"Application failed to respond within time limit." in response.body


async def test_application_still_running_after_disconnect_is_cancelled(
    serve: Any, http: SimpleNamespace, apps: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    app = apps.Stuck()
    cancelled = app.cancelled
    server = await serve(app, application_close_timeout=0.3)
    _, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.1)
    with caplog.at_level(logging.WARNING, logger="channels_server"):
        writer.close()
        await asyncio.wait_for(cancelled.wait(), 5)
    assert "still running" in caplog.text
    assert "/slow" in caplog.text


async def test_proxy_headers_from_a_trusted_peer(
    serve: Any, http: SimpleNamespace, apps: SimpleNamespace
) -> None:
    app = apps.NoContent()
    scopes = app.scopes

    request = (
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Port: 8443\r\n"
        b"X-Forwarded-Proto: https\r\nConnection: close\r\n\r\n"
    )
    trusted = await serve(app, proxy_headers=True, lifespan="off")
    await http.exchange(http.port_of(trusted), request)
    untrusted = await serve(
        app, proxy_headers=True, forwarded_allow_ips=("10.0.0.1",), lifespan="off"
    )
    await http.exchange(http.port_of(untrusted), request)
    assert scopes[0]["client"] == ["203.0.113.7", 8443]
    assert scopes[0]["scheme"] == "https"
    assert scopes[1]["client"][0] == "127.0.0.1"
    assert scopes[1]["scheme"] == "http"


async def test_asgi2_applications_are_adapted(serve: Any, http: SimpleNamespace) -> None:
    class Asgi2:
        def __init__(self, scope: dict[str, Any]) -> None:
            self.scope = scope

        async def __call__(self, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"asgi2"})

    server = await serve(Asgi2)
    data = await http.exchange(
        http.port_of(server), b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert http.parse(data)[0].body == b"asgi2"


async def test_no_server_header(serve: Any, apps: SimpleNamespace, http: SimpleNamespace) -> None:
    server = await serve(apps.hello, server_name=None)
    data = await http.exchange(
        http.port_of(server), b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert http.parse(data)[0].header(b"server") is None


# -- scopes and bodies as daphne gives them -------------------------------------------------------


@pytest.mark.parametrize(("options", "limit"), [({}, 8192), ({"request_buffer_size": 1000}, 1000)])
async def test_request_body_arrives_in_chunks_of_request_buffer_size(
    serve: Any, http: SimpleNamespace, options: dict[str, Any], limit: int
) -> None:
    messages: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            messages.append(message)
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"ok"})

    server = await serve(app, **options)
    body = bytes(range(256)) * 200  # 51200 bytes, sent in one write
    for framing, payload in [
        (b"Content-Length: %d" % len(body), body),
        (b"Transfer-Encoding: chunked", b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body)),
    ]:
        messages.clear()
        response = await http.exchange(
            http.port_of(server),
            b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + framing
            + b"\r\n\r\n"
            + payload,
        )
        assert http.parse(response)[0].body == b"ok"
        assert b"".join(message["body"] for message in messages) == body
        assert all(type(message["body"]) is bytes for message in messages)
        assert max(len(message["body"]) for message in messages) <= limit
        assert len(messages) >= len(body) // limit
        # more_body=True on every chunk but the last.
        assert [message["more_body"] for message in messages] == [True] * (len(messages) - 1) + [
            False
        ]


async def test_daphne_root_path_header_is_kept_as_sent_from_trusted_peers(
    serve: Any, http: SimpleNamespace, apps: SimpleNamespace
) -> None:
    app = apps.NoContent()
    scopes = app.scopes

    # Trusted: --proxy-headers, from a peer of --forwarded-allow-ips (loopback by default).
    trusted = await serve(app, proxy_headers=True)
    untrusted = await serve(
        app, proxy_headers=True, forwarded_allow_ips=("10.0.0.1",), root_path="/config"
    )
    for value in (b"/", b"/app/", b"/mount%20point"):
        request = b"GET /x HTTP/1.1\r\nHost: x\r\nDaphne-Root-Path: " + value + b"\r\n\r\n"
        await http.exchange(
            http.port_of(trusted), request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
        )
        await http.exchange(
            http.port_of(untrusted), request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
        )
    assert [scope["root_path"] for scope in scopes] == [
        "/",
        "/config",
        "/app/",
        "/config",
        "/mount point",
        "/config",
    ]


async def test_client_and_server_are_lists(
    serve: Any, http: SimpleNamespace, apps: SimpleNamespace
) -> None:
    # daphne gives [host, port]; code that compares them with a list relies on it.
    app = apps.NoContent()
    scopes = app.scopes

    server = await serve(app)
    port = http.port_of(server)
    await http.exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    (scope,) = scopes
    assert type(scope["client"]) is list
    assert scope["server"] == ["127.0.0.1", port]
    assert scope["client"][0] == "127.0.0.1"
