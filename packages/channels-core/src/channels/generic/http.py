"""The generic HTTP consumer: whole-body requests, streamed or long-poll responses."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..consumer import AsyncConsumer
from ..exceptions import StopConsumer

if TYPE_CHECKING:
    from ..asgi_types import Message, Receive, Scope, Send

__all__ = ["AsyncHttpConsumer"]

HeaderList = Iterable[tuple[bytes, bytes]]


class AsyncHttpConsumer(AsyncConsumer):
    """An HTTP endpoint: implement :meth:`handle`, which gets the whole body.

    :meth:`handle` runs as a task of its own while the consumer keeps
    listening, so that:

    * a long-poll response can be left open (``send_body(b"",
      more_body=True)``) and finished later by a channel-layer event handler;
    * a streaming response (server-sent events) that loops forever is
      cancelled as soon as the client disconnects.

    The instance stops once the response is complete (a body sent with
    ``more_body=False``), when the client disconnects, or when :meth:`handle`
    returns without having started a response. :meth:`disconnect` runs last
    in every case.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The request body's chunks received so far.
        self.body: list[bytes] = []
        self._response_started = False
        self._response_finished = False
        self._handle_task: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.disconnect()

    # -- the response ------------------------------------------------------------

    async def send_headers(
        self,
        *,
        status: int = 200,
        headers: HeaderList | Mapping[bytes, bytes] | None = None,
    ) -> None:
        """Start the response. *headers* is a list of (name, value) byte pairs or a dict."""
        if headers is None:
            header_list: list[tuple[bytes, bytes]] = []
        elif isinstance(headers, Mapping):
            header_list = list(headers.items())
        else:
            header_list = list(headers)
        await self.send({"type": "http.response.start", "status": status, "headers": header_list})

    async def send_body(self, body: bytes, *, more_body: bool = False) -> None:
        """Send a chunk of the body; ``more_body=True`` keeps the response open."""
        if not isinstance(body, (bytes, bytearray)):
            raise TypeError(f"send_body() takes bytes, not {type(body).__name__}")
        await self.send({"type": "http.response.body", "body": bytes(body), "more_body": more_body})

    async def send_response(
        self,
        status: int,
        body: bytes,
        *,
        headers: HeaderList | Mapping[bytes, bytes] | None = None,
    ) -> None:
        """Send a whole response: status, headers and body in one call."""
        await self.send_headers(status=status, headers=headers)
        await self.send_body(body)

    async def send(self, message: Message) -> None:
        message_type = message.get("type")
        if message_type == "http.response.start":
            self._response_started = True
        elif message_type == "http.response.body" and not message.get("more_body", False):
            self._response_finished = True
        await super().send(message)

    # -- what subclasses implement -----------------------------------------------

    async def handle(self, body: bytes) -> None:
        """Answer the request whose complete body is *body*."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement handle(body)")

    async def disconnect(self) -> None:
        """Called once when the instance stops, however it stops. Do not send from here."""

    # -- ASGI events ---------------------------------------------------------------

    async def http_request(self, message: Message) -> None:
        if "body" in message:
            self.body.append(message["body"])
        if not message.get("more_body", False) and self._handle_task is None:
            self._handle_task = self.start_task(self._handle(b"".join(self.body)))

    async def http_disconnect(self, message: Message) -> None:
        raise StopConsumer()

    async def dispatch(self, message: Message) -> None:
        await super().dispatch(message)
        # An event handler (a long-poll's channel-layer event) finished the response.
        if self._response_finished:
            raise StopConsumer()

    async def _handle(self, body: bytes) -> None:
        await self.handle(body)
        if self._response_finished or not self._response_started:
            raise StopConsumer()
        # Otherwise the response stays open for events to finish it.
