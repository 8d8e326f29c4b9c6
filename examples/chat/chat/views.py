"""The index page (pick a room, see message counts) and the room page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from .consumers import CLOSE_INVALID_ROOM, MAX_MESSAGE_LENGTH
from .models import RoomStats
from .rooms import MAX_ROOM_NAME_LENGTH, InvalidRoomName, clean_room_name

#: How many of the busiest rooms the index page lists.
BUSIEST_ROOMS = 20


def index(request: HttpRequest) -> HttpResponse:
    """List the busiest rooms; with ``?room=<name>``, go to that room.

    The form goes through this view rather than straight to ``/chat/<name>/``
    so that a name is checked (and quoted into a URL) in one place, and an
    unusable one is explained next to the input.
    """
    requested = request.GET.get("room")
    error = None
    if requested is not None:
        try:
            room_name = clean_room_name(requested.strip())
        except InvalidRoomName as exc:
            error = str(exc)
        else:
            return redirect("chat:room", room_name=room_name)
    context: dict[str, object] = {
        "rooms": RoomStats.objects.order_by("-message_count", "room_name")[:BUSIEST_ROOMS],
        "error": error,
        "requested": requested or "",
        "max_room_name_length": MAX_ROOM_NAME_LENGTH,
    }
    return render(request, "chat/index.html", context, status=400 if error else 200)


def room(request: HttpRequest, room_name: str) -> HttpResponse:
    """The room page; its script opens the WebSocket to ``/ws/chat/<room_name>/``."""
    try:
        room_name = clean_room_name(room_name)
    except InvalidRoomName as exc:
        return render(
            request, "chat/room.html", {"room_name": room_name, "error": str(exc)}, status=400
        )
    context: dict[str, object] = {
        "room_name": room_name,
        "error": None,
        "max_message_length": MAX_MESSAGE_LENGTH,
        "close_invalid_room": CLOSE_INVALID_ROOM,
    }
    return render(request, "chat/room.html", context)
