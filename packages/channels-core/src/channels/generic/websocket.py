"""Generic WebSocket consumers: text and binary frames instead of raw ASGI events.

``WebsocketConsumer`` and ``JsonWebsocketConsumer`` are synchronous (their
methods run in a worker thread); ``AsyncWebsocketConsumer`` and
``AsyncJsonWebsocketConsumer`` have the same methods as coroutines.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync

from ..asgi_types import _as_message
from ..consumer import AsyncConsumer, SyncConsumer
from ..exceptions import AcceptConnection, DenyConnection, InvalidChannelLayerError, StopConsumer
from ..layers import BaseChannelLayer

if TYPE_CHECKING:
    from ..asgi_types import (
        Headers,
        Message,
        WebSocketAcceptEvent,
        WebSocketCloseEvent,
        WebSocketSendEvent,
    )

__all__ = [
    "AsyncJsonWebsocketConsumer",
    "AsyncWebsocketConsumer",
    "JsonWebsocketConsumer",
    "WebsocketConsumer",
]

# -- the ASGI events both flavours send -------------------------------------------


def _accept_event(subprotocol: str | None, headers: Headers | None) -> Message:
    event: WebSocketAcceptEvent = {"type": "websocket.accept", "subprotocol": subprotocol}
    if headers:
        event["headers"] = list(headers)
    return _as_message(event)


def _frame_event(text_data: str | None, bytes_data: bytes | None) -> Message:
    event: WebSocketSendEvent
    if text_data is not None:
        event = {"type": "websocket.send", "text": text_data}
    elif bytes_data is not None:
        event = {"type": "websocket.send", "bytes": bytes_data}
    else:
        raise ValueError("send() needs text_data or bytes_data; both were None")
    return _as_message(event)


def _close_event(code: int | bool | None, reason: str | None) -> Message:
    event: WebSocketCloseEvent = {"type": "websocket.close"}
    # send(close=True) passes True through as the code: no code at all.
    if code is not None and code is not True:
        event["code"] = code
    if reason:
        event["reason"] = reason
    return _as_message(event)


def _frame_data(message: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments for ``receive()`` from a ``websocket.receive`` event."""
    text = message.get("text")
    if text is not None:
        return {"text_data": text}
    data = message.get("bytes")
    if data is not None:
        return {"bytes_data": data}
    raise ValueError(
        "websocket.receive event has neither 'text' nor 'bytes' set: the server sent "
        f"a frame with no data ({sorted(message)!r})"
    )


def _group_layer(consumer: AsyncConsumer) -> BaseChannelLayer:
    layer = consumer.channel_layer
    if layer is None or "groups" not in getattr(layer, "extensions", ()):
        raise InvalidChannelLayerError(
            f"{type(consumer).__qualname__}.groups is {consumer.groups!r} but the channel "  # type: ignore[attr-defined]
            f"layer {consumer.channel_layer_alias!r} is not configured or does not "
            "support groups"
        )
    return layer


# -- synchronous ----------------------------------------------------------------


class WebsocketConsumer(SyncConsumer):
    """A synchronous WebSocket consumer.

    Override :meth:`connect`, :meth:`receive` and :meth:`disconnect`. The
    channel joins every group in :attr:`groups` before :meth:`connect` runs
    and leaves them when the socket closes.
    """

    #: Group names this consumer's channel joins on connect and leaves on disconnect.
    groups: Iterable[str] | None = None

    def websocket_connect(self, message: dict[str, Any]) -> None:
        if self.groups:
            group_add = async_to_sync(_group_layer(self).group_add)
            for group in self.groups:
                group_add(group, self.channel_name)
        try:
            self.connect()
        except AcceptConnection:
            self.accept()
        except DenyConnection:
            self.close()

    def connect(self) -> None:
        """Called when the client opens the socket; accepts by default."""
        self.accept()

    def accept(self, subprotocol: str | None = None, headers: Headers | None = None) -> None:
        """Accept the connection, optionally choosing a subprotocol and adding headers."""
        super().send(_accept_event(subprotocol, headers))

    def websocket_receive(self, message: dict[str, Any]) -> None:
        self.receive(**_frame_data(message))

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Called with each frame's ``text_data`` or ``bytes_data``."""

    def send(  # type: ignore[override]
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        close: bool | int = False,
    ) -> None:
        """Send a text or binary frame; ``close=True`` (or a code) closes afterwards."""
        super().send(_frame_event(text_data, bytes_data))
        if close:
            self.close(close)

    def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close the socket (before accept: reject the handshake)."""
        super().send(_close_event(code, reason))

    def websocket_disconnect(self, message: dict[str, Any]) -> None:
        if self.groups:
            group_discard = async_to_sync(_group_layer(self).group_discard)
            for group in self.groups:
                group_discard(group, self.channel_name)
        self.disconnect(message.get("code", 1005))
        raise StopConsumer()

    def disconnect(self, code: int) -> None:
        """Called once the socket has closed, with the close code."""


class JsonWebsocketConsumer(WebsocketConsumer):
    """A :class:`WebsocketConsumer` that exchanges JSON in text frames."""

    def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if not text_data:
            raise ValueError("JsonWebsocketConsumer received a frame with no text to decode")
        self.receive_json(self.decode_json(text_data), **kwargs)

    def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Called with the decoded JSON of each text frame."""

    def send_json(self, content: Any, close: bool | int = False) -> None:
        """Encode *content* as JSON and send it as a text frame."""
        super().send(text_data=self.encode_json(content), close=close)

    @classmethod
    def decode_json(cls, text_data: str) -> Any:
        return json.loads(text_data)

    @classmethod
    def encode_json(cls, content: Any) -> str:
        return json.dumps(content)


# -- asynchronous ---------------------------------------------------------------


class AsyncWebsocketConsumer(AsyncConsumer):
    """The asynchronous :class:`WebsocketConsumer`: the same methods, as coroutines."""

    groups: Iterable[str] | None = None

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        if self.groups:
            layer = _group_layer(self)
            for group in self.groups:
                await layer.group_add(group, self.channel_name)
        try:
            await self.connect()
        except AcceptConnection:
            await self.accept()
        except DenyConnection:
            await self.close()

    async def connect(self) -> None:
        await self.accept()

    async def accept(self, subprotocol: str | None = None, headers: Headers | None = None) -> None:
        await super().send(_accept_event(subprotocol, headers))

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        await self.receive(**_frame_data(message))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        pass

    async def send(  # type: ignore[override]
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        close: bool | int = False,
    ) -> None:
        await super().send(_frame_event(text_data, bytes_data))
        if close:
            await self.close(close)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        await super().send(_close_event(code, reason))

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        if self.groups:
            layer = _group_layer(self)
            for group in self.groups:
                await layer.group_discard(group, self.channel_name)
        await self.disconnect(message.get("code", 1005))
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        pass


class AsyncJsonWebsocketConsumer(AsyncWebsocketConsumer):
    """The asynchronous :class:`JsonWebsocketConsumer`; ``encode_json`` and
    ``decode_json`` are coroutines here."""

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if not text_data:
            raise ValueError("AsyncJsonWebsocketConsumer received a frame with no text to decode")
        await self.receive_json(await self.decode_json(text_data), **kwargs)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        pass

    async def send_json(self, content: Any, close: bool | int = False) -> None:
        await super().send(text_data=await self.encode_json(content), close=close)

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        return json.loads(text_data)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return json.dumps(content)
