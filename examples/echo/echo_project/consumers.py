"""The echo consumer: every text frame comes back, and every open socket in the
"echo" group hears how many people are connected."""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer

connected = 0


class EchoConsumer(AsyncJsonWebsocketConsumer):
    groups = ["echo"]

    async def connect(self) -> None:
        global connected
        await self.accept()
        connected += 1
        await self.channel_layer.group_send("echo", {"type": "echo.count", "count": connected})

    async def receive_json(self, content, **kwargs):
        await self.send_json({"echo": content.get("text", "")})

    async def disconnect(self, code: int) -> None:
        global connected
        connected -= 1
        await self.channel_layer.group_send("echo", {"type": "echo.count", "count": connected})

    async def echo_count(self, event):
        await self.send_json({"connected": event["count"]})
