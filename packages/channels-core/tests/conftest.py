"""Django settings and shared fixtures for the channels-core tests.

Fixtures (test modules cannot import each other under
``--import-mode=importlib``, so what several of them use is here):

* ``layer_setting``: the test runs twice, without a channel layer and with a
  fresh in-memory one; ``layer``: a fresh in-memory layer as "default";
  ``no_layer``: no channel layer at all;
* ``stop``: ``await stop(communicator)`` cancels an application and waits
  until it has finished; ``tasks_left``: ``tasks_left(before)``, the tasks
  still pending that were not in *before* (``asyncio.all_tasks()``);
* ``leaving_client``: :class:`LeavingClient`, a server whose client goes away;
* ``documented_code``: ``documented_code(label, "sessions.rst")`` runs the
  first ``code-block`` after ``.. _label:`` in ``docs/topics/sessions.rst``
  and returns the names it defined, so that the documentation's examples are
  tested as written.

The database is a real one: a SQLite file in a temporary directory by
default, or PostgreSQL when ``CHANNELS_TEST_DATABASE=postgres`` (the nox
``tests`` session's ``--postgres`` option sets it; host, port and user come
from ``PGHOST``/``PGPORT``/``PGUSER`` and default to 127.0.0.1:5432, postgres).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import django
import pytest
from django.conf import settings

if TYPE_CHECKING:
    from channels.layers import InMemoryChannelLayer
    from channels.testing import ApplicationCommunicator

IN_MEMORY = {"BACKEND": "channels.layers.InMemoryChannelLayer"}


def _databases() -> dict[str, Any]:
    if os.environ.get("CHANNELS_TEST_DATABASE") == "postgres":
        return {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "channels_core",
                "USER": os.environ.get("PGUSER", "postgres"),
                "HOST": os.environ.get("PGHOST", "127.0.0.1"),
                "PORT": os.environ.get("PGPORT", "5432"),
                "TEST": {"NAME": f"test_channels_core_{os.getpid()}"},
            }
        }
    directory = Path(tempfile.mkdtemp(prefix="channels-core-tests-"))
    return {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(directory / "db.sqlite3"),
            # A file, not :memory:, so that worker threads share the database.
            "TEST": {"NAME": str(directory / "test.sqlite3")},
        }
    }


def pytest_configure() -> None:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="channels-core-tests-not-secret",
        ALLOWED_HOSTS=["testserver", "example.com"],
        DATABASES=_databases(),
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "channels",
        ],
        MIDDLEWARE=[],
        ROOT_URLCONF=None,
        CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
        SESSION_ENGINE="django.contrib.sessions.backends.db",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        USE_TZ=True,
    )
    django.setup()


# -- channel layers ---------------------------------------------------------------------


@pytest.fixture(params=["no-layer", "in-memory"])
def layer_setting(request: pytest.FixtureRequest, settings: Any) -> str:
    """Run the test once without a channel layer and once with a fresh in-memory one."""
    settings.CHANNEL_LAYERS = {} if request.param == "no-layer" else {"default": IN_MEMORY}
    return str(request.param)


@pytest.fixture
def layer(settings: Any) -> InMemoryChannelLayer:
    """A fresh in-memory layer as "default" (changing the setting drops the old one)."""
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    settings.CHANNEL_LAYERS = {"default": IN_MEMORY}
    found = get_channel_layer()
    assert isinstance(found, InMemoryChannelLayer)
    return found


@pytest.fixture
def no_layer(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {}


# -- applications and their tasks -------------------------------------------------------


async def _stop(communicator: ApplicationCommunicator) -> None:
    communicator.future.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await communicator.future


def _tasks_left(before: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    return {task for task in asyncio.all_tasks() if task not in before and not task.done()}


@pytest.fixture
def stop() -> Callable[[ApplicationCommunicator], Awaitable[None]]:
    """``await stop(communicator)``: cancel the application and wait until it has stopped."""
    return _stop


@pytest.fixture
def tasks_left() -> Callable[[set[asyncio.Task[Any]]], set[asyncio.Task[Any]]]:
    """``tasks_left(before)``: tasks still pending that were not in *before*."""
    return _tasks_left


class ClientGone(OSError):
    """What a server following ASGI www spec 2.4 raises from send() once the client has gone."""


class LeavingClient:
    """Wraps an application as such a server would: once :meth:`leave` is called,
    ``send()`` raises *error* (:class:`ClientGone` unless told) instead of
    delivering the event.

    ``refused`` holds the events it refused; ``refused_one`` is set at the first.
    """

    def __init__(self, application: Any, error: type[Exception] = ClientGone) -> None:
        self.application = application
        self.error = error
        self.gone = False
        self.refused: list[dict[str, Any]] = []
        self.refused_one = asyncio.Event()

    def leave(self) -> None:
        self.gone = True

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_unless_gone(message: dict[str, Any]) -> None:
            if self.gone:
                self.refused.append(message)
                self.refused_one.set()
                raise self.error(f"Cannot send {message['type']!r}: the client has gone")
            await send(message)

        await self.application(scope, receive, send_unless_gone)


@pytest.fixture
def leaving_client() -> type[LeavingClient]:
    """:class:`LeavingClient`: ``server = leaving_client(app)``, then ``server.leave()``."""
    return LeavingClient


# -- the documentation's examples -------------------------------------------------------

DOCS = Path(__file__).resolve().parents[3] / "docs" / "topics"


def _code_block_after(label: str, document: Path) -> str:
    """The first ``code-block`` after the ``.. _label:`` target in *document*."""
    lines = document.read_text(encoding="utf-8").splitlines()
    start = lines.index(f".. _{label}:")
    block = next(
        index for index in range(start, len(lines)) if lines[index].startswith(".. code-block::")
    )
    body: list[str] = []
    for line in lines[block + 1 :]:
        if line and not line.startswith(" "):
            break
        body.append(line)
    return textwrap.dedent("\n".join(body))


def _run_documented_code(label: str, document: str) -> dict[str, Any]:
    source = _code_block_after(label, DOCS / document)
    namespace: dict[str, Any] = {"__name__": "docs_" + label.replace("-", "_")}
    exec(compile(source, document, "exec"), namespace)
    return namespace


@pytest.fixture
def documented_code() -> Callable[[str, str], dict[str, Any]]:
    """``documented_code(label, document)``: the names the documented example defines."""
    return _run_documented_code
