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

from django.apps import AppConfig
from django.core.checks import CheckMessage

from channels_server.checks import staticfiles_order_errors

__all__ = ["check_installed_before_staticfiles"]


def check_installed_before_staticfiles(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``daphne.E001`` when ``daphne`` comes after staticfiles in ``INSTALLED_APPS``."""
    return staticfiles_order_errors("daphne")
