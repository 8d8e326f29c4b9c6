"""What an idle consumer holds while it waits: its tasks and their frames.

Thousands of idle instances per process are the common case for WebSocket
consumers, so what each keeps alive while it waits is part of its contract
(bench/server.py, the idle rows).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from channels import consumer as consumer_module
from channels.consumer import AsyncConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import InMemoryChannelLayer
from channels.testing import ApplicationCommunicator, WebsocketCommunicator


class Echo(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)

    async def relay(self, message: dict[str, Any]) -> None:
        await self.send(text_data=message["text"])


def _consumer_frames(task: asyncio.Task[Any]) -> list[str]:
    """The functions of channels/consumer.py in *task*'s chain of awaiting coroutines."""
    names = []
    coroutine: Any = task.get_coro()
    while coroutine is not None:
        code = getattr(coroutine, "cr_code", None)
        if code is not None and code.co_filename == consumer_module.__file__:
            names.append(code.co_name)
        coroutine = getattr(coroutine, "cr_await", None)
    return names


@pytest.mark.asyncio
async def test_an_idle_consumer_with_a_layer_holds_two_tasks_one_frame_each(
    layer: InMemoryChannelLayer,
) -> None:
    before = asyncio.all_tasks()
    communicator = WebsocketCommunicator(Echo.as_asgi(), "/")
    connected, _ = await communicator.connect()
    assert connected
    await asyncio.sleep(0)
    started = {task for task in asyncio.all_tasks() if task not in before and not task.done()}
    frames = sorted(_consumer_frames(task) for task in started)
    # The application task: as_asgi()'s function and the instance's __call__,
    # which waits on the client itself; and the layer reader, one coroutine
    # with nothing wrapped around it.
    assert frames == [["_dispatch_layer_events"], ["app", "__call__"]]
    # Events still flow both ways.
    await communicator.send_to(text_data="ping")
    assert await communicator.receive_from() == "ping"
    (channel,) = layer.channels
    await layer.send(channel, {"type": "relay", "text": "from the layer"})
    assert await communicator.receive_from() == "from the layer"
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_channel_receive_is_made_on_first_use(layer: InMemoryChannelLayer) -> None:
    seen: dict[str, Any] = {}

    class Probe(AsyncConsumer):
        async def probe_ask(self, message: dict[str, Any]) -> None:
            seen["before"] = "channel_receive" in self.__dict__
            seen["receive"] = self.channel_receive
            await self.channel_layer.send(self.channel_name, {"type": "probe.inner"})  # type: ignore[union-attr]
            seen["inner"] = await self.channel_receive()
            await self.send({"type": "probe.done"})

    communicator = ApplicationCommunicator(Probe.as_asgi(), {"type": "probe"})
    await communicator.send_input({"type": "probe.ask"})
    assert await communicator.receive_output() == {"type": "probe.done"}
    assert seen["before"] is False
    assert seen["inner"] == {"type": "probe.inner"}
    communicator.stop()
    await communicator.wait()


@pytest.mark.asyncio
async def test_without_a_layer_there_is_no_channel_receive(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {}
    seen: dict[str, Any] = {}

    class Probe(AsyncConsumer):
        async def probe_ask(self, message: dict[str, Any]) -> None:
            seen["has"] = hasattr(self, "channel_receive")
            await self.send({"type": "probe.done"})

    communicator = ApplicationCommunicator(Probe.as_asgi(), {"type": "probe"})
    await communicator.send_input({"type": "probe.ask"})
    assert await communicator.receive_output() == {"type": "probe.done"}
    assert seen["has"] is False
    communicator.stop()
    await communicator.wait()
