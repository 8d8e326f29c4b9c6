"""The chat's pages: the index (pick a room) and a room."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "chat"
urlpatterns = [
    path("", views.index, name="index"),
    # "path" rather than "str": a name with a "/" gets the room page's
    # explanation instead of a 404.
    path("<path:room_name>/", views.room, name="room"),
]
