import pytest

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator


class Echo(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data, bytes_data=bytes_data)


@pytest.mark.asyncio
async def test_echo_round_trip():
    communicator = WebsocketCommunicator(Echo.as_asgi(), "/echo/")
    assert await communicator.connect() == (True, None)
    await communicator.send_to(text_data="hello")
    assert await communicator.receive_from() == "hello"
    await communicator.disconnect()
