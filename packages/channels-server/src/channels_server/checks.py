"""Django system checks for projects that install ``channels_server``.

``channels_server.E001``: ``channels_server`` is listed after
``django.contrib.staticfiles`` in ``INSTALLED_APPS``. Django takes a
management command from the first installed application that has one, so
staticfiles' ``runserver`` (Django's WSGI development server, without
WebSockets) would win, with nothing to say so. daphne has the same check
(``daphne.E001``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.core.checks import CheckMessage, Error

__all__ = ["check_installed_before_staticfiles", "staticfiles_order_errors"]

_STATICFILES = "django.contrib.staticfiles"


def staticfiles_order_errors(app_name: str) -> list[CheckMessage]:
    """``<app_name>.E001`` when the application *app_name* comes after staticfiles.

    Shared with the compatibility ``daphne`` distribution, whose ``daphne``
    application brings the same ``runserver`` and so needs the same order.
    """
    names = [config.name for config in apps.get_app_configs()]
    # The registry of checks outlives settings overrides: say nothing for a
    # project in which the application is not installed (any more).
    if app_name not in names or _STATICFILES not in names:
        return []
    if names.index(app_name) < names.index(_STATICFILES):
        return []
    return [
        Error(
            f"{app_name} is listed after django.contrib.staticfiles in INSTALLED_APPS, "
            "so 'manage.py runserver' runs Django's WSGI development server (staticfiles' "
            "runserver command wins), not channels-server.",
            hint=f"Move '{app_name}' above 'django.contrib.staticfiles' in INSTALLED_APPS.",
            id=f"{app_name}.E001",
        )
    ]


def check_installed_before_staticfiles(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``channels_server.E001`` when ``channels_server`` comes after staticfiles."""
    return staticfiles_order_errors("channels_server")
