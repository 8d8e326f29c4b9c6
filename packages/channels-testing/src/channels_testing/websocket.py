"""``WebsocketCommunicator``: open, use and close a WebSocket to an application."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._communicator import FailFastCommunicator
from ._scope import base_scope

if TYPE_CHECKING:
    from channels.asgi_types import (
        WebSocketConnectEvent,
        WebSocketDisconnectEvent,
        WebSocketReceiveEvent,
    )

__all__ = ["WebsocketCommunicator"]


class WebsocketCommunicator(FailFastCommunicator):
    """Drives one WebSocket connection through an ASGI application.

    :param application: the ASGI application.
    :param path: the path, with an optional query string.
    :param headers: (name, value) pairs of bytes sent with the handshake.
    :param subprotocols: the subprotocols the client offers.
    :param spec_version: the ASGI WebSocket spec version to announce.
    """

    def __init__(
        self,
        application: Any,
        path: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        subprotocols: Iterable[str] | None = None,
        spec_version: str | None = None,
    ) -> None:
        # The base class first, so that an object whose checks below fail is
        # still whole when it is collected (asgiref's __del__ needs its state).
        super().__init__(application, {})
        scope = base_scope("websocket", path, headers)
        offered = [] if subprotocols is None else subprotocols
        if isinstance(offered, (str, bytes)) or not all(isinstance(p, str) for p in offered):
            raise TypeError(f"subprotocols must be a list of str, not {subprotocols!r}")
        scope.update(scheme="ws", subprotocols=list(offered))
        if spec_version is not None:
            if not isinstance(spec_version, str):
                raise TypeError(f"spec_version must be a str such as '2.3', not {spec_version!r}")
            scope["asgi"]["spec_version"] = spec_version
            scope["spec_version"] = spec_version
        self.response_headers: list[tuple[bytes, bytes]] | None = None
        self.scope = scope

    async def connect(self, timeout: float = 1) -> tuple[bool, Any]:
        """Open the socket. Returns ``(True, subprotocol)`` or ``(False, close_code)``."""
        event: WebSocketConnectEvent = {"type": "websocket.connect"}
        await self.send_input(event)
        response = await self.receive_output(timeout)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        if response["type"] == "websocket.accept":
            self.response_headers = list(response.get("headers", []))
            return True, response.get("subprotocol")
        if response["type"] == "websocket.http.response.start":
            # The denial-response extension: the application answered with HTTP.
            return False, response.get("status", 403)
        raise AssertionError(f"expected websocket.accept or websocket.close, got {response!r}")

    async def send_to(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Send one frame: exactly one of *text_data* (str) or *bytes_data* (bytes)."""
        if (text_data is None) == (bytes_data is None):
            raise TypeError("send_to() takes exactly one of text_data or bytes_data")
        event: WebSocketReceiveEvent
        if text_data is not None:
            if not isinstance(text_data, str):
                raise TypeError(f"text_data must be a str, not {type(text_data).__name__}")
            event = {"type": "websocket.receive", "text": text_data}
        else:
            if not isinstance(bytes_data, (bytes, bytearray)):
                raise TypeError(f"bytes_data must be bytes, not {type(bytes_data).__name__}")
            event = {"type": "websocket.receive", "bytes": bytes(bytes_data)}
        await self.send_input(event)

    async def send_json_to(self, data: Any) -> None:
        """Send *data* encoded as JSON in a text frame."""
        await self.send_to(text_data=json.dumps(data))

    async def receive_from(self, timeout: float = 1) -> str | bytes:
        """The next frame the application sent: ``str`` for text, ``bytes`` for binary."""
        response = await self.receive_output(timeout)
        if response.get("type") != "websocket.send":
            raise AssertionError(f"expected a 'websocket.send' event, got {response!r}")
        text, data = response.get("text"), response.get("bytes")
        if (text is None) == (data is None):
            raise AssertionError(
                f"a websocket.send event needs exactly one of 'text' or 'bytes': {response!r}"
            )
        if text is not None:
            if not isinstance(text, str):
                raise AssertionError(f"text frame payload is not a str: {text!r}")
            return text
        if not isinstance(data, bytes):
            raise AssertionError(f"binary frame payload is not bytes: {data!r}")
        return data

    async def receive_json_from(self, timeout: float = 1) -> Any:
        """The next frame, which must be text, decoded from JSON."""
        payload = await self.receive_from(timeout)
        if not isinstance(payload, str):
            raise AssertionError(f"expected a text frame holding JSON, got bytes {payload!r}")
        return json.loads(payload)

    async def disconnect(self, code: int = 1000, timeout: float = 1) -> None:
        """Close the socket from the client side and wait for the application to stop."""
        if not isinstance(code, int):
            raise TypeError(f"code must be an int, not {type(code).__name__}")
        event: WebSocketDisconnectEvent = {"type": "websocket.disconnect", "code": code}
        await self.send_input(event)
        await self.wait(timeout)
