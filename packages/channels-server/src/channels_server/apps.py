"""The ``channels_server`` Django application.

Put ``"channels_server"`` in ``INSTALLED_APPS`` (above
``django.contrib.staticfiles``, whose ``runserver`` it replaces) and
``manage.py runserver`` serves ``ASGI_APPLICATION`` with channels-server.
"""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["ChannelsServerConfig"]


class ChannelsServerConfig(AppConfig):
    name = "channels_server"
    verbose_name = "Channels server"
