"""WebSocket over real sockets, with autobahn as the independent client.

Raw-socket tests (a wsproto client for framing) cover what a well-behaved
client cannot do: frames before the handshake is answered, silence after a ping.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from channels_server.errors import ApplicationError, ClientDisconnected

pytestmark = pytest.mark.asyncio

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def handshake(path: bytes = b"/ws", *extra: bytes) -> bytes:
    return (
        b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: "
        + KEY
        + b"\r\nSec-WebSocket-Version: 13\r\n"
        + b"".join(line + b"\r\n" for line in extra)
        + b"\r\n"
    )


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.frames = Connection(ConnectionType.CLIENT)

    @classmethod
    async def open(cls, port: int, request: bytes, *, then: bytes = b"") -> tuple[RawClient, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request + then)
        client = cls(reader, writer)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        return client, head

    def send(self, event: Any) -> None:
        self.writer.write(self.frames.send(event))

    async def events_until_close(self, timeout: float = 5) -> tuple[list[Any], CloseConnection]:
        """The events up to and including the server's close frame; and that close."""
        seen: list[Any] = []
        while not any(isinstance(event, CloseConnection) for event in seen):
            seen += await self.events(timeout)
        (close,) = [event for event in seen if isinstance(event, CloseConnection)]
        return seen, close

    async def events(self, timeout: float = 5) -> list[Any]:
        data = await asyncio.wait_for(self.reader.read(65536), timeout)
        if not data:
            self.frames.receive_data(None)
        else:
            self.frames.receive_data(data)
        return list(self.frames.events())


async def _accept_and_wait(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accept, then wait for one message (the disconnect)."""
    await receive()
    await send({"type": "websocket.accept"})
    await receive()


async def test_echo_and_the_websocket_scope(
    serve: Any, http: SimpleNamespace, websocket: SimpleNamespace, apps: SimpleNamespace
) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        assert await receive() == {"type": "websocket.connect"}
        await apps.echo_websocket(receive, send)

    server = await serve(app)
    port = http.port_of(server)
    client = await websocket.connect(port, "/chat/r%C3%A9/?token=1", subprotocols=["v1", "v2"])
    client.send_text("hello ✓")
    assert await client.receive() == "hello ✓"
    client.send_bytes(b"\x00\xff")
    assert await client.receive() == b"\x00\xff"
    big = "x" * 200_000
    client.send_text(big)
    assert await client.receive() == big
    client.close()
    assert (await client.wait_closed())[1] == 1000
    (scope,) = scopes
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/chat/ré/"
    assert scope["raw_path"] == b"/chat/r%C3%A9/"
    assert scope["query_string"] == b"token=1"
    assert scope["root_path"] == ""
    assert scope["subprotocols"] == ["v1", "v2"]
    # Lists, as daphne gives them.
    assert type(scope["client"]) is list
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"] == ["127.0.0.1", port]
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert scope["state"] == {}
    assert (b"upgrade", b"WebSocket") in scope["headers"]


async def test_accept_with_subprotocol_and_headers(
    serve: Any, http: SimpleNamespace, websocket: SimpleNamespace
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send(
            {"type": "websocket.accept", "subprotocol": "v2", "headers": [(b"x-extra", b"yes")]}
        )
        await receive()

    server = await serve(app)
    client = await websocket.connect(http.port_of(server), "/", subprotocols=["v1", "v2"])
    response = client.opened.result()
    assert response.protocol == "v2"
    assert response.headers["x-extra"] == "yes"
    client.close()


async def test_application_close_code_and_reason(
    serve: Any, http: SimpleNamespace, websocket: SimpleNamespace
) -> None:
    after_close: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4321, "reason": "go away"})
        # A second close is harmless.
        await send({"type": "websocket.close"})
        after_close.append(await receive())

    server = await serve(app)
    client = await websocket.connect(http.port_of(server))
    was_clean, code, reason = await client.wait_closed()
    assert (was_clean, code, reason) == (True, 4321, "go away")
    await asyncio.sleep(0.1)
    # RFC 6455 §7.1.5: the connection's close code is the one in the close
    # frame received, here autobahn's reply (it answers 1000 by default).
    assert after_close == [{"type": "websocket.disconnect", "code": 1000, "reason": ""}]
    assert type(after_close[0]["code"]) is int


async def test_client_close_code_and_reason_reach_the_application(
    serve: Any, http: SimpleNamespace, websocket: SimpleNamespace
) -> None:
    received: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        received.set_result(await receive())
        with pytest.raises(ClientDisconnected):
            await send({"type": "websocket.send", "text": "too late"})

    server = await serve(app)
    client = await websocket.connect(http.port_of(server))
    client.close(3001, "bye now")
    assert await asyncio.wait_for(received, 5) == {
        "type": "websocket.disconnect",
        "code": 3001,
        "reason": "bye now",
    }
    assert (await client.wait_closed())[1] == 3001


async def test_lost_connection_is_1006(serve: Any, http: SimpleNamespace) -> None:
    received: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        received.set_result(await receive())

    server = await serve(app)
    client, head = await RawClient.open(http.port_of(server), handshake())
    assert head.startswith(b"HTTP/1.1 101")
    client.writer.transport.abort()
    assert (await asyncio.wait_for(received, 5))["code"] == 1006


async def test_close_before_accept_is_403(
    serve: Any, http: SimpleNamespace, websocket: SimpleNamespace
) -> None:
    disconnects: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close"})
        disconnects.append(await receive())

    server = await serve(app)
    data = await http.exchange(http.port_of(server), handshake())
    assert data.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    with pytest.raises(ConnectionError, match="403"):
        await websocket.connect(http.port_of(server))
    assert disconnects[0]["type"] == "websocket.disconnect"


async def test_denial_response_extension(serve: Any, http: SimpleNamespace) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"www-authenticate", b"Bearer")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"log in ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"first"})

    server = await serve(app)
    data = await http.exchange(http.port_of(server), handshake())
    (response,) = http.parse(data)
    assert response.status == 401
    assert response.header(b"www-authenticate") == b"Bearer"
    assert response.body == b"log in first"


async def test_message_over_the_limit_is_closed_with_1009(
    serve: Any, http: SimpleNamespace, websocket: SimpleNamespace
) -> None:
    received: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            received.append(message)
            if message["type"] == "websocket.disconnect":
                return

    server = await serve(app, websocket_max_message_size=1000, websocket_max_frame_size=1000)
    client = await websocket.connect(http.port_of(server))
    client.send_bytes(b"a" * 1000)
    client.send_bytes(b"b" * 1001)
    _, code, _ = await client.wait_closed()
    assert code == 1009
    await asyncio.sleep(0.1)
    assert received[0] == {"type": "websocket.receive", "bytes": b"a" * 1000}
    assert received[-1]["type"] == "websocket.disconnect"
    assert received[-1]["code"] == 1009
    assert len(received) == 2


async def test_application_exception_after_accept_is_1011(
    serve: Any, http: SimpleNamespace, websocket: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        raise ValueError("consumer bug")

    server = await serve(app)
    client = await websocket.connect(http.port_of(server))
    with caplog.at_level(logging.ERROR, logger="channels_server"):
        client.send_text("trigger")
        _, code, _ = await client.wait_closed()
    assert code == 1011
    assert "ValueError: consumer bug" in caplog.text
    # The server goes on.
    again = await websocket.connect(http.port_of(server))
    again.close()


async def test_application_exception_before_accept_is_500(
    serve: Any, http: SimpleNamespace
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("before accept")

    server = await serve(app)
    data = await http.exchange(http.port_of(server), handshake())
    assert data.startswith(b"HTTP/1.1 500 ")


async def test_application_returning_closes_with_1000(
    serve: Any, http: SimpleNamespace, websocket: SimpleNamespace
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "bye"})

    server = await serve(app)
    client = await websocket.connect(http.port_of(server))
    assert await client.receive() == "bye"
    assert (await client.wait_closed())[1] == 1000


async def test_connect_timeout_rejects(serve: Any, http: SimpleNamespace) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await asyncio.sleep(30)

    server = await serve(app, websocket_connect_timeout=0.2, application_close_timeout=0.2)
    data = await http.exchange(http.port_of(server), handshake())
    assert data.startswith(b"HTTP/1.1 403 ")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (
            handshake(b"/", b"Sec-WebSocket-Version: 8").replace(
                b"Sec-WebSocket-Version: 13\r\n", b""
            ),
            426,
        ),
        (handshake().replace(b"Sec-WebSocket-Key: " + KEY, b"Sec-WebSocket-Key: short"), 400),
        (handshake().replace(b"GET", b"POST"), 400),
    ],
)
async def test_invalid_handshakes_never_reach_the_application(
    serve: Any, http: SimpleNamespace, request_bytes: bytes, status: int
) -> None:
    calls: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope)

    server = await serve(app)
    data = await http.exchange(http.port_of(server), request_bytes)
    (response,) = http.parse(data)
    assert response.status == status
    if status == 426:
        assert response.header(b"sec-websocket-version") == b"13"
    assert calls == []


async def test_frames_sent_before_the_accept_are_kept(serve: Any, http: SimpleNamespace) -> None:
    accept = asyncio.Event()
    received: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await accept.wait()
        await send({"type": "websocket.accept"})
        received.append(await receive())
        received.append(await receive())

    server = await serve(app)
    early = Connection(ConnectionType.CLIENT)
    frames = early.send(TextMessage(data="early")) + early.send(BytesMessage(data=b"bird"))
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    writer.write(handshake() + frames)
    await asyncio.sleep(0.1)
    accept.set()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101")
    await asyncio.sleep(0.1)
    assert received == [
        {"type": "websocket.receive", "text": "early"},
        {"type": "websocket.receive", "bytes": b"bird"},
    ]
    writer.close()


async def test_keepalive_ping_and_ping_timeout(serve: Any, http: SimpleNamespace) -> None:
    disconnected: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        disconnected.set_result(await receive())

    server = await serve(app, ping_interval=0.2, ping_timeout=0.3)
    client, _ = await RawClient.open(http.port_of(server), handshake())
    events = await client.events()
    assert isinstance(events[0], Ping)
    # Never answered: the connection is dropped after the ping timeout.
    message = await asyncio.wait_for(disconnected, 5)
    assert message["code"] == 1006
    client.writer.close()


async def test_answered_pings_keep_the_connection(
    serve: Any, http: SimpleNamespace, websocket: SimpleNamespace
) -> None:
    server = await serve(_accept_and_wait, ping_interval=0.1, ping_timeout=0.2)
    client = await websocket.connect(http.port_of(server))
    await asyncio.sleep(0.8)
    assert not client.closed.done()
    client.close()


async def test_websocket_timeout_closes_the_connection(
    serve: Any, http: SimpleNamespace, websocket: SimpleNamespace
) -> None:
    server = await serve(_accept_and_wait, websocket_timeout=0.3, ping_interval=0.1)
    client = await websocket.connect(http.port_of(server))
    _, code, _ = await client.wait_closed()
    assert code == 1000


async def test_client_that_never_answers_our_close_is_dropped(
    serve: Any, http: SimpleNamespace
) -> None:
    done = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        await receive()
        done.set()

    server = await serve(app, websocket_close_timeout=0.2)
    client, _ = await RawClient.open(http.port_of(server), handshake())
    events = await client.events()
    assert isinstance(events[0], CloseConnection)
    # No close frame back: the server drops the connection itself.
    assert await asyncio.wait_for(client.reader.read(), 5) == b""
    await asyncio.wait_for(done.wait(), 5)
    client.writer.close()


async def test_application_ignoring_disconnect_is_cancelled(
    serve: Any,
    http: SimpleNamespace,
    websocket: SimpleNamespace,
    apps: SimpleNamespace,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = apps.Stuck()
    cancelled = app.cancelled
    server = await serve(app, application_close_timeout=0.2)
    client = await websocket.connect(http.port_of(server), "/stuck")
    with caplog.at_level(logging.WARNING, logger="channels_server"):
        client.close()
        await asyncio.wait_for(cancelled.wait(), 5)
    assert "still running" in caplog.text
    assert "/stuck" in caplog.text


async def test_invalid_websocket_messages(serve: Any, http: SimpleNamespace) -> None:
    errors: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        for message in (
            {"type": "websocket.send", "text": "before accept"},
            {"type": "http.response.start", "status": 200},
        ):
            try:
                await send(message)
            except (ApplicationError, ClientDisconnected) as exc:
                errors.append(str(exc))
        await send({"type": "websocket.accept"})
        for message in (
            {"type": "websocket.send"},
            {"type": "websocket.send", "text": "a", "bytes": b"b"},
            {"type": "websocket.send", "text": b"bytes as text"},
            {"type": "websocket.close", "code": 1005},
            {"type": "websocket.accept"},
        ):
            try:
                await send(message)
            except (ApplicationError, ClientDisconnected) as exc:
                errors.append(str(exc))
        await send({"type": "websocket.close"})

    server = await serve(app)
    client, _ = await RawClient.open(http.port_of(server), handshake())
    await asyncio.sleep(0.2)
    assert errors == [
        "Cannot send 'websocket.send' now: the WebSocket is connecting",
        "Unexpected ASGI message type 'http.response.start' in a websocket scope (expected "
        "'websocket.accept', 'websocket.send', 'websocket.close' or "
        "'websocket.http.response.start'/'.body')",
        "websocket.send needs exactly one of 'text' (str) or 'bytes' (bytes)",
        "websocket.send needs exactly one of 'text' (str) or 'bytes' (bytes)",
        "websocket.send needs exactly one of 'text' (str) or 'bytes' (bytes)",
        "WebSocket close code 1005 cannot be sent (use 1000-1003, 1007-1014 or 3000-4999)",
        "Cannot send 'websocket.accept' now: the WebSocket is open",
    ]
    client.writer.close()


async def test_lifetime_limit_does_not_cut_a_pings_time_short(
    serve: Any, http: SimpleNamespace
) -> None:
    """A ping has its whole ping_timeout, even when the timer wakes earlier for the lifetime."""

    server = await serve(_accept_and_wait, ping_interval=0.1, ping_timeout=5, websocket_timeout=0.5)
    client, _ = await RawClient.open(http.port_of(server), handshake())
    seen, close = await client.events_until_close()
    # The unanswered ping did not drop the connection: the lifetime closed it, cleanly.
    assert isinstance(seen[0], Ping)
    assert close.code == 1000
    client.writer.close()


# -- daphne's timing: lifetime, ping interval, ping timeout ----------------------------------------
# Intervals are fractions of a second; the bounds leave seconds of slack for a
# loaded machine and still tell the old behaviour (tens of seconds) apart.


async def test_websocket_timeout_closes_on_time_whatever_the_ping_interval(
    serve: Any, http: SimpleNamespace
) -> None:
    # The default ping interval (20 s) is far longer than the lifetime: the
    # lifetime is not only checked when a ping falls due.
    server = await serve(_accept_and_wait, websocket_timeout=0.4)
    loop = asyncio.get_running_loop()
    started = loop.time()
    client, head = await RawClient.open(http.port_of(server), handshake())
    assert head.startswith(b"HTTP/1.1 101")
    _, close = await client.events_until_close(timeout=10)
    elapsed = loop.time() - started
    assert close.code == 1000
    assert 0.3 <= elapsed < 5, elapsed
    client.writer.close()


async def test_pings_go_out_every_ping_interval_to_an_idle_client(
    serve: Any, http: SimpleNamespace
) -> None:
    # The client answers every ping, and sends nothing else: a ping every
    # 0.4 s, not every ping_interval + ping_timeout (3.4 s).
    server = await serve(_accept_and_wait, ping_interval=0.4, ping_timeout=3)
    loop = asyncio.get_running_loop()
    client, _ = await RawClient.open(http.port_of(server), handshake())
    pings: list[float] = []
    while len(pings) < 4:
        for event in await client.events(timeout=10):
            if isinstance(event, Ping):
                pings.append(loop.time())
                client.send(event.response())
        await client.writer.drain()
    gaps = [later - earlier for earlier, later in itertools.pairwise(pings)]
    assert all(0.3 <= gap < 2 for gap in gaps), gaps
    client.writer.close()


async def test_messages_postpone_pings(serve: Any, http: SimpleNamespace) -> None:
    # As daphne: a ping goes out only after ping_interval without messages.
    async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message["text"]})

    server = await serve(echo, ping_interval=1.0, ping_timeout=5)
    client, _ = await RawClient.open(http.port_of(server), handshake())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2.5
    while loop.time() < deadline:
        client.send(TextMessage(data="tick"))
        events = await client.events(timeout=5)
        assert not any(isinstance(event, Ping) for event in events), events
        await asyncio.sleep(0.1)
    # Then silence: the ping comes.
    events: list[Any] = []
    while not events:
        events = [event for event in await client.events(timeout=10) if isinstance(event, Ping)]
    client.writer.close()


async def test_a_ping_unanswered_for_ping_timeout_drops_the_connection(
    serve: Any, http: SimpleNamespace
) -> None:
    server = await serve(_accept_and_wait, ping_interval=0.2, ping_timeout=0.6)
    loop = asyncio.get_running_loop()
    client, _ = await RawClient.open(http.port_of(server), handshake())
    events = await client.events(timeout=10)
    assert isinstance(events[0], Ping)
    pinged = loop.time()
    # Never answered: the server drops the connection (no close handshake).
    while await asyncio.wait_for(client.reader.read(65536), 10):
        pass
    assert 0.3 <= loop.time() - pinged < 4
    client.writer.close()
