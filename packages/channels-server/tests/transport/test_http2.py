"""HTTP/2 over real sockets: h2c with prior knowledge and TLS with ALPN.

The clients are independent of the server: h2's client side
(``_support/h2_client.py``), httpx with ``http2=True`` over TLS, and
``nghttp``/``h2load`` from Debian's nghttp2-client where installed.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import shutil
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import trustme

from channels_server import Server

h2_client = importlib.import_module("channels_server_test_support.h2_client")
servers = importlib.import_module("channels_server_test_support.servers")
H2Client = h2_client.H2Client

pytestmark = pytest.mark.asyncio

REFUSED_STREAM = 0x7
NO_ERROR = 0x0


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    """``await serve(app, **config)``: a server on 127.0.0.1 (HTTP/2 does not use the
    HTTP/1.1 parser, so one parser is enough)."""
    started = servers.StartedServers(http="h11")
    yield started.start
    await started.shutdown()


async def read_all(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("disconnected")
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The body back; ``?N`` answers N bytes instead."""
    body = await read_all(receive)
    if scope["query_string"].isdigit():
        body = b"x" * int(scope["query_string"])
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def test_h2c_request_gets_an_http2_scope(serve: Any) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await echo(scope, receive, send)

    server = await serve(app)
    client = await H2Client.connect(servers.port_of(server))
    try:
        result = await client.get("/a%20b?q=1", headers=[(b"x-one", b"1"), (b"host", b"localhost")])
    finally:
        await client.close()
    assert result.status == 200
    scope = scopes[0]
    assert scope["type"] == "http"
    assert scope["http_version"] == "2"
    assert scope["scheme"] == "http"
    assert scope["method"] == "GET"
    assert scope["path"] == "/a b"
    assert scope["raw_path"] == b"/a%20b"
    assert scope["query_string"] == b"q=1"
    # www spec: no pseudo-headers; :authority first, as host, replacing any host.
    assert scope["headers"] == [(b"host", b"localhost"), (b"x-one", b"1")]
    assert dict(result.headers)[b"content-length"] == b"0"


async def test_bodies_larger_than_the_windows_flow_both_ways(serve: Any) -> None:
    server = await serve(echo)
    client = await H2Client.connect(servers.port_of(server))
    try:
        body = bytes(range(256)) * 4096  # 1 MiB: 16 stream windows, the connection's too
        stream_id = client.request("POST", "/", body=body)
        result = await client.response(stream_id)
        assert result.status == 200
        assert bytes(result.body) == body
        big = await client.get("/?3000000")
        assert len(big.body) == 3_000_000
    finally:
        await client.close()


async def test_many_concurrent_streams_on_one_connection(serve: Any) -> None:
    server = await serve(echo)
    client = await H2Client.connect(servers.port_of(server))
    try:
        ids = [client.request("POST", f"/{n}", body=b"%d" % n * 1000) for n in range(60)]
        results = [await client.response(stream_id) for stream_id in ids]
    finally:
        await client.close()
    assert [bytes(result.body) for result in results] == [b"%d" % n * 1000 for n in range(60)]


async def test_stream_reset_mid_body_disconnects_only_that_stream(serve: Any) -> None:
    received: list[dict[str, Any]] = []
    got_part = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/upload":
            while True:
                message = await receive()
                received.append(message)
                got_part.set()
                if message["type"] == "http.disconnect":
                    return
        else:
            await echo(scope, receive, send)

    server = await serve(app)
    client = await H2Client.connect(servers.port_of(server))
    try:
        upload = client.request("POST", "/upload", body=b"x" * 1000, end_stream=False)
        await asyncio.wait_for(got_part.wait(), 10)
        client.reset(upload)
        other = await client.get("/?5")
        assert other.status == 200
        await client.wait_for(lambda: received[-1]["type"] == "http.disconnect")
    finally:
        await client.close()
    assert received[0] == {"type": "http.request", "body": b"x" * 1000, "more_body": True}


async def test_request_trailers_are_ignored(serve: Any) -> None:
    scopes: list[dict[str, Any]] = []
    bodies: list[bytes] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        bodies.append(await read_all(receive))
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"ok"})

    server = await serve(app)
    client = await H2Client.connect(servers.port_of(server))
    try:
        stream_id = client.request("POST", "/", body=b"data", end_stream=False)
        client.conn.send_headers(stream_id, [(b"x-checksum", b"abc")], end_stream=True)
        client.flush()
        result = await client.response(stream_id)
    finally:
        await client.close()
    assert result.status == 200
    assert bodies == [b"data"]
    assert b"x-checksum" not in dict(scopes[0]["headers"])


async def test_streams_over_the_limit_are_refused_while_reset_tasks_run(serve: Any) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()
    started = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal started
        started += 1
        if scope["path"] == "/slow":
            entered.set()
            # Ignores the disconnect: the task runs on after the client's reset.
            await release.wait()
            return
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"done"})

    server = await serve(app, http2_max_concurrent_streams=2)
    client = await H2Client.connect(servers.port_of(server))
    try:
        # Completed responses free their slot at once: many in a row are served.
        for n in range(10):
            assert (await client.get(f"/{n}")).status == 200
        for _ in range(2):
            entered.clear()
            slow = client.request("GET", "/slow")
            await asyncio.wait_for(entered.wait(), 10)
            client.reset(slow)
        refused = await client.get("/3")
        assert refused.reset == REFUSED_STREAM
        assert started == 12
        release.set()
        await client.wait_for(lambda: len(server.context.tasks) == 0)
        again = await client.get("/4")
        assert again.status == 200
    finally:
        release.set()
        await client.close()


async def test_application_error_is_a_500_on_its_stream_only(serve: Any) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/boom":
            raise RuntimeError("boom")
        await echo(scope, receive, send)

    server = await serve(app)
    client = await H2Client.connect(servers.port_of(server))
    try:
        failed = await client.get("/boom")
        fine = await client.get("/?3")
    finally:
        await client.close()
    assert failed.status == 500
    assert fine.status == 200
    assert bytes(fine.body) == b"xxx"


async def test_expect_100_continue(serve: Any) -> None:
    server = await serve(echo)
    client = await H2Client.connect(servers.port_of(server))
    try:
        stream_id = client.request(
            "POST", "/", headers=[(b"expect", b"100-continue")], end_stream=False
        )
        await client.wait_for(lambda: client.streams[stream_id].informational == [100])
        client.send_body(stream_id, b"later")
        result = await client.response(stream_id)
    finally:
        await client.close()
    assert bytes(result.body) == b"later"


async def test_graceful_shutdown_finishes_streams_then_sends_goaway(serve: Any) -> None:
    release = asyncio.Event()
    in_app = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        in_app.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"finished"})

    server = await serve(app)
    client = await H2Client.connect(servers.port_of(server))
    try:
        stream_id = client.request("GET", "/slow")
        await asyncio.wait_for(in_app.wait(), 10)
        shutdown = asyncio.get_running_loop().create_task(server.shutdown())
        await client.wait_for(lambda: server.context.shutting_down)
        # A stream opened now is refused (safe to retry elsewhere, RFC 9113 §8.7).
        late = await client.get("/late")
        assert late.reset == REFUSED_STREAM
        release.set()
        result = await client.response(stream_id)
        assert bytes(result.body) == b"finished"
        await client.closed()
        assert client.goaway == NO_ERROR
        assert client.goaway_last_stream == stream_id
        await asyncio.wait_for(shutdown, 10)
    finally:
        release.set()
        await client.close()


async def test_preface_with_http2_off_is_an_http11_error(serve: Any) -> None:
    server = await serve(echo, http2="off")
    reader, writer = await asyncio.open_connection("127.0.0.1", servers.port_of(server))
    try:
        writer.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        reply = await asyncio.wait_for(reader.read(100), 10)
    finally:
        writer.close()
    assert reply.startswith(b"HTTP/1.1 ")


async def test_http11_still_served_with_http2_enabled(serve: Any) -> None:
    server = await serve(echo, http2="on")
    async with httpx.AsyncClient() as client:
        response = await client.post(f"http://127.0.0.1:{servers.port_of(server)}/", content=b"hi")
    assert response.http_version == "HTTP/1.1"
    assert response.content == b"hi"


# -- TLS and ALPN -----------------------------------------------------------------------------


@pytest.fixture
def certificates(tmp_path: Path) -> tuple[trustme.CA, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    key_file = tmp_path / "key.pem"
    cert_file = tmp_path / "cert.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    return ca, key_file, cert_file


async def test_alpn_h2_with_httpx(serve: Any, certificates: Any) -> None:
    ca, key_file, cert_file = certificates
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await echo(scope, receive, send)

    server = await serve(app, ssl_keyfile=str(key_file), ssl_certfile=str(cert_file))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    url = f"https://localhost:{servers.port_of(server)}/"
    async with httpx.AsyncClient(http2=True, verify=context) as client:
        responses = await asyncio.gather(
            *(client.post(url, content=b"%d" % n * 50_000) for n in range(5))
        )
    assert [response.http_version for response in responses] == ["HTTP/2"] * 5
    assert [response.content for response in responses] == [b"%d" % n * 50_000 for n in range(5)]
    assert {scope["scheme"] for scope in scopes} == {"https"}
    assert {scope["http_version"] for scope in scopes} == {"2"}
    assert "tls" in scopes[0]["extensions"]


async def test_alpn_without_http2_stays_http11(serve: Any, certificates: Any) -> None:
    ca, key_file, cert_file = certificates
    server = await serve(echo, ssl_keyfile=str(key_file), ssl_certfile=str(cert_file), http2="off")
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with httpx.AsyncClient(http2=True, verify=context) as client:
        response = await client.get(f"https://localhost:{servers.port_of(server)}/?2")
    assert response.http_version == "HTTP/1.1"


# -- nghttp2's clients, where installed -----------------------------------------------------


async def run(*command: str) -> tuple[int, bytes]:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output


@pytest.mark.skipif(shutil.which("nghttp") is None, reason="nghttp (nghttp2-client) not installed")
async def test_nghttp_client(serve: Any) -> None:
    server = await serve(echo)
    port = servers.port_of(server)
    code, output = await run("nghttp", "-v", f"http://127.0.0.1:{port}/?12345")
    assert code == 0, output
    assert b":status: 200" in output
    code, output = await run("nghttp", "-n", "-d", "-", f"http://127.0.0.1:{port}/", "-s")
    assert code == 0, output


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (nghttp2-client) not installed")
async def test_h2load_many_streams(serve: Any) -> None:
    server = await serve(echo)
    code, output = await run(
        "h2load", "-n", "400", "-c", "2", "-m", "50", f"http://127.0.0.1:{servers.port_of(server)}/"
    )
    assert code == 0, output
    assert b"400 succeeded, 0 failed, 0 errored" in output, output


async def test_idle_connection_gets_goaway_after_keep_alive_timeout(serve: Any) -> None:
    server = await serve(echo, keep_alive_timeout=0.2)
    client = await H2Client.connect(servers.port_of(server))
    try:
        assert (await client.get("/")).status == 200
        await client.closed(timeout=10)
        assert client.goaway == NO_ERROR
    finally:
        await client.close()


async def test_requests_and_refusals_are_in_the_access_log(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await serve(echo, max_header_count=5)
    client = await H2Client.connect(servers.port_of(server))
    with caplog.at_level(logging.INFO, logger="channels_server.access"):
        try:
            assert (await client.get("/fine")).status == 200
            crowded = [(b"x-h", b"%d" % n) for n in range(6)]
            assert (await client.get("/crowded", headers=crowded)).status == 431
        finally:
            await client.close()
    lines = [record.getMessage() for record in caplog.records]
    assert any('"GET /fine HTTP/2" 200' in line for line in lines), lines
    assert any('"GET /crowded HTTP/2" 431' in line for line in lines), lines


@pytest.mark.skipif(shutil.which("nghttp") is None, reason="nghttp (nghttp2-client) not installed")
async def test_nghttp_over_tls_negotiates_h2(serve: Any, certificates: Any) -> None:
    _, key_file, cert_file = certificates
    server = await serve(echo, ssl_keyfile=str(key_file), ssl_certfile=str(cert_file))
    # (nghttp does not check the certificate; ALPN must choose h2 or it fails.)
    code, output = await run("nghttp", "-v", f"https://127.0.0.1:{servers.port_of(server)}/?7")
    assert code == 0, output
    assert b"The negotiated protocol: h2" in output, output
    assert b":status: 200" in output


async def test_http_timeout_is_a_503_on_its_stream(serve: Any) -> None:
    release = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":
            await release.wait()
            return
        await echo(scope, receive, send)

    server = await serve(app, http_timeout=0.2)
    client = await H2Client.connect(servers.port_of(server))
    try:
        slow = await client.get("/slow")
        assert slow.status == 503
        assert (await client.get("/?2")).status == 200
    finally:
        release.set()
        await client.close()


async def test_stalled_body_is_a_408_and_the_connection_goes_on(serve: Any) -> None:
    server = await serve(echo, body_timeout=0.2)
    client = await H2Client.connect(servers.port_of(server))
    try:
        stalled = client.request("POST", "/", body=b"part", end_stream=False)
        result = await client.response(stalled)
        assert result.status == 408
        assert (await client.get("/?2")).status == 200
    finally:
        await client.close()
