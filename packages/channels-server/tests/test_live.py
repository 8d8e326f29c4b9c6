"""ChannelsLiveServerTestCase (channels_testing.live), with real clients."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from typing import Any

import pytest
from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

# Made by conftest.py (test modules cannot import each other by name).
from channels_server_test_urls import TEST_SETTINGS  # type: ignore[import-not-found]
from django.contrib.auth.models import User
from django.test import override_settings

from channels.testing import ChannelsLiveServerTestCase


def websocket_exchange(url: str, message: str) -> str:
    """Send one text message over a new WebSocket (autobahn) and return the reply."""

    async def run() -> str:
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[str] = loop.create_future()

        class Client(WebSocketClientProtocol):  # type: ignore[misc]
            def onOpen(self) -> None:
                self.sendMessage(message.encode())

            def onMessage(self, payload: bytes, isBinary: bool) -> None:
                reply.set_result(payload.decode())
                self.sendClose(1000)

            def onClose(self, wasClean: bool, code: Any, reason: Any) -> None:
                if not reply.done():
                    reply.set_exception(ConnectionError(f"closed: {code} {reason}"))

        factory = WebSocketClientFactory(url)
        factory.protocol = Client
        host, port = url.split("//")[1].split("/")[0].split(":")
        transport, _ = await loop.create_connection(factory, host, int(port))
        try:
            return await asyncio.wait_for(reply, 10)
        finally:
            await asyncio.sleep(0.05)
            transport.close()

    return asyncio.run(run())


@override_settings(**TEST_SETTINGS)
class LiveServerTests(ChannelsLiveServerTestCase):
    def test_urls(self) -> None:
        assert self.live_server_url.startswith("http://localhost:")
        assert self.live_server_ws_url == "ws" + self.live_server_url[4:]
        assert not self.live_server_url.endswith(":0")

    def test_django_view_over_http(self) -> None:
        with urllib.request.urlopen(self.live_server_url + "/hello/", timeout=10) as response:
            assert response.read() == b"hello from django GET /hello/"

    def test_static_files_are_served(self) -> None:
        with urllib.request.urlopen(
            self.live_server_url + "/static/hello.txt", timeout=10
        ) as response:
            assert response.read() == b"static hello\n"

    def test_websocket_consumer(self) -> None:
        assert websocket_exchange(self.live_server_ws_url + "/ws/echo/", "ping") == "ping"

    def test_the_server_uses_the_test_database(self) -> None:
        User.objects.create(username="ada")
        User.objects.create(username="grace")
        assert websocket_exchange(self.live_server_ws_url + "/ws/users/", "who?") == "ada,grace"


@override_settings(**TEST_SETTINGS)
class NoStaticTests(ChannelsLiveServerTestCase):
    serve_static = False

    def test_static_files_are_not_served(self) -> None:
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(self.live_server_url + "/static/hello.txt", timeout=10)
        info.value.close()
        assert info.value.code == 404
