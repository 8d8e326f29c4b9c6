"""The ASGI application: Django for HTTP, the chat consumer for WebSockets,
and the stats consumer for the ``chat-stats`` worker channel.

Serve it with ``channels-server mysite.asgi:application`` or
``python manage.py runserver``; run the worker with
``python manage.py runworker chat-stats``.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
# Set Django up (get_asgi_application does) before importing anything that
# imports models, such as the consumers.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from chat.routing import channel_routes, websocket_urlpatterns  # noqa: E402

if settings.DEBUG:
    # Serve room.js in development under any ASGI server, as Django's own
    # runserver would; in production, collectstatic and a web server do.
    django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Outermost, the origin check: a page on another site cannot open a
        # socket that rides on our user's session cookie.
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
        "channel": ChannelNameRouter(channel_routes),
    }
)
