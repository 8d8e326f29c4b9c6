"""Django for the runserver and live-server tests: a SQLite file database in a
temporary directory, a URLconf and an ASGI application made as modules here."""

from __future__ import annotations

import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import django
from django.conf import settings

URLCONF = "channels_server_test_urls"
ASGI_MODULE = "channels_server_test_asgi"


def configure() -> None:
    """Configure Django once (unless another package's conftest did) and install the modules."""
    directory = Path(tempfile.mkdtemp(prefix="channels-server-tests-"))
    static_dir = directory / "static"
    static_dir.mkdir()
    (static_dir / "hello.txt").write_text("static hello\n")
    if settings.configured:
        # Another package's conftest configured Django first (one pytest run
        # over several packages): the tests that need more override it.
        install_test_modules(static_dir)
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="channels-server-tests-not-secret",
        ALLOWED_HOSTS=["*"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(directory / "db.sqlite3"),
                "TEST": {"NAME": str(directory / "test.sqlite3")},
            }
        },
        INSTALLED_APPS=[
            "channels_server",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.staticfiles",
            "channels",
        ],
        MIDDLEWARE=[],
        ROOT_URLCONF=URLCONF,
        ASGI_APPLICATION=f"{ASGI_MODULE}.application",
        STATIC_URL="/static/",
        STATICFILES_DIRS=[str(static_dir)],
        CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
        USE_TZ=True,
    )
    django.setup()
    install_test_modules(static_dir)


def install_test_modules(static_dir: Path) -> None:
    """The URLconf and ASGI modules the settings name, put in ``sys.modules``
    (made here: test modules cannot be imported by name)."""
    # Imported here: they need the settings configured.
    from django.http import HttpResponse
    from django.urls import path

    def hello(request: Any) -> HttpResponse:
        return HttpResponse(f"hello from django {request.method} {request.path}")

    module = types.ModuleType(URLCONF)
    module.urlpatterns = [path("hello/", hello)]  # type: ignore[attr-defined]
    # What the live-server tests override settings with when they are not these.
    module.TEST_SETTINGS = {  # type: ignore[attr-defined]
        "ROOT_URLCONF": URLCONF,
        "ASGI_APPLICATION": f"{ASGI_MODULE}.application",
        "STATIC_URL": "/static/",
        "STATICFILES_DIRS": [str(static_dir)],
    }
    sys.modules[module.__name__] = module

    asgi = types.ModuleType(ASGI_MODULE)
    asgi.application = _asgi_application()  # type: ignore[attr-defined]
    sys.modules[asgi.__name__] = asgi


def _asgi_application() -> Any:
    """Django views over HTTP, and consumers over WebSocket (one of them reads the database)."""
    from django.contrib.auth.models import User
    from django.core.asgi import get_asgi_application
    from django.urls import path

    from channels.db import database_sync_to_async
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import ProtocolTypeRouter, URLRouter

    class EchoConsumer(AsyncWebsocketConsumer):
        async def receive(
            self, text_data: str | None = None, bytes_data: bytes | None = None
        ) -> None:
            await self.send(text_data=text_data, bytes_data=bytes_data)

    class UsersConsumer(AsyncWebsocketConsumer):
        async def receive(
            self, text_data: str | None = None, bytes_data: bytes | None = None
        ) -> None:
            names = await database_sync_to_async(
                lambda: sorted(User.objects.values_list("username", flat=True))
            )()
            await self.send(text_data=",".join(names))

    return ProtocolTypeRouter(
        {
            "http": get_asgi_application(),
            "websocket": URLRouter(
                [
                    path("ws/echo/", EchoConsumer.as_asgi()),
                    path("ws/users/", UsersConsumer.as_asgi()),
                ]
            ),
        }
    )
