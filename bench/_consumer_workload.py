"""The consumer workload, run inside one virtualenv (ours or the original's).

``bench/consumer.py`` starts this script once per implementation and round;
it prints one JSON object. Only the public Channels API is used, so the very
same code runs against both implementations.

The driver is as thin as an ASGI server can be: a queue feeds the consumer's
``receive`` and ``send`` counts what comes back. No sockets, no
communicator, so that the consumer itself is what is measured.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
import tracemalloc

import django
from django.conf import settings

LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def configure(with_layer: bool) -> None:
    settings.configure(
        INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS=LAYER if with_layer else {},
        DATABASES={},
    )
    django.setup()


def consumers() -> dict[str, object]:
    from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer

    class AsyncEcho(AsyncWebsocketConsumer):
        async def receive(self, text_data=None, bytes_data=None):
            await self.send(text_data=text_data)

    class SyncEcho(WebsocketConsumer):
        def receive(self, text_data=None, bytes_data=None):
            self.send(text_data=text_data)

    return {"async": AsyncEcho.as_asgi(), "sync": SyncEcho.as_asgi()}


class Connection:
    """One fake client: an input queue, and a counter of frames sent back."""

    def __init__(self, expected: int = 0) -> None:
        self.inbox: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        self.frames = 0
        self.expected = expected
        self.done = asyncio.get_running_loop().create_future()
        self.accepted = asyncio.get_running_loop().create_future()

    async def send(self, message: dict[str, object]) -> None:
        kind = message["type"]
        if kind == "websocket.send":
            self.frames += 1
            if self.frames == self.expected and not self.done.done():
                self.done.set_result(None)
        elif kind == "websocket.accept" and not self.accepted.done():
            self.accepted.set_result(None)


SCOPE = {
    "type": "websocket",
    "path": "/echo/",
    "headers": [],
    "query_string": b"",
    "subprotocols": [],
}


async def throughput(app: object, messages: int) -> float:
    """Frames per second echoed by one consumer instance, with the input queued up front."""
    connection = Connection(expected=messages)
    connection.inbox.put_nowait({"type": "websocket.connect"})
    task = asyncio.ensure_future(app(dict(SCOPE), connection.inbox.get, connection.send))
    await connection.accepted
    frame = {"type": "websocket.receive", "text": "hello, world"}
    start = time.perf_counter()
    for _ in range(messages):
        connection.inbox.put_nowait(dict(frame))
    await connection.done
    elapsed = time.perf_counter() - start
    connection.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(task, 10)
    return messages / elapsed


async def memory_per_instance(app: object, instances: int) -> float:
    """Bytes allocated per connected, idle consumer instance (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    connections = []
    tasks = []
    for _ in range(instances):
        connection = Connection()
        connection.inbox.put_nowait({"type": "websocket.connect"})
        connections.append(connection)
        tasks.append(asyncio.ensure_future(app(dict(SCOPE), connection.inbox.get, connection.send)))
    await asyncio.gather(*(connection.accepted for connection in connections))
    for _ in range(5):
        await asyncio.sleep(0)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    # Subtract the driver's own share: the same Connection objects and the
    # bare tasks would exist for any application, ours or theirs.
    for connection in connections:
        connection.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return (after - before) / instances


async def driver_baseline(instances: int) -> float:
    """Bytes per instance for the driver alone, with an app that just waits."""

    async def idle_app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await receive()

    return await memory_per_instance(idle_app, instances)


async def main(kind: str, with_layer: bool, messages: int, instances: int) -> None:
    app = consumers()[kind]
    # Warm up (imports, thread pool, caches) before measuring.
    await throughput(app, min(messages, 500))
    rate = await throughput(app, messages)
    memory = await memory_per_instance(app, instances)
    baseline = await driver_baseline(instances)
    print(
        json.dumps(
            {
                "kind": kind,
                "layer": with_layer,
                "messages_per_second": rate,
                "bytes_per_instance": memory - baseline,
            }
        )
    )


if __name__ == "__main__":
    kind, layer, messages, instances = sys.argv[1], sys.argv[2] == "layer", *map(int, sys.argv[3:5])
    configure(layer)
    asyncio.run(main(kind, layer, messages, instances))
