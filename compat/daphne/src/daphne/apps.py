"""The ``daphne`` Django application: channels-server's, under Daphne's name.

Put ``"daphne"`` above ``django.contrib.staticfiles`` in ``INSTALLED_APPS``, as
Daphne's documentation says, and ``manage.py runserver`` is channels-server's;
the system check ``daphne.E001`` reports the wrong order.
"""

from __future__ import annotations

from django.core import checks

# The module, not the class: Django picks the one AppConfig subclass a module
# defines, and an imported ChannelsServerConfig would be a second candidate.
from channels_server import apps as _server_apps

__all__ = ["DaphneConfig"]


class DaphneConfig(_server_apps.ChannelsServerConfig):
    """channels-server's application configuration, installed as ``daphne``."""

    default = True
    name = "daphne"
    label = "daphne"
    verbose_name = "Daphne (channels-server)"

    def ready(self) -> None:
        super().ready()
        from .checks import check_installed_before_staticfiles

        checks.register(check_installed_before_staticfiles)
