"""The pytest plugin, run the way users run it: pytest over a small Django project.

Each test writes a project into a temporary directory and runs pytest on it
in a subprocess (``pytester``), where the plugin is loaded from its entry
point as in any project that installs channels-testing.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

pytest_plugins = ["pytester"]

SETTINGS = """
# A layer that cannot work here: the fixture must replace it.
CHANNEL_LAYERS = {"default": {"BACKEND": "project.nowhere.Layer"}}
"""

ASGI = """
django_application = get_asgi_application()

from channels.generic.websocket import WebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path


class Echo(WebsocketConsumer):
    def receive(self, text_data=None, bytes_data=None):
        self.send(text_data=text_data.upper())


application = ProtocolTypeRouter(
    {"http": django_application, "websocket": URLRouter([path("ws/", Echo.as_asgi())])}
)
"""


@pytest.fixture
def project(django_project: Callable[..., pytest.Pytester]) -> pytest.Pytester:
    return django_project(settings=SETTINGS, asgi=ASGI, ini="asyncio_mode = strict\n")


def test_the_in_memory_layer_replaces_the_configured_one_for_one_test(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(
        test_layer=textwrap.dedent(
            """
            import pytest
            from django.conf import settings

            from channels.layers import InMemoryChannelLayer, get_channel_layer


            @pytest.mark.asyncio
            async def test_layer(channels_in_memory_layer):
                assert isinstance(channels_in_memory_layer, InMemoryChannelLayer)
                assert get_channel_layer() is channels_in_memory_layer
                channel = await channels_in_memory_layer.new_channel()
                await channels_in_memory_layer.group_add("room", channel)
                await channels_in_memory_layer.group_send("room", {"type": "hello"})
                assert await channels_in_memory_layer.receive(channel) == {"type": "hello"}


            def test_after():
                # The project's own setting is back.
                assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "project.nowhere.Layer"
            """
        )
    )
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_the_live_server_serves_http_and_websockets_against_the_test_database(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(
        test_live=textwrap.dedent(
            """
            import base64
            import os
            import socket
            import urllib.request

            from django.contrib.auth.models import User


            def test_http_sees_the_tests_data(channels_live_server):
                User.objects.create(username="ada")
                User.objects.create(username="grace")
                with urllib.request.urlopen(channels_live_server.url + "/users/") as response:
                    assert response.read() == b"ada,grace"


            def test_each_test_starts_with_an_empty_database(channels_live_server):
                with urllib.request.urlopen(channels_live_server.url + "/users/") as response:
                    assert response.read() == b""


            def test_websocket_route(channels_live_server, channels_in_memory_layer):
                # (Consumers get a layer: the project's setting names none that works.)
                assert channels_live_server.ws_url.startswith("ws://localhost:")
                key = base64.b64encode(os.urandom(16)).decode()
                with socket.create_connection(("localhost", channels_live_server.port)) as sock:
                    sock.sendall(
                        (
                            "GET /ws/ HTTP/1.1\\r\\nHost: localhost\\r\\nUpgrade: websocket\\r\\n"
                            "Connection: Upgrade\\r\\nSec-WebSocket-Version: 13\\r\\n"
                            f"Sec-WebSocket-Key: {key}\\r\\n\\r\\n"
                        ).encode()
                    )
                    assert sock.recv(4096).startswith(b"HTTP/1.1 101 ")
            """
        )
    )
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_the_live_server_says_what_it_needs_without_pytest_django(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(test_live="def test_live(channels_live_server):\n    pass\n")
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:django")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*channels_live_server needs pytest-django*"])


def test_an_in_memory_sqlite_database_is_refused_clearly(project: pytest.Pytester) -> None:
    settings = project.path / "project" / "settings.py"
    settings.write_text(settings.read_text().replace('str(HERE / "test.sqlite3")', '":memory:"'))
    project.makepyfile(test_live="def test_live(channels_live_server):\n    pass\n")
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cannot use an in-memory SQLite database*"])


def test_conformance_failures_show_the_values_compared(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_conformance=textwrap.dedent(
            """
            import pytest

            from channels.layers import InMemoryChannelLayer
            from channels_testing.conformance import ChannelLayerConformance


            class Forgetful(InMemoryChannelLayer):
                async def receive(self, channel):
                    message = await super().receive(channel)
                    return {**message, "extra": "added by a bug"}


            class TestForgetful(ChannelLayerConformance):
                @pytest.fixture
                def make_channel_layer(self):
                    return lambda **options: Forgetful(**options)
            """
        )
    )
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-k", "test_send_then_receive")
    result.assert_outcomes(failed=1)
    # A rewritten assert explains the difference; a plain one shows only its message.
    result.stdout.fnmatch_lines(["*Left contains 1 more item*", "*'extra': 'added by a bug'*"])
