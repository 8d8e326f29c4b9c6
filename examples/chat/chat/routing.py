"""Where WebSocket paths and worker channels lead (used by ``mysite/asgi.py``)."""

from __future__ import annotations

from django.urls import re_path

from .consumers import ChatConsumer
from .stats import STATS_CHANNEL, RoomStatsConsumer

# Everything between "ws/chat/" and the last "/" is the room name, slashes
# and all: ChatConsumer refuses bad names with a reason the page can show,
# where a path that matched no route would only be a server error.
websocket_urlpatterns = [
    re_path(r"^ws/chat/(?P<room_name>.*)/$", ChatConsumer.as_asgi()),
]

# For `manage.py runworker chat-stats`.
channel_routes = {
    STATS_CHANNEL: RoomStatsConsumer.as_asgi(),
}
