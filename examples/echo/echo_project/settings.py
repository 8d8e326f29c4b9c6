"""Settings of the echo example: no database, the in-memory channel layer."""

SECRET_KEY = "echo-example-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channels"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "echo_project.urls"
TEMPLATES: list[dict[str, object]] = []
DATABASES: dict[str, object] = {}
ASGI_APPLICATION = "echo_project.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
USE_TZ = True
