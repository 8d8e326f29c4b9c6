"""What an open WebSocket stream holds once it has gone quiet (bench/server.py idle rows)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

pytestmark = pytest.mark.asyncio


async def test_a_stream_keeps_no_queue_once_its_messages_are_received(
    serve: Any, http: SimpleNamespace, websocket: SimpleNamespace
) -> None:
    queues: list[object] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        stream = receive.__self__  # the WebSocketStream serving this scope
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            queues.append(stream._messages)
            await send({"type": "websocket.send", "text": message["text"]})

    server = await serve(app)
    client = await websocket.connect(http.port_of(server), "/")
    for text in ("one", "two"):
        client.send_text(text)
        assert await client.receive() == text
    client.close()
    await client.wait_closed()
    # Each message was the only one queued: the deque went with it.
    assert queues == [None, None]
