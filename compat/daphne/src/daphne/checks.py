"""``daphne.E001``: ``daphne`` is listed after ``django.contrib.staticfiles``.

Django takes ``runserver`` from the first installed application that has one,
so with staticfiles first, ``manage.py runserver`` would be Django's WSGI
development server, without WebSockets. channels-server's own check
(``channels_server.E001``) looks for ``channels_server``; this one, with
Daphne's identifier, for the ``daphne`` application.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.core.checks import CheckMessage, Error

__all__ = ["check_installed_before_staticfiles"]

_STATICFILES = "django.contrib.staticfiles"


def check_installed_before_staticfiles(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``daphne.E001`` when ``daphne`` comes after staticfiles in ``INSTALLED_APPS``."""
    names = [config.name for config in apps.get_app_configs()]
    if "daphne" not in names or _STATICFILES not in names:
        return []
    if names.index("daphne") < names.index(_STATICFILES):
        return []
    return [
        Error(
            "daphne is listed after django.contrib.staticfiles in INSTALLED_APPS, so "
            "'manage.py runserver' runs Django's WSGI development server (staticfiles' "
            "runserver command wins), not channels-server.",
            hint="Move 'daphne' above 'django.contrib.staticfiles' in INSTALLED_APPS.",
            id="daphne.E001",
        )
    ]
