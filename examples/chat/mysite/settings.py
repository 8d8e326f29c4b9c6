"""Settings of the chat example.

Meant for running on your own machine: the secret key has a development
default and ``DEBUG`` is on unless ``DJANGO_DEBUG=0``. Environment variables:

``REDIS_URL``
    Use ``channels_redis`` (``redis://127.0.0.1:6379/0`` for example) as the
    channel layer instead of the in-memory one. Needed as soon as more than
    one process takes part: a second server, or ``runworker`` in a process
    of its own.
``CHAT_DATABASE``
    The SQLite database file (default: ``db.sqlite3`` next to ``manage.py``).
``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG``
    The usual Django settings.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "chat-example-not-secret-do-not-deploy")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") != "0"
# AllowedHostsOriginValidator checks WebSocket origins against this list too.
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

# channels_server provides `manage.py runserver` with WebSocket support and must
# come first so that its runserver wins over staticfiles' one. Without it the
# project still works: serve it with any ASGI server.
_SERVER_APPS = ["channels_server"] if importlib.util.find_spec("channels_server") else []

INSTALLED_APPS = [
    *_SERVER_APPS,
    "channels",  # runworker
    "chat",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mysite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ],
        },
    },
]

ASGI_APPLICATION = "mysite.asgi.application"

DATABASES: dict[str, dict[str, Any]] = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CHAT_DATABASE") or BASE_DIR / "db.sqlite3",
        # A file rather than SQLite's default in-memory test database: the
        # live server of the browser tests and the threads that run database
        # code for async consumers must all see the same data.
        "TEST": {"NAME": BASE_DIR / "db_test.sqlite3"},
    }
}


def _channel_layers() -> dict[str, Any]:
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        return {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [redis_url]},
            }
        }
    # One process only: the server and the worker must share it to talk.
    return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


CHANNEL_LAYERS = _channel_layers()

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat:index"
LOGOUT_REDIRECT_URL = "chat:index"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"chat": {"handlers": ["console"], "level": "INFO"}},
}
