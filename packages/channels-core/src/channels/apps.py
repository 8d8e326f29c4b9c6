"""The ``channels`` Django application (add ``"channels"`` to ``INSTALLED_APPS``)."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["ChannelsConfig"]


class ChannelsConfig(AppConfig):
    name = "channels"
    verbose_name = "Channels"
