"""The echo example's ASGI application: Django for HTTP, the echo consumer for WebSockets."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "echo_project.settings")
django_application = get_asgi_application()

from django.urls import path  # noqa: E402

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from .consumers import EchoConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": URLRouter([path("ws/echo/", EchoConsumer.as_asgi())]),
    }
)
