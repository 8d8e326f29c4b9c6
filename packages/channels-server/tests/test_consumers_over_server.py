"""Channels consumers served by channels-server, with a real client over a real socket.

The server follows ASGI www spec 2.4: ``send()`` on a closed connection raises
``ClientDisconnected`` (an ``OSError``). Daphne ignores such a send instead,
and consumers written for Channels count on that: a group event that arrives
just after the client left must not keep the consumer from leaving its groups
and running ``disconnect()``. These tests check that the two packages together
keep that promise.

The race they reproduce: the client is gone and the server has its
disconnect event ready, but a handler of the consumer sends before the
consumer has read that event. A wrapper around the application holds the
disconnect event back until the handler is done, so the race goes the same
way every time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer
from channels.layers import InMemoryChannelLayer, get_channel_layer

pytestmark = pytest.mark.asyncio

IN_MEMORY = {"BACKEND": "channels.layers.InMemoryChannelLayer"}


@pytest.fixture
def layer(settings: Any) -> InMemoryChannelLayer:
    """A fresh in-memory layer as "default" (changing the setting drops the old one)."""
    settings.CHANNEL_LAYERS = {"default": IN_MEMORY}
    found = get_channel_layer()
    assert isinstance(found, InMemoryChannelLayer)
    return found


class Race:
    """The two moments the tests order: the client has gone, and the late handler is done."""

    def __init__(self) -> None:
        # Set when the server hands over its disconnect event: the server
        # refuses sends from then on. Two flavours, for async and sync handlers.
        self.client_left_on_loop = asyncio.Event()
        self.client_left_in_thread = threading.Event()
        # Set when the handler that sends too late has been dispatched.
        self.late_handler_done = asyncio.Event()


class Served:
    """*consumer* (given *record* and this wrapper's race) as an ASGI application,
    wrapped to report how it ended, and to deliver the server's disconnect
    event only once the late handler is done."""

    def __init__(self, consumer: type[Any], record: list[Any]) -> None:
        self.race = Race()
        self.application = consumer.as_asgi(record=record, race=self.race)
        self.ended = asyncio.Event()
        self.error: BaseException | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        race = self.race

        async def receive_late_disconnect() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            if message["type"] in ("websocket.disconnect", "http.disconnect"):
                race.client_left_on_loop.set()
                race.client_left_in_thread.set()
                await race.late_handler_done.wait()
            return message

        try:
            await self.application(scope, receive_late_disconnect, send)
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self.ended.set()

    async def wait(self, timeout: float = 5) -> None:
        await asyncio.wait_for(self.ended.wait(), timeout)


def groups_holding(consumer: Any) -> list[str]:
    layer = consumer.channel_layer
    assert isinstance(layer, InMemoryChannelLayer)
    return sorted(
        group for group, members in layer.groups.items() if consumer.channel_name in members
    )


def consumer_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "channels.consumer"]


def loud_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


# -- WebSocket: a group message for a client that has just left ----------------------------


class SignalsLateHandler:
    """Sets ``race.late_handler_done`` once the late handler has been dispatched:
    on the loop, after its sends have gone out (or been refused)."""

    race: Race | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        try:
            await super().dispatch(message)  # type: ignore[misc]
        finally:
            if self.is_late(message) and self.race is not None:
                self.race.late_handler_done.set()

    def is_late(self, message: dict[str, Any]) -> bool:
        return bool(message.get("late"))


class AsyncRoom(SignalsLateHandler, AsyncWebsocketConsumer):
    groups = ["room"]
    record: list[Any] = []

    async def chat_message(self, event: dict[str, Any]) -> None:
        if event["late"]:
            assert self.race is not None
            await self.race.client_left_on_loop.wait()
        await self.send(text_data=event["text"])
        self.record.append(("sent", event["text"]))

    async def disconnect(self, code: int) -> None:
        self.record.append(("disconnect", code, groups_holding(self)))


class SyncRoom(SignalsLateHandler, WebsocketConsumer):
    groups = ["room"]
    record: list[Any] = []

    def chat_message(self, event: dict[str, Any]) -> None:
        if event["late"]:
            assert self.race is not None
            assert self.race.client_left_in_thread.wait(5)
        self.send(text_data=event["text"])
        self.record.append(("sent", event["text"]))

    def disconnect(self, code: int) -> None:
        self.record.append(("disconnect", code, groups_holding(self)))


@pytest.mark.parametrize("cls", [AsyncRoom, SyncRoom], ids=["async", "sync"])
async def test_a_group_message_after_the_client_left_still_runs_disconnect(
    cls: type[Any],
    layer: InMemoryChannelLayer,
    serve: Any,
    http: SimpleNamespace,
    websocket: SimpleNamespace,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    record: list[Any] = []
    app = Served(cls, record)
    server = await serve(app)
    client = await websocket.connect(http.port_of(server), "/ws/room/")
    await layer.group_send("room", {"type": "chat.message", "text": "welcome", "late": False})
    assert await client.receive() == "welcome"

    # A group message arrives; its handler sends only once the client has
    # left, and the consumer reads the server's websocket.disconnect after.
    await layer.group_send("room", {"type": "chat.message", "text": "too late", "late": True})
    client.close(1000)
    assert (await client.wait_closed())[:2] == (True, 1000)
    await app.wait()

    assert record == [
        ("sent", "welcome"),
        # The handler went on after the refused send ...
        ("sent", "too late"),
        # ... and the groups were left, then disconnect() ran.
        ("disconnect", 1000, []),
    ]
    assert app.error is None
    assert "room" not in layer.groups
    # The server did refuse the send (the consumer says so at DEBUG), and
    # nobody logged anything louder.
    (dropped,) = consumer_logs(caplog)
    assert dropped.levelno == logging.DEBUG
    assert "ClientDisconnected" in dropped.getMessage()
    assert loud_logs(caplog) == []


# -- HTTP: a long poll answered after the client left -----------------------------------


class LongPoll(SignalsLateHandler, AsyncHttpConsumer):
    record: list[Any] = []

    async def handle(self, body: bytes) -> None:
        assert self.channel_layer is not None
        await self.channel_layer.group_add("notices", self.channel_name)
        await self.send_headers(headers=[(b"content-type", b"text/plain")])
        await self.send_body(b"", more_body=True)
        self.record.append("waiting")

    def is_late(self, message: dict[str, Any]) -> bool:
        return bool(message["type"] == "notice.posted")

    async def notice_posted(self, event: dict[str, Any]) -> None:
        assert self.race is not None
        await self.race.client_left_on_loop.wait()
        await self.send_body(event["text"].encode())
        self.record.append("answered")

    async def disconnect(self) -> None:
        assert self.channel_layer is not None
        await self.channel_layer.group_discard("notices", self.channel_name)
        self.record.append("disconnect")


async def test_a_long_poll_answered_after_the_client_left_stops_cleanly(
    layer: InMemoryChannelLayer,
    serve: Any,
    http: SimpleNamespace,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    record: list[Any] = []
    app = Served(LongPoll, record)
    server = await serve(app)
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    writer.write(b"GET /poll/ HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200")

    await layer.group_send("notices", {"type": "notice.posted", "text": "too late"})
    writer.close()
    await writer.wait_closed()
    await app.wait()

    assert record == ["waiting", "answered", "disconnect"]
    assert app.error is None
    assert "notices" not in layer.groups
    (dropped,) = consumer_logs(caplog)
    assert "ClientDisconnected" in dropped.getMessage()
    assert loud_logs(caplog) == []
