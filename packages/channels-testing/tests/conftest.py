"""Fixtures for the channels-testing tests.

``django_project``: ``django_project(settings=..., asgi=...)`` writes a small
Django project (package ``project``: settings, a ``users/`` view listing the
usernames, an ASGI module) and a ``pytest.ini`` naming it into the
``pytester`` directory, and returns the ``pytester`` to run pytest there, as
a user's project runs it. The test modules that use it load ``pytester``
(``pytest_plugins``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

# What every project's settings say; each test module adds its own lines.
SETTINGS = """
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECRET_KEY = "channels-testing-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = []
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "channels",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(HERE / "db.sqlite3"),
        "TEST": {"NAME": str(HERE / "test.sqlite3")},
    }
}
ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"
STATIC_URL = "static/"
USE_TZ = True
"""

URLS = """
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.urls import path


def users(request):
    return HttpResponse(",".join(user.username for user in User.objects.order_by("username")))


urlpatterns = [path("users/", users)]
"""

# The start of every project's ASGI module; each test module adds the application.
ASGI = """
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from django.core.asgi import get_asgi_application
"""

INI = """
[pytest]
DJANGO_SETTINGS_MODULE = project.settings
"""


@pytest.fixture
def django_project(pytester: pytest.Pytester) -> Callable[..., pytest.Pytester]:
    """Write the project, with *settings* and *asgi* appended and *ini* lines added."""

    def write(*, settings: str, asgi: str, ini: str = "") -> pytest.Pytester:
        package = pytester.mkpydir("project")
        (package / "settings.py").write_text(SETTINGS + settings)
        (package / "urls.py").write_text(URLS)
        (package / "asgi.py").write_text(ASGI + asgi)
        pytester.makefile(".ini", pytest=INI + ini)
        return pytester

    return write
