"""Fixtures for the channels-server tests.

* ``serve``: start a real :class:`~channels_server.Server` on 127.0.0.1, port 0,
  in the test's event loop (every socket test runs on asyncio and on uvloop,
  through the ``event_loop_policy`` fixture);
* ``http``: raw-socket helpers, and an independent parser (an h11 client) for
  what the server sends back;
* ``strategies``: the hypothesis strategies for request lines, headers and
  bodies, in one place (test modules cannot import each other under
  ``--import-mode=importlib``, so they get them through this fixture);
* ``apps``: small ASGI applications the tests serve.

Django is configured here for the runserver and live-server tests (a SQLite
file database in a temporary directory).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import django
import h11
import pytest
import pytest_asyncio
from django.conf import settings
from hypothesis import strategies as st

from channels_server import Config, Server
from channels_server.protocol.http11 import KNOWN_METHODS

# -- Django --------------------------------------------------------------------------------


def pytest_configure() -> None:
    directory = Path(tempfile.mkdtemp(prefix="channels-server-tests-"))
    static_dir = directory / "static"
    static_dir.mkdir()
    (static_dir / "hello.txt").write_text("static hello\n")
    if settings.configured:
        # Another package's conftest configured Django first (one pytest run
        # over several packages): the tests that need more override it.
        _install_test_urls(static_dir)
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="channels-server-tests-not-secret",
        ALLOWED_HOSTS=["*"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(directory / "db.sqlite3"),
                "TEST": {"NAME": str(directory / "test.sqlite3")},
            }
        },
        INSTALLED_APPS=[
            "channels_server",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.staticfiles",
            "channels",
        ],
        MIDDLEWARE=[],
        ROOT_URLCONF="channels_server_test_urls",
        ASGI_APPLICATION="channels_server_test_asgi.application",
        STATIC_URL="/static/",
        STATICFILES_DIRS=[str(static_dir)],
        CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
        USE_TZ=True,
    )
    django.setup()
    _install_test_urls(static_dir)


def _install_test_urls(static_dir: Path) -> None:
    # A URLconf module made here: test modules cannot be imported by name.
    from django.http import HttpResponse
    from django.urls import path

    def hello(request: Any) -> HttpResponse:
        return HttpResponse(f"hello from django {request.method} {request.path}")

    module = types.ModuleType("channels_server_test_urls")
    module.urlpatterns = [path("hello/", hello)]  # type: ignore[attr-defined]
    # What the live-server tests override settings with when they are not these.
    module.TEST_SETTINGS = {  # type: ignore[attr-defined]
        "ROOT_URLCONF": "channels_server_test_urls",
        "ASGI_APPLICATION": "channels_server_test_asgi.application",
        "STATIC_URL": "/static/",
        "STATICFILES_DIRS": [str(static_dir)],
    }
    sys.modules[module.__name__] = module

    # An ASGI_APPLICATION for runserver-style and live-server tests: Django
    # views over HTTP, and consumers over WebSocket (one of them reads the database).
    from django.contrib.auth.models import User
    from django.core.asgi import get_asgi_application

    from channels.db import database_sync_to_async
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import ProtocolTypeRouter, URLRouter

    class EchoConsumer(AsyncWebsocketConsumer):
        async def receive(
            self, text_data: str | None = None, bytes_data: bytes | None = None
        ) -> None:
            await self.send(text_data=text_data, bytes_data=bytes_data)

    class UsersConsumer(AsyncWebsocketConsumer):
        async def receive(
            self, text_data: str | None = None, bytes_data: bytes | None = None
        ) -> None:
            names = await database_sync_to_async(
                lambda: sorted(User.objects.values_list("username", flat=True))
            )()
            await self.send(text_data=",".join(names))

    asgi = types.ModuleType("channels_server_test_asgi")
    asgi.application = ProtocolTypeRouter(  # type: ignore[attr-defined]
        {
            "http": get_asgi_application(),
            "websocket": URLRouter(
                [
                    path("ws/echo/", EchoConsumer.as_asgi()),
                    path("ws/users/", UsersConsumer.as_asgi()),
                ]
            ),
        }
    )
    sys.modules[asgi.__name__] = asgi


# -- event loops ------------------------------------------------------------------------------

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is in the dev environment
    uvloop = None  # type: ignore[assignment]


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """Every asynchronous test runs on asyncio's loop and on uvloop's."""
    factories: dict[str, Any] = {"asyncio": asyncio.new_event_loop}
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


# -- a real server -----------------------------------------------------------------------------

LOCAL = "tcp:port=0:interface=127.0.0.1"


@pytest_asyncio.fixture(params=["h11", "httptools"])
async def serve(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    """``await serve(app, **config)`` starts a server on 127.0.0.1 (a free port), lifespan off.

    Every test that uses it runs with both HTTP parsers.
    """
    servers: list[Server] = []

    async def start(application: Any, **options: Any) -> Server:
        options.setdefault("http", request.param)
        options.setdefault("endpoints", (LOCAL,))
        # Test applications mostly ignore the scope type; lifespan has its own tests.
        options.setdefault("lifespan", "off")
        server = Server(application, Config(**options))
        await server.startup()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.shutdown()


def port_of(server: Server) -> int:
    address = server.addresses[0]
    assert isinstance(address, tuple)
    return address[1]


# -- raw sockets and an independent parser -----------------------------------------------------


class ParsedResponse(SimpleNamespace):
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


def parse_responses(
    data: bytes, *, method: bytes = b"GET", count: int | None = None
) -> list[ParsedResponse]:
    """Parse the responses in *data* with an h11 client (not the server's own code)."""
    client = h11.Connection(h11.CLIENT)
    responses: list[ParsedResponse] = []
    client.receive_data(data)
    eof_sent = False
    while count is None or len(responses) < count:
        client.send(h11.Request(method=method, target="/", headers=[("host", "x")]))
        client.send(h11.EndOfMessage())
        current: ParsedResponse | None = None
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA:
                if current is None or eof_sent:
                    return responses
                # A body delimited by the end of the connection.
                client.receive_data(b"")
                eof_sent = True
                continue
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                current = ParsedResponse(
                    status=event.status_code, headers=list(event.headers), body=b""
                )
            elif isinstance(event, h11.Data):
                assert current is not None
                current.body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                assert current is not None
                responses.append(current)
                break
            else:
                return responses
        if client.their_state is not h11.DONE or client.our_state is not h11.DONE:
            break
        client.start_next_cycle()
    return responses


async def exchange(port: int, data: bytes, *, timeout: float = 5) -> bytes:
    """Send *data* and read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader, timeout: float = 5) -> bytes:
    """Read one response head plus a Content-Length body (enough for the tests' servers)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await asyncio.wait_for(reader.readexactly(length), timeout) if length else b""
    return head + body


@pytest.fixture
def http() -> SimpleNamespace:
    return SimpleNamespace(
        parse=parse_responses,
        exchange=exchange,
        read_response=read_response,
        port_of=port_of,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- hypothesis strategies --------------------------------------------------------------------

_TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PATH_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/"

# Every method both parsers know (the server answers any other 501), but
# CONNECT, whose target is an authority and whose body would be a tunnel's.
methods = st.sampled_from(sorted(method.decode() for method in KNOWN_METHODS - {b"CONNECT"}))
tokens = st.text(alphabet=_TOKEN_CHARS, min_size=1, max_size=20)
# Header names that change framing are generated by the tests that want them.
header_names = tokens.filter(
    lambda name: (
        name.lower()
        not in {
            "content-length",
            "transfer-encoding",
            "host",
            "connection",
            "expect",
            "upgrade",
            "te",
        }
    )
)
# A valid field value: visible ASCII with inner spaces and tabs, no leading or trailing whitespace.
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40
).map(lambda value: value) | st.lists(
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=8),
    min_size=2,
    max_size=4,
).map(" ".join)
headers = st.lists(st.tuples(header_names, header_values), max_size=20)
paths = st.text(alphabet=_PATH_CHARS, max_size=60).map(lambda path: "/" + path.lstrip("/"))
percent_encoded_paths = st.text(max_size=20).map(
    lambda text: "/" + "".join(f"%{byte:02X}" for byte in text.encode("utf-8"))
)
queries = st.text(alphabet=_PATH_CHARS + "?", max_size=40)
bodies = st.binary(max_size=3000)
# The bytes the tests forbid in header values, one per draw.
forbidden_bytes = st.sampled_from(
    [b"\x00", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x85", b"\x01", b"\x7f"]
)
# Where to cut a byte string into the pieces a socket delivers.
split_points = st.lists(st.integers(min_value=0, max_value=10_000), max_size=8)


def split_bytes(data: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted({point % (len(data) + 1) for point in points})
    pieces, last = [], 0
    for cut in cuts:
        pieces.append(data[last:cut])
        last = cut
    pieces.append(data[last:])
    return [piece for piece in pieces if piece]


def chunked(body: bytes, sizes: list[int]) -> bytes:
    """*body* in chunked transfer coding, cut at *sizes*."""
    out, position = [], 0
    for size in sizes:
        if position >= len(body):
            break
        piece = body[position : position + max(size, 1)]
        out.append(b"%x\r\n%b\r\n" % (len(piece), piece))
        position += len(piece)
    if position < len(body):
        rest = body[position:]
        out.append(b"%x\r\n%b\r\n" % (len(rest), rest))
    out.append(b"0\r\n\r\n")
    return b"".join(out)


@pytest.fixture(scope="session")
def strategies() -> SimpleNamespace:
    return SimpleNamespace(
        methods=methods,
        tokens=tokens,
        header_names=header_names,
        header_values=header_values,
        headers=headers,
        paths=paths,
        percent_encoded_paths=percent_encoded_paths,
        queries=queries,
        bodies=bodies,
        forbidden_bytes=forbidden_bytes,
        split_points=split_points,
        split_bytes=split_bytes,
        chunked=chunked,
    )


# -- applications -----------------------------------------------------------------------------


async def read_body(receive: Callable[[], Awaitable[dict[str, Any]]]) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client disconnected")
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def hello_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await read_body(receive)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"Hello, world!"})


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """HTTP: the body back; WebSocket: accept, then every message back."""
    if scope["type"] == "http":
        body = await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send(
                {
                    "type": "websocket.send",
                    "text": message.get("text"),
                    "bytes": message.get("bytes"),
                }
            )


@pytest.fixture
def apps() -> SimpleNamespace:
    return SimpleNamespace(hello=hello_app, echo=echo_app, read_body=read_body)


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture
def tmp_socket_path() -> str:
    # Not tmp_path: unix socket paths are limited to about 100 bytes.
    directory = tempfile.mkdtemp(prefix="cs-sock-")
    return os.path.join(directory, "server.sock")


# -- in-memory client/server pairs for the sans-IO engines ------------------------------------


class HTTPPair:
    """An h11 client talking to the server's HTTP engine, in memory."""

    def __init__(self, engine_class: Any = None, **limits: int) -> None:
        from channels_server.protocol.http11 import HTTP11Connection, HTTPLimits

        self.client = h11.Connection(h11.CLIENT)
        self.server = (engine_class or HTTP11Connection)(HTTPLimits(**limits), b"server: test\r\n")

    def send(self, *events: Any) -> None:
        for event in events:
            data = self.client.send(event)
            if data:
                self.server.receive_data(data)

    def server_events(self) -> list[Any]:
        from channels_server.protocol.http11 import NEED_DATA, PAUSED

        found = []
        while True:
            event = self.server.next_event()
            if event is NEED_DATA or event is PAUSED:
                found.append(event)
                return found
            found.append(event)

    def deliver(self, data: bytes) -> list[Any]:
        """Give the server's bytes to the client; the client's events."""
        self.client.receive_data(data)
        found = []
        while True:
            event = self.client.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return found
            found.append(event)
            if isinstance(event, h11.ConnectionClosed):
                return found


class WebSocketPair:
    """A wsproto client talking to the server's WebSocket engine, in memory."""

    def __init__(self, max_message_size: int = 1 << 20, max_frame_size: int = 1 << 20) -> None:
        from wsproto.connection import Connection, ConnectionType

        from channels_server.protocol.websocket import WebSocketConnection

        self.client = Connection(ConnectionType.CLIENT)
        self.server = WebSocketConnection(max_message_size, max_frame_size)

    def client_sends(self, *events: Any) -> tuple[list[Any], bytes]:
        data = b"".join(self.client.send(event) for event in events)
        return self.server.receive_data(data)

    def client_receives(self, data: bytes) -> list[Any]:
        self.client.receive_data(data)
        return list(self.client.events())


@pytest.fixture
def pairs() -> SimpleNamespace:
    return SimpleNamespace(http=HTTPPair, websocket=WebSocketPair)


# -- an independent WebSocket client (autobahn, on asyncio) --------------------------------------


class AutobahnClient:
    """An autobahn WebSocket client connection with an awaitable interface."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[str | bytes] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[Any] = loop.create_future()
        self.closed: asyncio.Future[tuple[bool, int | None, str | None]] = loop.create_future()
        self.protocol: Any = None

    async def receive(self, timeout: float = 5) -> str | bytes:
        return await asyncio.wait_for(self.messages.get(), timeout)

    def send_text(self, text: str) -> None:
        self.protocol.sendMessage(text.encode("utf-8"), isBinary=False)

    def send_bytes(self, data: bytes) -> None:
        self.protocol.sendMessage(data, isBinary=True)

    def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.protocol.sendClose(code=code, reason=reason)

    async def wait_closed(self, timeout: float = 5) -> tuple[bool, int | None, str | None]:
        return await asyncio.wait_for(asyncio.shield(self.closed), timeout)


async def ws_connect(
    port: int,
    path: str = "/",
    *,
    subprotocols: list[str] | None = None,
    headers: dict[str, str] | None = None,
    max_message_size: int = 0,
    timeout: float = 5,
) -> AutobahnClient:
    """Open a WebSocket with autobahn; the result's ``opened`` fails if the handshake does."""
    from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

    client = AutobahnClient()

    class Protocol(WebSocketClientProtocol):  # type: ignore[misc]
        def onConnect(self, response: Any) -> None:
            client.protocol = self
            if not client.opened.done():
                client.opened.set_result(response)

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            client.messages.put_nowait(payload if isBinary else payload.decode("utf-8"))

        def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
            client.protocol = client.protocol or self
            if not client.opened.done():
                client.opened.set_exception(ConnectionError(f"handshake failed: {code} {reason}"))
            if not client.closed.done():
                client.closed.set_result((wasClean, code, reason))

    factory = WebSocketClientFactory(
        f"ws://127.0.0.1:{port}{path}", protocols=subprotocols or None, headers=headers or None
    )
    factory.setProtocolOptions(
        maxMessagePayloadSize=max_message_size, maxFramePayloadSize=max_message_size
    )
    factory.protocol = Protocol
    await asyncio.get_running_loop().create_connection(factory, "127.0.0.1", port)
    await asyncio.wait_for(asyncio.shield(client.opened), timeout)
    return client


@pytest.fixture
def websocket() -> SimpleNamespace:
    return SimpleNamespace(connect=ws_connect)
