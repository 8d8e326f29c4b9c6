"""channels.generic.websocket: the four WebSocket consumers, through a WebsocketCommunicator."""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest

from channels.exceptions import AcceptConnection, DenyConnection, InvalidChannelLayerError
from channels.generic.websocket import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
)
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, channel_layers
from channels.testing import ApplicationCommunicator, WebsocketCommunicator

IN_MEMORY = {"BACKEND": "channels.layers.InMemoryChannelLayer"}


# -- one consumer per flavour, steered by what the client sends -----------------------
#
# Text commands: "close-after" sends a frame and closes, "close-code" does so
# with code 4002, "close-reason" closes with a code and reason, "nothing"
# calls send() without data; anything else is echoed back.


class SyncEcho(WebsocketConsumer):
    connect_mode = "accept"
    record: list[Any] = []

    def connect(self) -> None:
        self.record.append(("thread", threading.get_ident()))
        mode = self.connect_mode
        if mode == "accept":
            self.accept()
        elif mode == "accept-extras":
            self.accept(subprotocol="chat.v2", headers=[(b"x-greeting", b"hello")])
        elif mode == "close":
            self.close()
        elif mode == "close-code":
            self.close(code=4001, reason="go away")
        elif mode == "raise-accept":
            raise AcceptConnection()
        elif mode == "raise-deny":
            raise DenyConnection()

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.record.append(("receive", text_data, bytes_data))
        if text_data == "close-after":
            self.send(text_data="bye", close=True)
        elif text_data == "close-code":
            self.send(text_data="bye", close=4002)
        elif text_data == "close-reason":
            self.close(code=4003, reason="done here")
        elif text_data == "nothing":
            self.send()
        else:
            self.send(text_data=text_data, bytes_data=bytes_data)

    def chat_message(self, event: dict[str, Any]) -> None:
        self.send(text_data=event["text"])

    def disconnect(self, code: int) -> None:
        layer = self.channel_layer
        members = layer.groups if isinstance(layer, InMemoryChannelLayer) else {}
        still_in = sorted(g for g, channels in members.items() if self.channel_name in channels)
        self.record.append(("disconnect", code, still_in))


class AsyncEcho(AsyncWebsocketConsumer):
    connect_mode = "accept"
    record: list[Any] = []

    async def connect(self) -> None:
        self.record.append(("thread", threading.get_ident()))
        mode = self.connect_mode
        if mode == "accept":
            await self.accept()
        elif mode == "accept-extras":
            await self.accept(subprotocol="chat.v2", headers=[(b"x-greeting", b"hello")])
        elif mode == "close":
            await self.close()
        elif mode == "close-code":
            await self.close(code=4001, reason="go away")
        elif mode == "raise-accept":
            raise AcceptConnection()
        elif mode == "raise-deny":
            raise DenyConnection()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.record.append(("receive", text_data, bytes_data))
        if text_data == "close-after":
            await self.send(text_data="bye", close=True)
        elif text_data == "close-code":
            await self.send(text_data="bye", close=4002)
        elif text_data == "close-reason":
            await self.close(code=4003, reason="done here")
        elif text_data == "nothing":
            await self.send()
        else:
            await self.send(text_data=text_data, bytes_data=bytes_data)

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])

    async def disconnect(self, code: int) -> None:
        layer = self.channel_layer
        members = layer.groups if isinstance(layer, InMemoryChannelLayer) else {}
        still_in = sorted(g for g, channels in members.items() if self.channel_name in channels)
        self.record.append(("disconnect", code, still_in))


@pytest.fixture(params=[SyncEcho, AsyncEcho], ids=["sync", "async"])
def echo(request: pytest.FixtureRequest) -> type[SyncEcho] | type[AsyncEcho]:
    cls: type[SyncEcho] | type[AsyncEcho] = request.param
    return cls


# -- connect / accept / close ---------------------------------------------------------


class PlainSyncEcho(WebsocketConsumer):
    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.send(text_data=text_data, bytes_data=bytes_data)


class PlainAsyncEcho(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)


@pytest.mark.parametrize("cls", [PlainSyncEcho, PlainAsyncEcho], ids=["sync", "async"])
@pytest.mark.asyncio
async def test_connect_accepts_by_default_and_echoes(cls: type[Any], layer: Any) -> None:
    communicator = WebsocketCommunicator(cls.as_asgi(), "/ws/")
    assert await communicator.connect() == (True, None)
    assert communicator.response_headers == []
    await communicator.send_to(text_data="hello")
    assert await communicator.receive_from() == "hello"
    await communicator.send_to(bytes_data=b"\x00\xff")
    assert await communicator.receive_from() == b"\x00\xff"
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_accept_with_subprotocol_and_headers_reaches_the_client(
    echo: type[SyncEcho], layer: Any
) -> None:
    communicator = WebsocketCommunicator(
        echo.as_asgi(connect_mode="accept-extras", record=[]),
        "/ws/",
        subprotocols=["chat.v1", "chat.v2"],
    )
    assert await communicator.connect() == (True, "chat.v2")
    assert communicator.response_headers == [(b"x-greeting", b"hello")]
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_accept_event_shape(echo: type[SyncEcho], layer: Any, stop: Any) -> None:
    communicator = ApplicationCommunicator(echo.as_asgi(record=[]), {"type": "websocket"})
    await communicator.send_input({"type": "websocket.connect"})
    # No headers given: the event carries none (servers treat absent and empty alike).
    assert await communicator.receive_output() == {"type": "websocket.accept", "subprotocol": None}
    await stop(communicator)


@pytest.mark.parametrize(
    ("mode", "expected_event", "connect_result"),
    [
        ("close", {"type": "websocket.close"}, (False, 1000)),
        (
            "close-code",
            {"type": "websocket.close", "code": 4001, "reason": "go away"},
            (False, 4001),
        ),
        ("raise-deny", {"type": "websocket.close"}, (False, 1000)),
    ],
)
@pytest.mark.asyncio
async def test_closing_before_accept_rejects_the_handshake(
    echo: type[SyncEcho],
    layer: Any,
    mode: str,
    expected_event: dict[str, Any],
    connect_result: tuple[bool, int],
    stop: Any,
) -> None:
    app = echo.as_asgi(connect_mode=mode, record=[])
    raw = ApplicationCommunicator(app, {"type": "websocket", "path": "/ws/"})
    await raw.send_input({"type": "websocket.connect"})
    assert await raw.receive_output() == expected_event
    await stop(raw)

    communicator = WebsocketCommunicator(app, "/ws/")
    assert await communicator.connect() == connect_result
    # A rejected client gets a disconnect from the server; the instance ends.
    await communicator.disconnect(code=1006)


@pytest.mark.asyncio
async def test_accept_connection_exception_accepts(echo: type[SyncEcho], layer: Any) -> None:
    communicator = WebsocketCommunicator(
        echo.as_asgi(connect_mode="raise-accept", record=[]), "/ws/"
    )
    assert await communicator.connect() == (True, None)
    await communicator.disconnect()


# -- frames ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_empty_text_frame_reaches_receive(echo: type[SyncEcho], layer: Any) -> None:
    record: list[Any] = []
    communicator = WebsocketCommunicator(echo.as_asgi(record=record), "/ws/")
    await communicator.connect()
    await communicator.send_to(text_data="")
    assert await communicator.receive_from() == ""
    await communicator.send_to(bytes_data=b"")
    assert await communicator.receive_from() == b""
    await communicator.disconnect()
    assert ("receive", "", None) in record
    assert ("receive", None, b"") in record


@pytest.mark.parametrize(
    "event",
    [
        {"type": "websocket.receive"},
        {"type": "websocket.receive", "text": None, "bytes": None},
    ],
)
@pytest.mark.asyncio
async def test_a_frame_with_neither_text_nor_bytes_is_a_clear_error(
    echo: type[SyncEcho], layer: Any, event: dict[str, Any]
) -> None:
    communicator = ApplicationCommunicator(echo.as_asgi(record=[]), {"type": "websocket"})
    await communicator.send_input({"type": "websocket.connect"})
    await communicator.receive_output()
    await communicator.send_input(event)
    with pytest.raises(ValueError, match="neither 'text' nor 'bytes'"):
        await communicator.wait()


@pytest.mark.asyncio
async def test_send_without_data_is_a_value_error(echo: type[SyncEcho], layer: Any) -> None:
    communicator = WebsocketCommunicator(echo.as_asgi(record=[]), "/ws/")
    await communicator.connect()
    await communicator.send_to(text_data="nothing")
    with pytest.raises(ValueError, match="text_data or bytes_data"):
        await communicator.wait()


@pytest.mark.parametrize(
    ("command", "close_event"),
    [
        ("close-after", {"type": "websocket.close"}),
        ("close-code", {"type": "websocket.close", "code": 4002}),
        ("close-reason", {"type": "websocket.close", "code": 4003, "reason": "done here"}),
    ],
)
@pytest.mark.asyncio
async def test_send_with_close_and_close_with_code(
    echo: type[SyncEcho], layer: Any, command: str, close_event: dict[str, Any]
) -> None:
    communicator = WebsocketCommunicator(echo.as_asgi(record=[]), "/ws/")
    await communicator.connect()
    await communicator.send_to(text_data=command)
    if command != "close-reason":
        assert await communicator.receive_from() == "bye"
    assert await communicator.receive_output() == close_event
    await communicator.disconnect(code=close_event.get("code", 1000))


# -- disconnect and groups ----------------------------------------------------------


@pytest.mark.parametrize("layer_present", [True, False], ids=["layer", "no-layer"])
@pytest.mark.asyncio
async def test_disconnect_is_called_with_the_code_then_the_instance_stops(
    echo: type[SyncEcho], settings: Any, layer_present: bool, tasks_left: Any
) -> None:
    settings.CHANNEL_LAYERS = {"default": IN_MEMORY} if layer_present else {}
    record: list[Any] = []
    before = asyncio.all_tasks()
    communicator = WebsocketCommunicator(echo.as_asgi(record=record), "/ws/")
    await communicator.connect()
    await communicator.disconnect(code=4321)
    assert communicator.future.done()
    assert communicator.future.exception() is None
    assert record[-1] == ("disconnect", 4321, [])
    assert tasks_left(before) == set()


@pytest.mark.asyncio
async def test_disconnect_without_a_code_reports_1005(echo: type[SyncEcho], layer: Any) -> None:
    record: list[Any] = []
    communicator = ApplicationCommunicator(echo.as_asgi(record=record), {"type": "websocket"})
    await communicator.send_input({"type": "websocket.connect"})
    await communicator.receive_output()
    await communicator.send_input({"type": "websocket.disconnect"})
    await communicator.wait()
    assert record[-1] == ("disconnect", 1005, [])


@pytest.mark.asyncio
async def test_sync_consumer_methods_run_in_a_thread(layer: Any) -> None:
    record: list[Any] = []
    communicator = WebsocketCommunicator(SyncEcho.as_asgi(record=record), "/ws/")
    await communicator.connect()
    await communicator.disconnect()
    assert record[0] == ("thread", record[0][1])
    assert record[0][1] != threading.get_ident()


@pytest.mark.asyncio
async def test_groups_are_joined_on_connect_and_left_on_disconnect(
    echo: type[SyncEcho], layer: InMemoryChannelLayer
) -> None:
    record: list[Any] = []
    app = echo.as_asgi(groups=["lobby", "news"], record=record)
    first = WebsocketCommunicator(app, "/ws/")
    second = WebsocketCommunicator(app, "/ws/")
    await first.connect()
    await second.connect()
    assert len(layer.groups["lobby"]) == 2
    await layer.group_send("lobby", {"type": "chat.message", "text": "hi all"})
    assert await first.receive_from() == "hi all"
    assert await second.receive_from() == "hi all"
    await first.disconnect()
    # The groups were left before disconnect() ran.
    assert record[-1] == ("disconnect", 1000, [])
    assert len(layer.groups["lobby"]) == 1
    await layer.group_send("news", {"type": "chat.message", "text": "only one"})
    assert await second.receive_from() == "only one"
    await second.disconnect()
    assert "lobby" not in layer.groups
    assert "news" not in layer.groups


@pytest.mark.asyncio
async def test_groups_without_a_channel_layer_is_an_error(
    echo: type[SyncEcho], no_layer: None
) -> None:
    communicator = WebsocketCommunicator(echo.as_asgi(groups=["lobby"], record=[]), "/ws/")
    await communicator.send_input({"type": "websocket.connect"})
    with pytest.raises(InvalidChannelLayerError, match=r"groups.*'lobby'.*'default'"):
        await communicator.wait()


class ChannelsOnlyLayer(BaseChannelLayer):
    """A layer with the core of the specification and no groups extension."""

    extensions: list[str] = []  # type: ignore[misc]

    def __init__(self) -> None:
        super().__init__()
        self.queues: defaultdict[str, asyncio.Queue[dict[str, Any]]] = defaultdict(asyncio.Queue)

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        await self.queues[channel].put(message)

    async def receive(self, channel: str) -> dict[str, Any]:
        return await self.queues[channel].get()

    async def new_channel(self, prefix: str = "specific.") -> str:
        return f"{prefix}plain!{uuid.uuid4().hex}"


@pytest.mark.asyncio
async def test_groups_on_a_layer_without_groups_is_an_error(
    echo: type[SyncEcho], settings: Any
) -> None:
    settings.CHANNEL_LAYERS = {"default": IN_MEMORY}
    channel_layers.set("default", ChannelsOnlyLayer())
    communicator = WebsocketCommunicator(echo.as_asgi(groups=["lobby"], record=[]), "/ws/")
    await communicator.send_input({"type": "websocket.connect"})
    with pytest.raises(InvalidChannelLayerError, match="does not support groups"):
        await communicator.wait()


@pytest.mark.asyncio
async def test_no_groups_works_on_a_layer_without_groups(
    echo: type[SyncEcho], settings: Any
) -> None:
    settings.CHANNEL_LAYERS = {"default": IN_MEMORY}
    plain = ChannelsOnlyLayer()
    channel_layers.set("default", plain)
    communicator = WebsocketCommunicator(echo.as_asgi(record=[]), "/ws/")
    assert await communicator.connect() == (True, None)
    (channel_name,) = plain.queues
    await plain.send(channel_name, {"type": "chat.message", "text": "direct"})
    assert await communicator.receive_from() == "direct"
    await communicator.disconnect()


# -- subscriptions set up by a task, as GraphQL and REST-over-WebSocket libraries do ---


class Subscriptions(AsyncJsonWebsocketConsumer):
    """A client subscribes to groups; the joining happens in a task of its own.

    Libraries built on Channels start each subscription as a task (it goes on
    to stream results) and rely on Channels handling the client's next message
    only after that task has had a turn.
    """

    subscriptions: dict[str, asyncio.Task[None]]

    async def connect(self) -> None:
        self.subscriptions = {}
        await self.accept()

    async def subscribe(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)  # type: ignore[union-attr]

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        action, group = content["action"], content["group"]
        layer = self.channel_layer
        assert layer is not None
        if action == "subscribe":
            self.subscriptions[group] = asyncio.ensure_future(self.subscribe(group))
        elif action == "publish":
            await layer.group_send(group, {"type": "group.message", "text": content["text"]})
        elif action == "unsubscribe":
            await layer.group_discard(group, self.channel_name)
            await self.send_json({"unsubscribed": group, "channel_name": self.channel_name})

    async def group_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"message": event["text"]})


@pytest.mark.asyncio
async def test_a_subscription_made_by_a_task_sees_the_next_message(
    layer: InMemoryChannelLayer,
) -> None:
    communicator = WebsocketCommunicator(Subscriptions.as_asgi(), "/ws/")
    await communicator.connect()
    # Sent back to back: "publish" is queued before "subscribe" is handled.
    await communicator.send_json_to({"action": "subscribe", "group": "news"})
    await communicator.send_json_to({"action": "publish", "group": "news", "text": "first"})
    assert await communicator.receive_json_from() == {"message": "first"}
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_an_unsubscribe_right_after_a_subscribe_is_not_lost(
    layer: InMemoryChannelLayer,
) -> None:
    communicator = WebsocketCommunicator(Subscriptions.as_asgi(), "/ws/")
    await communicator.connect()
    await communicator.send_json_to({"action": "subscribe", "group": "news"})
    await communicator.send_json_to({"action": "unsubscribe", "group": "news"})
    answer = await communicator.receive_json_from()
    assert answer["unsubscribed"] == "news"
    # Had the unsubscribe run before the task's group_add, the channel would
    # still be in the group and get "late" before "direct" (one channel is FIFO).
    await layer.group_send("news", {"type": "group.message", "text": "late"})
    await layer.send(answer["channel_name"], {"type": "group.message", "text": "direct"})
    assert await communicator.receive_json_from() == {"message": "direct"}
    assert "news" not in layer.groups
    await communicator.disconnect()


# -- JSON consumers --------------------------------------------------------------------


class SyncJson(JsonWebsocketConsumer):
    def receive_json(self, content: Any, **kwargs: Any) -> None:
        if content == "close":
            self.send_json({"bye": True}, close=True)
        else:
            self.send_json({"got": content})


class AsyncJson(AsyncJsonWebsocketConsumer):
    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if content == "close":
            await self.send_json({"bye": True}, close=True)
        else:
            await self.send_json({"got": content})


@pytest.fixture(params=[SyncJson, AsyncJson], ids=["sync", "async"])
def json_consumer(request: pytest.FixtureRequest) -> type[SyncJson] | type[AsyncJson]:
    cls: type[SyncJson] | type[AsyncJson] = request.param
    return cls


@pytest.mark.asyncio
async def test_json_round_trip(json_consumer: type[SyncJson], layer: Any) -> None:
    communicator = WebsocketCommunicator(json_consumer.as_asgi(), "/ws/")
    await communicator.connect()
    await communicator.send_json_to({"n": [1, 2.5, None, "é"]})
    assert await communicator.receive_json_from() == {"got": {"n": [1, 2.5, None, "é"]}}
    await communicator.send_json_to("close")
    assert await communicator.receive_json_from() == {"bye": True}
    assert await communicator.receive_output() == {"type": "websocket.close"}
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("frame", "error", "match"),
    [
        ({"bytes_data": b"{}"}, ValueError, "no text to decode"),
        ({"text_data": "{not json"}, json.JSONDecodeError, None),
    ],
    ids=["binary-frame", "invalid-json"],
)
@pytest.mark.asyncio
async def test_json_consumer_errors_on_a_frame_it_cannot_decode(
    json_consumer: type[SyncJson],
    layer: Any,
    frame: dict[str, Any],
    error: type[Exception],
    match: str | None,
) -> None:
    communicator = WebsocketCommunicator(json_consumer.as_asgi(), "/ws/")
    await communicator.connect()
    await communicator.send_to(**frame)
    with pytest.raises(error, match=match):
        await communicator.wait()


def test_json_codecs_are_classmethods_and_async_ones_are_coroutines() -> None:
    assert JsonWebsocketConsumer.encode_json({"a": 1}) == '{"a": 1}'
    assert JsonWebsocketConsumer.decode_json('{"a": 1}') == {"a": 1}
    assert not inspect.iscoroutinefunction(JsonWebsocketConsumer.encode_json)
    assert inspect.iscoroutinefunction(AsyncJsonWebsocketConsumer.encode_json)
    assert inspect.iscoroutinefunction(AsyncJsonWebsocketConsumer.decode_json)
    assert asyncio.run(AsyncJsonWebsocketConsumer.decode_json("[1]")) == [1]
    assert asyncio.run(AsyncJsonWebsocketConsumer.encode_json([1])) == "[1]"


class SyncDecimalJson(SyncJson):
    @classmethod
    def decode_json(cls, text_data: str) -> Any:
        return json.loads(text_data, parse_float=Decimal)

    @classmethod
    def encode_json(cls, content: Any) -> str:
        return json.dumps(content, default=str, sort_keys=True, separators=(",", ":"))


class AsyncDecimalJson(AsyncJson):
    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        return json.loads(text_data, parse_float=Decimal)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return json.dumps(content, default=str, sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize("cls", [SyncDecimalJson, AsyncDecimalJson], ids=["sync", "async"])
@pytest.mark.asyncio
async def test_overridden_json_codecs_are_used(cls: type[SyncJson], layer: Any) -> None:
    communicator = WebsocketCommunicator(cls.as_asgi(), "/ws/")
    await communicator.connect()
    await communicator.send_to(text_data='{"price": 0.10, "b": 1}')
    # Decoded with Decimal (0.10 keeps its digits), encoded compactly with sorted keys.
    assert await communicator.receive_from() == '{"got":{"b":1,"price":"0.10"}}'
    await communicator.disconnect()


# -- after the client has gone ----------------------------------------------------------


def dropped_sends(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "channels.consumer"]


@pytest.mark.asyncio
async def test_a_group_event_after_the_client_left_does_not_skip_disconnect(
    echo: type[SyncEcho],
    layer: InMemoryChannelLayer,
    caplog: pytest.LogCaptureFixture,
    leaving_client: Any,
) -> None:
    # The chat case: the client has just gone, its websocket.disconnect is on
    # its way, and a message to the group arrives first.
    caplog.set_level("DEBUG", logger="channels.consumer")
    record: list[Any] = []
    server = leaving_client(echo.as_asgi(groups=["lobby"], record=record))
    communicator = WebsocketCommunicator(server, "/ws/")
    assert await communicator.connect() == (True, None)
    assert len(layer.groups["lobby"]) == 1

    server.leave()
    await layer.group_send("lobby", {"type": "chat.message", "text": "anyone there?"})
    await server.refused_one.wait()
    await communicator.disconnect(code=1001)
    # The groups were left, then disconnect() ran, and the instance ended cleanly.
    assert record[-1] == ("disconnect", 1001, [])
    assert "lobby" not in layer.groups
    assert communicator.future.exception() is None
    assert server.refused == [{"type": "websocket.send", "text": "anyone there?"}]
    (message,) = dropped_sends(caplog)
    assert echo.__qualname__ in message
    assert "ClientGone" in message


@pytest.mark.asyncio
async def test_accept_after_the_client_left_still_ends_with_disconnect(
    echo: type[SyncEcho], layer: InMemoryChannelLayer, leaving_client: Any
) -> None:
    # The client gave up during the handshake, before connect() accepted.
    record: list[Any] = []
    server = leaving_client(echo.as_asgi(groups=["lobby"], record=record))
    server.leave()
    communicator = WebsocketCommunicator(server, "/ws/")
    await communicator.send_input({"type": "websocket.connect"})
    await server.refused_one.wait()
    await communicator.disconnect(code=1006)
    assert record[-1] == ("disconnect", 1006, [])
    assert "lobby" not in layer.groups
    assert server.refused == [{"type": "websocket.accept", "subprotocol": None}]


@pytest.mark.parametrize(
    ("cls", "frame"),
    [
        (SyncEcho, "close-after"),
        (AsyncEcho, "close-after"),
        (SyncJson, '"close"'),
        (AsyncJson, '"close"'),
    ],
    ids=["sync", "async", "sync-json", "async-json"],
)
@pytest.mark.asyncio
async def test_sends_after_the_first_refused_one_are_not_attempted(
    cls: type[Any],
    frame: str,
    layer: InMemoryChannelLayer,
    caplog: pytest.LogCaptureFixture,
    leaving_client: Any,
) -> None:
    # A frame the client sent just before leaving is still delivered; the
    # handler answers with a message and a close (two sends): only the first
    # reaches the server, the close is not even tried.
    caplog.set_level("DEBUG", logger="channels.consumer")
    server = leaving_client(cls.as_asgi())
    communicator = WebsocketCommunicator(server, "/ws/")
    await communicator.connect()
    server.leave()
    await communicator.send_to(text_data=frame)
    await server.refused_one.wait()
    await communicator.disconnect()
    assert [event["type"] for event in server.refused] == ["websocket.send"]
    assert len(dropped_sends(caplog)) == 1
    assert communicator.future.exception() is None
