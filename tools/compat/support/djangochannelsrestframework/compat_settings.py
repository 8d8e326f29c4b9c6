"""Django settings for djangochannelsrestframework's tests.

The sdist ships its test modules but not the settings they run under; these
are the smallest settings under which those modules import and run: the
models they use (auth's user, the ``tests`` app), SQLite in memory, and the
in-memory channel layer that the tests reconfigure one by one.
"""

SECRET_KEY = "compat-tests-only"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "tests",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
