"""The ``channels_server`` Django application.

Put ``"channels_server"`` in ``INSTALLED_APPS`` (above
``django.contrib.staticfiles``, whose ``runserver`` it replaces) and
``manage.py runserver`` serves ``ASGI_APPLICATION`` with channels-server.
The system check ``channels_server.E001`` reports the wrong order.
"""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks

__all__ = ["ChannelsServerConfig"]


class ChannelsServerConfig(AppConfig):
    name = "channels_server"
    verbose_name = "Channels server"

    def ready(self) -> None:
        from .checks import check_installed_before_staticfiles

        # Registering the same function again (a second ready()) is a no-op:
        # the registry is a set.
        checks.register(check_installed_before_staticfiles)
