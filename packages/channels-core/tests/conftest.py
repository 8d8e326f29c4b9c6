"""Django settings for the channels-core tests.

The database is a real one: a SQLite file in a temporary directory by
default, or PostgreSQL when ``CHANNELS_TEST_DATABASE=postgres`` (the nox
``tests`` session's ``--postgres`` option sets it; host, port and user come
from ``PGHOST``/``PGPORT``/``PGUSER`` and default to 127.0.0.1:5432, postgres).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import django
from django.conf import settings


def _databases() -> dict[str, Any]:
    if os.environ.get("CHANNELS_TEST_DATABASE") == "postgres":
        return {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "channels_core",
                "USER": os.environ.get("PGUSER", "postgres"),
                "HOST": os.environ.get("PGHOST", "127.0.0.1"),
                "PORT": os.environ.get("PGPORT", "5432"),
                "TEST": {"NAME": f"test_channels_core_{os.getpid()}"},
            }
        }
    directory = Path(tempfile.mkdtemp(prefix="channels-core-tests-"))
    return {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(directory / "db.sqlite3"),
            # A file, not :memory:, so that worker threads share the database.
            "TEST": {"NAME": str(directory / "test.sqlite3")},
        }
    }


def pytest_configure() -> None:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="channels-core-tests-not-secret",
        ALLOWED_HOSTS=["testserver", "example.com"],
        DATABASES=_databases(),
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "channels",
        ],
        MIDDLEWARE=[],
        ROOT_URLCONF=None,
        CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
        SESSION_ENGINE="django.contrib.sessions.backends.db",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        USE_TZ=True,
    )
    django.setup()
