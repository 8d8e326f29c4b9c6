"""The server's lifecycle in-process: endpoints, lifespan, graceful shutdown, access log."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from channels_server import Config, ConfigurationError, LifespanFailure, Server

pytestmark = pytest.mark.asyncio


def local(**options: Any) -> Config:
    options.setdefault("endpoints", ("tcp:port=0:interface=127.0.0.1",))
    return Config(**options)


# -- endpoints ------------------------------------------------------------------------------------


async def test_unix_socket_endpoint(
    apps: SimpleNamespace, http: SimpleNamespace, tmp_socket_path: str
) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await apps.hello(scope, receive, send)

    server = Server(app, local(endpoints=(f"unix:{tmp_socket_path}:mode=600",), lifespan="off"))
    await server.startup()
    try:
        assert server.addresses == [tmp_socket_path]
        assert oct(os.stat(tmp_socket_path).st_mode & 0o777) == "0o600"
        reader, writer = await asyncio.open_unix_connection(tmp_socket_path)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    finally:
        await server.shutdown()
    assert http.parse(data)[0].body == b"Hello, world!"
    assert scopes[0]["client"] is None
    assert scopes[0]["server"] == [tmp_socket_path, None]
    # The socket file is removed on shutdown.
    assert not Path(tmp_socket_path).exists()  # noqa: ASYNC240 - a test's final check


async def test_stale_unix_socket_file_is_replaced(
    apps: SimpleNamespace, tmp_socket_path: str
) -> None:
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(tmp_socket_path)
    stale.close()
    server = Server(apps.hello, local(endpoints=(f"unix:{tmp_socket_path}",)))
    await server.startup()
    await server.shutdown()


async def test_inherited_file_descriptor(apps: SimpleNamespace, http: SimpleNamespace) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    server = Server(
        apps.hello, local(endpoints=(f"fd:fileno={listener.fileno()}",), lifespan="off")
    )
    await server.startup()
    try:
        data = await http.exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    finally:
        await server.shutdown()
        # The server adopted the descriptor and closed it.
        listener.detach()
    assert http.parse(data)[0].status == 200


async def test_file_descriptor_that_is_not_a_socket(apps: SimpleNamespace, tmp_path: Any) -> None:
    with (tmp_path / "file").open("w") as handle:
        server = Server(apps.hello, local(endpoints=(f"fd:fileno={handle.fileno()}",)))
        with pytest.raises(ConfigurationError, match="not a socket"):
            await server.startup()


async def test_address_in_use(apps: SimpleNamespace) -> None:
    first = Server(apps.hello, local())
    await first.startup()
    try:
        _, port = first.addresses[0]  # type: ignore[misc]
        second = Server(apps.hello, local(endpoints=(f"tcp:port={port}:interface=127.0.0.1",)))
        with pytest.raises(ConfigurationError, match="address already in use"):
            await second.startup()
    finally:
        await first.shutdown()


async def test_several_endpoints(
    apps: SimpleNamespace, http: SimpleNamespace, tmp_socket_path: str
) -> None:
    server = Server(
        apps.hello,
        local(
            endpoints=("tcp:port=0:interface=127.0.0.1", f"unix:{tmp_socket_path}"), lifespan="off"
        ),
    )
    await server.startup()
    try:
        assert len(server.sockets) == 2
        port = http.port_of(server)
        data = await http.exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert http.parse(data)[0].status == 200
    finally:
        await server.shutdown()


# -- lifespan --------------------------------------------------------------------------------------


class LifespanApp:
    def __init__(self, startup: str = "complete", shutdown: str = "complete") -> None:
        self.startup = startup
        self.shutdown = shutdown
        self.events: list[str] = []
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if scope["type"] == "lifespan":
            message = await receive()
            self.events.append(message["type"])
            scope["state"]["pool"] = "connected"
            await send({"type": f"lifespan.startup.{self.startup}", "message": "no database"})
            message = await receive()
            self.events.append(message["type"])
            await send({"type": f"lifespan.shutdown.{self.shutdown}", "message": "could not flush"})
            return
        scope["state"]["mutated"] = True
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": scope["state"]["pool"].encode()})


async def test_lifespan_startup_and_shutdown_with_state(http: SimpleNamespace) -> None:
    app = LifespanApp()
    server = Server(app, local(lifespan="on"))
    await server.startup()
    assert app.events == ["lifespan.startup"]
    try:
        for _ in range(2):
            data = await http.exchange(
                http.port_of(server), b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            assert http.parse(data)[0].body == b"connected"
    finally:
        await server.shutdown()
    assert app.events == ["lifespan.startup", "lifespan.shutdown"]
    lifespan_scope = app.scopes[0]
    assert lifespan_scope["asgi"]["version"] == "3.0"
    # Each request got a copy: what it wrote did not reach the lifespan namespace.
    assert lifespan_scope["state"] == {"pool": "connected"}


async def test_lifespan_startup_failed_stops_the_server() -> None:
    server = Server(LifespanApp(startup="failed"), local(lifespan="auto"))
    with pytest.raises(LifespanFailure, match="no database"):
        await server.startup()
    assert all(sock.fileno() == -1 for sock in server.sockets)


async def test_lifespan_shutdown_failed_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    server = Server(LifespanApp(shutdown="failed"), local(lifespan="on"))
    await server.startup()
    with caplog.at_level(logging.ERROR, logger="channels_server"):
        await server.shutdown()
    assert "could not flush" in caplog.text


async def test_lifespan_auto_with_an_application_that_does_not_support_it(
    apps: SimpleNamespace, http: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"No application configured for scope type {scope['type']!r}")
        await apps.hello(scope, receive, send)

    server = Server(app, local(lifespan="auto"))
    with caplog.at_level(logging.INFO, logger="channels_server"):
        await server.startup()
    try:
        assert "does not support the ASGI lifespan protocol" in caplog.text
        assert "Traceback" not in caplog.text
        data = await http.exchange(
            http.port_of(server), b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert http.parse(data)[0].status == 200
    finally:
        await server.shutdown()


async def test_lifespan_on_with_an_application_that_raises() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise ValueError("no lifespan here")

    server = Server(app, local(lifespan="on"))
    with pytest.raises(LifespanFailure, match="no lifespan here"):
        await server.startup()


async def test_lifespan_off_never_calls_the_application_for_it() -> None:
    app = LifespanApp()
    server = Server(app, local(lifespan="off"))
    await server.startup()
    await server.shutdown()
    assert app.scopes == []


# -- graceful shutdown ----------------------------------------------------------------------------


async def test_graceful_shutdown(http: SimpleNamespace, websocket: SimpleNamespace) -> None:
    """In-flight responses finish, WebSockets get 1012, idle connections close, lifespan ends."""
    release = asyncio.Event()
    order: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            order.append("lifespan.shutdown")
            await send({"type": "lifespan.shutdown.complete"})
        elif scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            message = await receive()
            order.append(f"websocket.disconnect {message['code']}")
        elif scope["path"] == "/slow":
            await receive()
            await release.wait()
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"finished"})
            order.append("slow response")
        else:
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"quick"})

    server = Server(app, local(lifespan="on", shutdown_timeout=5))
    await server.startup()
    port = http.port_of(server)
    ws = await websocket.connect(port)
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
    idle_writer.write(b"GET /quick HTTP/1.1\r\nHost: x\r\n\r\n")
    await http.read_response(idle_reader)
    slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", port)
    slow_writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(0.1)

    shutting_down = asyncio.ensure_future(server.shutdown())
    _, code, _ = await ws.wait_closed()
    assert code == 1012
    # The idle keep-alive connection is closed at once.
    assert await asyncio.wait_for(idle_reader.read(), 5) == b""
    # No new connections.
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    assert not shutting_down.done()
    release.set()
    slow = await asyncio.wait_for(slow_reader.read(), 5)
    (response,) = http.parse(slow)
    assert response.body == b"finished"
    assert response.header(b"connection") == b"close"
    await asyncio.wait_for(shutting_down, 5)
    assert order[-1] == "lifespan.shutdown"
    assert "websocket.disconnect 1012" in order or "websocket.disconnect 1000" in order
    idle_writer.close()
    slow_writer.close()


async def test_shutdown_timeout_cuts_off_slow_responses(
    http: SimpleNamespace, apps: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    app = apps.Stuck()
    cancelled = app.cancelled
    server = Server(app, local(lifespan="off", shutdown_timeout=0.2, application_close_timeout=0.2))
    await server.startup()
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(0.1)
    with caplog.at_level(logging.WARNING, logger="channels_server"):
        await asyncio.wait_for(server.shutdown(), 5)
    assert cancelled.is_set()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert "still open" in caplog.text
    writer.close()


async def test_request_shutdown_from_another_thread(apps: SimpleNamespace) -> None:
    server = Server(apps.hello, local(lifespan="off"))
    serving = asyncio.ensure_future(server.serve())
    await asyncio.sleep(0.1)
    await asyncio.to_thread(server.request_shutdown)
    await asyncio.wait_for(serving, 5)


# -- access log ------------------------------------------------------------------------------------


async def test_access_log_lines(
    apps: SimpleNamespace,
    http: SimpleNamespace,
    websocket: SimpleNamespace,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await receive()
            if scope["path"] == "/reject":
                await send({"type": "websocket.close"})
                return
            await send({"type": "websocket.accept"})
            await receive()
            return
        await apps.hello(scope, receive, send)

    server = Server(app, local(lifespan="off"))
    await server.startup()
    port = http.port_of(server)
    with caplog.at_level(logging.INFO, logger="channels_server.access"):
        await http.exchange(port, b"GET /page?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await http.exchange(port, b"BROKEN\r\n\r\n")
        client = await websocket.connect(port, "/chat/")
        client.close()
        await client.wait_closed()
        with pytest.raises(ConnectionError):
            await websocket.connect(port, "/reject")
        await asyncio.sleep(0.1)
    await server.shutdown()
    lines = [
        record.getMessage() for record in caplog.records if record.name == "channels_server.access"
    ]
    assert any('"GET /page?x=1 HTTP/1.1" 200 13 ' in line for line in lines)
    assert any('" 400 0 ' in line for line in lines)
    assert any('"WSCONNECTING /chat/"' in line for line in lines)
    assert any('"WSCONNECT /chat/"' in line for line in lines)
    assert any('"WSDISCONNECT /chat/"' in line for line in lines)
    assert any('"WSREJECT /reject"' in line for line in lines)
    record = next(r for r in caplog.records if "GET /page" in r.getMessage())
    assert record.status == "200"  # type: ignore[attr-defined]
    assert record.client.startswith("127.0.0.1:")  # type: ignore[attr-defined]
    assert isinstance(record.duration, float)  # type: ignore[attr-defined]
