"""An independent WebSocket client (autobahn, on asyncio) with an awaitable interface."""

from __future__ import annotations

import asyncio
from typing import Any


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
