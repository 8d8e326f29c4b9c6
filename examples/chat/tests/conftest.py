"""Fixtures for the chat example's tests.

pytest-django loads ``mysite.settings`` (see ``pyproject.toml``). The test
database is a SQLite file in a temporary directory, and every test gets a
fresh in-memory channel layer, so no test sees another's groups or events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import InMemoryChannelLayer, channel_layers
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client

#: The Origin a page served by the test server sends with its handshake.
ORIGIN_HEADER = (b"origin", b"http://testserver")

OpenSocket = Callable[..., Awaitable[WebsocketCommunicator]]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Put the test database in a temporary file of this run's own.

    (A file, not SQLite's in-memory database, so that the threads running
    database code for async consumers see the test's data.)
    """
    directory: Path = tmp_path_factory.mktemp("chat-db")
    # The connection's own settings: Django has already filled in the defaults.
    connections["default"].settings_dict["TEST"]["NAME"] = str(directory / "test.sqlite3")


@pytest.fixture(autouse=True)
def channel_layer() -> Iterator[InMemoryChannelLayer]:
    """A fresh in-memory layer as the "default" one, for this test only."""
    layer = InMemoryChannelLayer()
    channel_layers.set(DEFAULT_CHANNEL_LAYER, layer)
    yield layer
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)


@pytest.fixture
def application() -> Any:
    """The project's ASGI application, as a server would load it."""
    from mysite.asgi import application

    return application


def socket_path(room_name: str) -> str:
    # safe="": a "/" or "?" in the name must stay inside the path segment,
    # as the page's encodeURIComponent keeps it.
    return f"/ws/chat/{quote(room_name, safe='')}/"


@pytest_asyncio.fixture
async def open_socket(application: Any) -> AsyncIterator[OpenSocket]:
    """``await open_socket(room, headers=[...])``: a connected chat socket.

    The handshake carries the test server's Origin plus *headers*. Sockets
    still open at the end of the test are closed.
    """
    opened: list[WebsocketCommunicator] = []

    async def open_(room_name: str, headers: list[tuple[bytes, bytes]] | None = None) -> Any:
        communicator = WebsocketCommunicator(
            application, socket_path(room_name), headers=[ORIGIN_HEADER, *(headers or [])]
        )
        opened.append(communicator)
        connected, detail = await communicator.connect()
        if not connected:
            raise AssertionError(f"the chat socket for {room_name!r} was refused: {detail!r}")
        return communicator

    yield open_
    for communicator in opened:
        if not communicator.future.done():
            await communicator.disconnect()


@pytest.fixture
def login_cookie(django_user_model: Any) -> Callable[[str], tuple[bytes, bytes]]:
    """``login_cookie(username)``: a Cookie header with a session logged in as a new user.

    The session is made by Django's test ``Client``, as a browser gets one by
    logging in on the site.
    """

    def make(username: str) -> tuple[bytes, bytes]:
        try:
            user = django_user_model.objects.create_user(username=username, password="unused-pw-1")
            client = Client()
            client.force_login(user)
        finally:
            # Called from a thread of its own in async tests: close what it opened
            # there rather than leave it to the garbage collector.
            connections.close_all()
        session_id = client.cookies[settings.SESSION_COOKIE_NAME].value
        return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session_id}".encode())

    return make
