"""The generic HTTP consumer: whole-body requests, streamed or long-poll responses."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..asgi_types import _as_message
from ..consumer import AsyncConsumer
from ..exceptions import StopConsumer

if TYPE_CHECKING:
    from ..asgi_types import (
        Headers,
        HTTPResponseBodyEvent,
        HTTPResponseStartEvent,
        Message,
        Receive,
        Scope,
        Send,
    )

__all__ = ["AsyncHttpConsumer"]


class AsyncHttpConsumer(AsyncConsumer):
    """An HTTP endpoint: implement :meth:`handle`, which gets the whole body.

    :meth:`handle` runs as a task of its own while the consumer keeps
    listening, so that:

    * a long-poll response can be left open (``send_body(b"",
      more_body=True)``) and finished later by a channel-layer event handler;
    * a streaming response (server-sent events) that loops forever is
      cancelled as soon as the client disconnects.

    Like a handler, :meth:`handle` never overlaps another handler: a
    channel-layer event that arrives while it runs is dispatched once it has
    returned. Events still waiting when the client disconnects are dropped.

    The instance stops once the response is complete (a body sent with
    ``more_body=False``), when the client disconnects, or when :meth:`handle`
    returns without having started a response. :meth:`disconnect` runs last
    in every case.
    """

    #: The request body's chunks received so far.
    body: list[bytes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Set up here rather than in __init__, so that as_asgi() can check its
        # keyword arguments against the class (it does so when __init__ is the
        # base class's).
        self.body = []
        self._response_started = False
        self._response_finished = False
        self._handle_task: asyncio.Task[None] | None = None
        self._client_gone = False

        async def receive_watching_for_disconnect() -> Message:
            message = await receive()
            if message.get("type") == "http.disconnect":
                self._client_gone = True
                # A streaming handle() never returns by itself and holds the
                # dispatch lock: stop it now so http_disconnect can run.
                if self._handle_task is not None:
                    self._handle_task.cancel()
            return message

        try:
            await super().__call__(scope, receive_watching_for_disconnect, send)
        finally:
            await self.disconnect()

    # -- the response ------------------------------------------------------------

    async def send_headers(
        self,
        *,
        status: int = 200,
        headers: Headers | Mapping[bytes, bytes] | None = None,
    ) -> None:
        """Start the response. *headers* is a list of (name, value) byte pairs or a dict."""
        if headers is None:
            header_list: list[tuple[bytes, bytes]] = []
        elif isinstance(headers, Mapping):
            header_list = list(headers.items())
        else:
            header_list = list(headers)
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": status,
            "headers": header_list,
        }
        await self.send(_as_message(start))

    async def send_body(self, body: bytes, *, more_body: bool = False) -> None:
        """Send a chunk of the body; ``more_body=True`` keeps the response open."""
        if not isinstance(body, (bytes, bytearray)):
            raise TypeError(f"send_body() takes bytes, not {type(body).__name__}")
        event: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": bytes(body),
            "more_body": more_body,
        }
        await self.send(_as_message(event))

    async def send_response(
        self,
        status: int,
        body: bytes,
        *,
        headers: Headers | Mapping[bytes, bytes] | None = None,
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
        if self._client_gone and message.get("type") != "http.disconnect":
            return  # nobody left to answer; the instance is stopping
        await super().dispatch(message)
        # An event handler (a long-poll's channel-layer event) finished the response.
        if self._response_finished:
            raise StopConsumer()

    async def _handle(self, body: bytes) -> None:
        # handle() runs alone, like a handler: a channel-layer event that
        # arrives meanwhile (a long-poll's answer) waits until it returns, so
        # it never finds the response not yet started.
        await self._in_turn(self.handle, body)
        if self._response_finished or not self._response_started:
            raise StopConsumer()
        # Otherwise the response stays open for events to finish it.
