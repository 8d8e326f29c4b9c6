"""The chat WebSocket: ``/ws/chat/<room name>/``.

The client sends text frames holding ``{"message": "..."}``. Every socket
in the same room receives ``{"type": "chat", "message": "...", "user":
"..."}``, where *user* is the sender's username, or ``"anonymous"`` for a
visitor who is not logged in.

Problems are reported to the client, never turned into a server error:

* a room name that breaks the rule in :mod:`chat.rooms`: the socket is
  accepted, sent ``{"type": "error", "code": ..., "error": "<why>"}`` and
  closed with code :data:`CLOSE_INVALID_ROOM` and the same text as the
  reason;
* a frame that is not ``{"message": "<text>"}``, or a message over
  :data:`MAX_MESSAGE_LENGTH` characters: an error frame like the one above,
  and the socket stays open.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import BaseChannelLayer
from django.core.exceptions import ImproperlyConfigured

from .rooms import InvalidRoomName, clean_room_name, group_name_for
from .stats import report_message

__all__ = ["ANONYMOUS_NAME", "CLOSE_INVALID_ROOM", "MAX_MESSAGE_LENGTH", "ChatConsumer"]

logger = logging.getLogger(__name__)

#: The close code for a room name that breaks the rule (4000-4999 are for
#: applications, RFC 6455 section 7.4.2; 4400 echoes HTTP's 400).
CLOSE_INVALID_ROOM = 4400
#: The longest chat message, in characters.
MAX_MESSAGE_LENGTH = 4000
#: How messages from visitors who are not logged in are signed.
ANONYMOUS_NAME = "anonymous"


class _BadFrame(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _message_from(text_data: str | None) -> str:
    """The chat message in a client frame, or ``_BadFrame`` saying what is wrong."""
    if text_data is None:
        raise _BadFrame("bad_frame", 'Send text frames holding {"message": "..."}.')
    try:
        content = json.loads(text_data)
    except ValueError:
        raise _BadFrame("bad_frame", "The frame is not valid JSON.") from None
    message = content.get("message") if isinstance(content, dict) else None
    if not isinstance(message, str):
        raise _BadFrame("bad_frame", 'Send {"message": "..."} with the message as a string.')
    if not message.strip():
        raise _BadFrame("empty_message", "The message is empty.")
    if len(message) > MAX_MESSAGE_LENGTH:
        raise _BadFrame(
            "message_too_long",
            f"Messages can be at most {MAX_MESSAGE_LENGTH} characters long; "
            f"this one has {len(message)}.",
        )
    return message


def _display_name(user: Any) -> str:
    if user is None or not user.is_authenticated:
        return ANONYMOUS_NAME
    return str(user.get_username())


class ChatConsumer(AsyncWebsocketConsumer):
    """One chat participant: relays their messages to the room and the room's to them."""

    room_name: str
    author: str
    #: The room's group, once joined; ``None`` for a refused socket.
    group_name: str | None = None

    @property
    def layer(self) -> BaseChannelLayer:
        if self.channel_layer is None:
            raise ImproperlyConfigured("The chat needs a channel layer: set CHANNEL_LAYERS")
        return self.channel_layer

    async def connect(self) -> None:
        try:
            self.room_name = clean_room_name(self.scope["url_route"]["kwargs"]["room_name"])
        except InvalidRoomName as exc:
            await self.refuse(exc)
            return
        # Resolved by AuthMiddleware before the consumer started, so reading
        # it here does not touch the database.
        self.author = _display_name(self.scope.get("user"))
        group_name = group_name_for(self.room_name)
        await self.layer.group_add(group_name, self.channel_name)
        self.group_name = group_name
        await self.accept()

    async def refuse(self, error: InvalidRoomName) -> None:
        """Tell the client why its room name is refused, then close."""
        # Accept first: a handshake refused before it is accepted reaches the
        # browser as a bare HTTP 403, and the page could not say why.
        await self.accept()
        await self.send_error(error.code, str(error))
        await self.close(code=CLOSE_INVALID_ROOM, reason=str(error))

    async def send_error(self, code: str, text: str) -> None:
        await self.send(text_data=json.dumps({"type": "error", "code": code, "error": text}))

    async def disconnect(self, code: int) -> None:
        if self.group_name is not None:
            await self.layer.group_discard(self.group_name, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.group_name is None:
            return  # a refused socket: frames sent before our close arrived
        try:
            message = _message_from(text_data)
        except _BadFrame as exc:
            await self.send_error(exc.code, str(exc))
            return
        await self.layer.group_send(
            self.group_name, {"type": "chat.message", "message": message, "user": self.author}
        )
        # After the message went out: counting is a side job that must never
        # hold up or break the chat (report_message drops the event when no
        # worker is reading).
        await report_message(self.layer, self.room_name)

    async def chat_message(self, event: dict[str, Any]) -> None:
        """A message posted in the room (ours included): pass it to the client."""
        await self.send(
            text_data=json.dumps(
                {"type": "chat", "message": event["message"], "user": event["user"]}
            )
        )
