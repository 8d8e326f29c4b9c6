"""In-memory client/server pairs for the sans-IO engines: an h11 client for the
HTTP engine, a wsproto client for the WebSocket engine (no sockets, no event loop)."""

from __future__ import annotations

from typing import Any

import h11


class HTTPPair:
    """An h11 client talking to the server's HTTP engine, in memory."""

    def __init__(self, engine_class: Any = None, **limits: int) -> None:
        from channels_server.protocol.http11 import HTTP11Connection, HTTPLimits

        self.client = h11.Connection(h11.CLIENT)
        self.server = (engine_class or HTTP11Connection)(HTTPLimits(**limits), b"server: test\r\n")

    def send(self, *events: Any) -> None:
        for event in events:
            data = self.client.send(event)
            if data:
                self.server.receive_data(data)

    def server_events(self) -> list[Any]:
        from channels_server.protocol.http11 import NEED_DATA, PAUSED

        found = []
        while True:
            event = self.server.next_event()
            if event is NEED_DATA or event is PAUSED:
                found.append(event)
                return found
            found.append(event)

    def deliver(self, data: bytes) -> list[Any]:
        """Give the server's bytes to the client; the client's events."""
        self.client.receive_data(data)
        found = []
        while True:
            event = self.client.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return found
            found.append(event)
            if isinstance(event, h11.ConnectionClosed):
                return found


class WebSocketPair:
    """A wsproto client talking to the server's WebSocket engine, in memory."""

    def __init__(self, max_message_size: int = 1 << 20, max_frame_size: int = 1 << 20) -> None:
        from wsproto.connection import Connection, ConnectionType

        from channels_server.protocol.websocket import WebSocketConnection

        self.client = Connection(ConnectionType.CLIENT)
        self.server = WebSocketConnection(max_message_size, max_frame_size)

    def client_sends(self, *events: Any) -> tuple[list[Any], bytes]:
        data = b"".join(self.client.send(event) for event in events)
        return self.server.receive_data(data)

    def client_receives(self, data: bytes) -> list[Any]:
        self.client.receive_data(data)
        return list(self.client.events())
