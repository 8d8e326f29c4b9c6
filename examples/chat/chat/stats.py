"""Message counts per room, kept by a background worker.

The chat consumer sends one ``room.message`` event to the ``chat-stats``
channel for every chat message; :class:`RoomStatsConsumer`, run by::

    python manage.py runworker chat-stats

reads them and adds them up in :class:`~chat.models.RoomStats`. The chat
never waits for the worker: if no worker runs, the events pile up on the
channel until it is full (or they expire), after which new ones are dropped,
and the counts simply stop changing. They pick up again when a worker runs.

A worker only sees events sent through the same channel layer. With the
in-memory layer (the default) that means the same process, so run the worker
in its own process only with ``REDIS_URL`` set (see the README).
"""

from __future__ import annotations

import logging
from typing import Any

from channels.consumer import SyncConsumer
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer

from .models import RoomStats
from .rooms import InvalidRoomName, clean_room_name

__all__ = ["STATS_CHANNEL", "RoomStatsConsumer", "report_message"]

logger = logging.getLogger(__name__)

#: The channel the worker listens on (``runworker chat-stats``).
STATS_CHANNEL = "chat-stats"

# Log that the worker is missing once per process, not once per message.
_warned_full = False


async def report_message(layer: BaseChannelLayer, room_name: str) -> bool:
    """Tell the stats worker about one message in *room_name*.

    Returns ``False`` when the event was dropped because the channel is full
    (no worker is reading it, or it is far behind); the chat goes on either way.
    """
    global _warned_full
    try:
        await layer.send(STATS_CHANNEL, {"type": "room.message", "room": room_name})
    except ChannelFull:
        level = logging.DEBUG if _warned_full else logging.WARNING
        _warned_full = True
        logger.log(
            level,
            "Channel %r is full, message counts are not being updated: "
            "is `manage.py runworker %s` running on the same channel layer?",
            STATS_CHANNEL,
            STATS_CHANNEL,
        )
        return False
    return True


class RoomStatsConsumer(SyncConsumer):
    """Counts ``room.message`` events per room in the database.

    A ``SyncConsumer``: its handler runs in a worker thread, where the ORM
    may block. Malformed events are logged and skipped, so one bad event
    never stops the counting.
    """

    def room_message(self, event: dict[str, Any]) -> None:
        try:
            room_name = clean_room_name(event.get("room"))
        except InvalidRoomName as exc:
            logger.warning("Dropped a room.message event with a bad room name: %s", exc)
            return
        RoomStats.count_message(room_name)
