"""Fixtures for the channels-server tests; what they hand out lives in ``_support/``.

* ``serve``: ``await serve(app, **config)`` starts a real
  :class:`~channels_server.Server` on 127.0.0.1, port 0, in the test's event
  loop (every asynchronous test runs on asyncio and on uvloop);
* ``http``: raw-socket helpers, and an independent parser (an h11 client) for
  what the server sends back;
* ``websocket``: an independent WebSocket client (autobahn);
* ``pairs``: in-memory client/server pairs for the sans-IO engines;
* ``strategies``: the hypothesis strategies for request lines, headers and
  bodies (test modules cannot import each other under
  ``--import-mode=importlib``, so they get them through this fixture);
* ``apps``: small ASGI applications the tests serve; ``recorder``, a fresh
  one that records what it receives;
* ``unused_port``, ``tmp_socket_path``: a free TCP port, a short Unix socket path.

Django is configured here for the runserver and live-server tests (a SQLite
file database in a temporary directory).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio

from channels_server import Server
from channels_testing._support_loader import support_loader

# ``--import-mode=importlib`` puts no test folder on ``sys.path``.
_support = support_loader(__file__, "channels_server_test_support")


servers = _support("servers")


def pytest_configure() -> None:
    _support("django_project").configure()


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """Every asynchronous test runs on asyncio's loop and on uvloop's."""
    return servers.loop_factories()


@pytest_asyncio.fixture(params=["h11", "httptools"])
async def serve(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    """``await serve(app, **config)`` starts a server on 127.0.0.1 (a free port), lifespan off.

    Every test that uses it runs with both HTTP parsers.
    """
    started = servers.StartedServers(http=request.param)
    yield started.start
    await started.shutdown()


@pytest.fixture
def http() -> SimpleNamespace:
    client = _support("http_client")
    return SimpleNamespace(
        parse=client.parse_responses,
        exchange=client.exchange,
        read_response=client.read_response,
        port_of=servers.port_of,
    )


@pytest.fixture
def websocket() -> SimpleNamespace:
    return SimpleNamespace(connect=_support("websocket_client").ws_connect)


@pytest.fixture
def pairs() -> SimpleNamespace:
    module = _support("pairs")
    return SimpleNamespace(http=module.HTTPPair, websocket=module.WebSocketPair)


def _exported(module: str) -> SimpleNamespace:
    """What ``_support.<module>`` exports (its ``__all__``), as attributes."""
    found = _support(module)
    return SimpleNamespace(**{name: getattr(found, name) for name in found.__all__})


@pytest.fixture(scope="session")
def strategies() -> SimpleNamespace:
    return _exported("strategies")


@pytest.fixture
def apps() -> SimpleNamespace:
    return _exported("apps")


@pytest.fixture
def recorder() -> Any:
    """A fresh ``Recorder`` (``_support/apps.py``): it records scopes and
    messages, answers 200 ``ok`` and holds WebSockets open."""
    return _support("apps").Recorder()


@pytest.fixture
def unused_port() -> int:
    return servers.free_port()


@pytest.fixture
def tmp_socket_path() -> str:
    return servers.short_socket_path()
