"""The pytest plugin of channels-testing, loaded by pytest on its own once installed.

Fixtures:

``channels_in_memory_layer``
    For one test, ``CHANNEL_LAYERS`` is the in-memory layer (whatever the
    settings say: no Redis needed); the fixture's value is that layer, the
    one ``get_channel_layer()`` and every consumer get. Afterwards the
    settings are back and the layer is gone with everything it held.

``channels_live_server``
    channels-server serving ``ASGI_APPLICATION`` (and static files) on a free
    port, started once per test session in a background thread; ``.url``
    (``http://localhost:PORT``) and ``.ws_url`` (``ws://localhost:PORT``).
    A test that uses it gets pytest-django's ``transactional_db``, so that
    the server's thread sees the test's data. It needs pytest-django,
    channels-server (``pip install channels-testing[live]``), and a database
    other threads can share (not an in-memory SQLite database).

Being a plugin also has pytest rewrite the asserts of every module of this
package (pytest does that for the packages of its plugins), so that a layer
failing :mod:`channels_testing.conformance` gets pytest's detailed messages.

Nothing here imports Django until a fixture that needs it is used: the
communicators keep working in projects without Django.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

__all__ = [
    "LiveServer",
    "channels_in_memory_layer",
    "channels_live_server",
    "pytest_collection_modifyitems",
]

_IN_MEMORY_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def channels_in_memory_layer() -> Iterator[Any]:
    """The in-memory channel layer, as ``CHANNEL_LAYERS`` for the duration of a test."""
    from django.test import override_settings

    from channels.layers import get_channel_layer

    with override_settings(CHANNEL_LAYERS=_IN_MEMORY_LAYERS):
        yield get_channel_layer()


class LiveServer:
    """channels-server running the project for a test session.

    ``port`` is the port it listens on (the operating system picked it).
    """

    def __init__(self, host: str = "localhost", serve_static: bool = True) -> None:
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
        from django.test.utils import modify_settings

        from .live import ChannelsServerProcess, start_server

        self.host = host
        self._allowed = modify_settings(ALLOWED_HOSTS={"append": host})
        self._allowed.enable()
        try:
            self._process, self.port = start_server(
                ChannelsServerProcess, host, ASGIStaticFilesHandler if serve_static else None
            )
        except BaseException:
            self._allowed.disable()
            raise

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://host:port``."""
        return f"ws://{self.host}:{self.port}"

    def stop(self) -> None:
        self._process.terminate()
        self._process.join()
        self._allowed.disable()

    def __str__(self) -> str:
        return self.url


@pytest.fixture(scope="session")
def channels_live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """channels-server serving the project on a free port (see the module's documentation)."""
    if not request.config.pluginmanager.hasplugin("django"):
        raise pytest.UsageError(
            "channels_live_server needs pytest-django (pip install pytest-django), "
            "which sets Django up and gives the test database"
        )
    # pytest-django's own guard: the session fixture may set settings and
    # start the server, which touch no data.
    blocker = request.getfixturevalue("django_db_blocker")
    with blocker.unblock():
        server = LiveServer()
    yield server
    server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # pytest-django creates the test databases that collected tests ask for,
    # by marker or fixture name; a test of the live server asks for one.
    for item in items:
        uses_server = "channels_live_server" in getattr(item, "fixturenames", ())
        if uses_server and item.get_closest_marker("django_db") is None:
            item.add_marker(pytest.mark.django_db(transaction=True))


@pytest.fixture(autouse=True)
def _channels_live_server_database(request: pytest.FixtureRequest) -> None:
    """Tests using ``channels_live_server`` get ``transactional_db``."""
    if "channels_live_server" in request.fixturenames:
        request.getfixturevalue("transactional_db")
        # Only now is the test database known (the server, session-scoped,
        # started before it was set up).
        from .live import require_shared_database

        require_shared_database("channels_live_server")
