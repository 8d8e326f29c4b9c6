"""``connected_communicator``: the tests' way to open a WebSocket to a consumer.

The tests pass a consumer *instance* (or any ASGI application), use the
communicator inside ``async with``, expect the connection to be accepted, and
call one method beyond Channels' communicator: ``receive_many_json_from()``,
every JSON message that arrives until the socket has been quiet for a while.
Only the documented communicator API is used, so the helper behaves the same
on both stacks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from channels.testing import WebsocketCommunicator


class Communicator(WebsocketCommunicator):
    async def receive_many_json_from(self, timeout: float = 1) -> list[Any]:
        # receive_nothing() waits without cancelling the application, which a
        # timed-out receive_json_from() would do; the tests go on using the
        # socket after draining it.
        messages = []
        while not await self.receive_nothing(timeout):
            messages.append(await self.receive_json_from())
        return messages


@asynccontextmanager
async def connected_communicator(
    application: Any, path: str = "/testws/", **kwargs: Any
) -> AsyncIterator[Communicator]:
    communicator = Communicator(application, path, **kwargs)
    connected, _ = await communicator.connect()
    if not connected:
        raise AssertionError(f"the consumer refused the WebSocket connection to {path}")
    try:
        yield communicator
    finally:
        await communicator.disconnect()
