"""Django settings for channels_postgres's tests.

The sdist ships ``tests/test_core.py`` but not the settings it reads:
``DATABASES["channels_postgres"]`` (the layer's connection, also used to send
``NOTIFY``) and the ``channels_postgres`` app, whose migrations create the
layer's tables and triggers. ``run_third_party.py`` creates a database of its
own for each run (LISTEN/NOTIFY is per database, so runs cannot see each
other), names it in ``CHANNELS_COMPAT_PG_NAME``, migrates it, and drops it.
"""

import os

_DATABASE = {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": os.environ["CHANNELS_COMPAT_PG_NAME"],
    "USER": os.environ.get("CHANNELS_COMPAT_PG_USER", "postgres"),
    "PASSWORD": os.environ.get("CHANNELS_COMPAT_PG_PASSWORD", ""),
    "HOST": os.environ.get("CHANNELS_COMPAT_PG_HOST", "127.0.0.1"),
    "PORT": os.environ.get("CHANNELS_COMPAT_PG_PORT", "5432"),
}
SECRET_KEY = "compat-tests-only"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "channels_postgres",
]
DATABASES = {"default": dict(_DATABASE), "channels_postgres": dict(_DATABASE)}
USE_TZ = True
