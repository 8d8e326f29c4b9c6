"""channels.db: database_sync_to_async and aclose_old_connections, against a real database.

The functions below run with committed data (``transaction=True``). The
``TestCase`` classes at the end drive consumers of every kind from inside
Django's test transaction, as a project's own test suite does.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.contrib.auth.models import User
from django.db import connection, connections, transaction
from django.test import TestCase

from channels.consumer import SyncConsumer
from channels.db import aclose_old_connections, database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer, JsonWebsocketConsumer
from channels.testing import HttpCommunicator, WebsocketCommunicator

committed = pytest.mark.django_db(transaction=True)


def this_threads_connection() -> Any:
    """The database wrapper of the calling thread (``connection`` is a per-thread proxy)."""
    return connections["default"]


def open_a_connection() -> Any:
    """Run a query and leave the connection open, as plain ORM code in a thread does."""
    User.objects.exists()
    wrapper = this_threads_connection()
    assert wrapper.connection is not None
    return wrapper


@database_sync_to_async
def create_user(name: str) -> tuple[int, Any, int]:
    user = User.objects.create_user(username=name)
    return user.pk, this_threads_connection(), threading.get_ident()


@committed
@pytest.mark.asyncio
async def test_as_a_decorator_runs_in_a_thread_and_closes_the_connection_after() -> None:
    pk, wrapper, thread = await create_user("ada")
    assert thread != threading.get_ident()
    assert await database_sync_to_async(User.objects.filter(pk=pk).exists)()
    # CONN_MAX_AGE is 0, so the connection the call opened is obsolete at its end.
    assert wrapper.connection is None


@committed
@pytest.mark.asyncio
async def test_as_a_wrapper_with_arguments() -> None:
    await create_user("grace")
    names = await database_sync_to_async(
        lambda prefix: list(
            User.objects.filter(username__startswith=prefix).values_list("username", flat=True)
        )
    )("gr")
    assert names == ["grace"]


@committed
@pytest.mark.asyncio
async def test_closes_old_connections_before_the_call() -> None:
    # Plain sync_to_async leaves the thread's connection open ...
    stale = await sync_to_async(open_a_connection)()

    @database_sync_to_async
    def connection_at_start() -> Any:
        wrapper = this_threads_connection()
        return wrapper, wrapper.connection

    # ... database_sync_to_async runs in that same thread and closes it first.
    wrapper, raw_connection = await connection_at_start()
    assert wrapper is stale
    assert raw_connection is None


@committed
@pytest.mark.asyncio
async def test_closes_the_connection_even_when_the_function_raises() -> None:
    seen: list[Any] = []

    @database_sync_to_async
    def query_then_fail() -> None:
        seen.append(open_a_connection())
        raise KeyError("after the query")

    with pytest.raises(KeyError, match="after the query"):
        await query_then_fail()
    assert seen[0].connection is None


@committed
@pytest.mark.asyncio
async def test_aclose_old_connections() -> None:
    stale = await sync_to_async(open_a_connection)()
    await aclose_old_connections()
    assert stale.connection is None


@committed
@pytest.mark.asyncio
async def test_decorating_a_method() -> None:
    class Repository:
        prefix = "user-"

        @database_sync_to_async
        def add(self, n: int) -> str:
            return str(User.objects.create_user(username=f"{self.prefix}{n}").username)

    assert await Repository().add(1) == "user-1"
    assert await database_sync_to_async(User.objects.count)() == 1


# -- consumers inside django.test.TestCase -------------------------------------------------
#
# A TestCase runs each test inside a transaction on the test thread's
# connection and rolls it back afterwards. database_sync_to_async (and
# SyncConsumer, which runs handlers through it) runs the ORM in that same
# thread when the test drives the consumer from an async test method, or
# through async_to_sync: it must see the test's rows, and must not close the
# connection the TestCase holds.
#
# Each consumer answers {"add": name or null} with the sorted usernames, after
# creating the user if a name was given.


def add_and_list(add: str | None) -> list[str]:
    if add is not None:
        User.objects.create_user(username=add)
    return sorted(User.objects.values_list("username", flat=True))


class AsyncDirectory(AsyncJsonWebsocketConsumer):
    groups = ["directory"]

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json(await database_sync_to_async(add_and_list)(content["add"]))


class SyncDirectory(JsonWebsocketConsumer):
    groups = ["directory"]  # joined with async_to_sync from the handler's thread

    def receive_json(self, content: Any, **kwargs: Any) -> None:
        self.send_json(add_and_list(content["add"]))


class AsyncHttpDirectory(AsyncHttpConsumer):
    async def handle(self, body: bytes) -> None:
        names = await database_sync_to_async(add_and_list)(json.loads(body)["add"])
        await self.send_response(200, json.dumps(names).encode())


class SyncHttpDirectory(SyncConsumer):
    """A raw synchronous HTTP consumer (Channels has no generic one)."""

    def http_request(self, message: dict[str, Any]) -> None:
        names = add_and_list(json.loads(message["body"])["add"])
        self.send({"type": "http.response.start", "status": 200, "headers": []})
        self.send({"type": "http.response.body", "body": json.dumps(names).encode()})
        raise StopConsumer()


async def ask(kind: str, add: str | None = None) -> list[str]:
    """Drive one consumer of *kind* through one request; return what it answered."""
    if kind.endswith("websocket"):
        consumer = AsyncDirectory if kind.startswith("async") else SyncDirectory
        communicator = WebsocketCommunicator(consumer.as_asgi(), "/directory/")
        connected, _ = await communicator.connect()
        assert connected
        await communicator.send_json_to({"add": add})
        names: list[str] = await communicator.receive_json_from()
        await communicator.disconnect()
        return names
    app = (AsyncHttpDirectory if kind.startswith("async") else SyncHttpDirectory).as_asgi()
    http = HttpCommunicator(app, "POST", "/directory/", json.dumps({"add": add}).encode())
    response = await http.get_response()
    assert response["status"] == 200
    await http.wait()
    return list(json.loads(response["body"]))


KINDS = ["async-websocket", "sync-websocket", "async-http", "sync-http"]


class ConsumersInATestCase(TestCase):
    """Async test methods (Django runs them through async_to_sync)."""

    @classmethod
    def setUpTestData(cls) -> None:
        User.objects.create_user(username="from-setup")

    async def check(self, kind: str) -> None:
        await sync_to_async(User.objects.create_user)(username="from-test")
        raw = await sync_to_async(lambda: connection.connection)()
        # The consumer reads what the test wrote and writes in the same transaction ...
        assert await ask(kind) == ["from-setup", "from-test"], kind
        assert await ask(kind, add="from-consumer") == ["from-consumer", "from-setup", "from-test"]
        # ... and the test goes on using the connection, which is the same one, still
        # inside the TestCase's transaction (rolled back after the test, so the next
        # test starts again from "from-setup" alone).
        assert await User.objects.filter(username="from-consumer").aexists()
        assert await User.objects.acount() == 3
        assert await sync_to_async(lambda: connection.connection)() is raw
        assert await sync_to_async(lambda: connection.in_atomic_block)()

    async def test_async_websocket_consumer(self) -> None:
        await self.check("async-websocket")

    async def test_sync_websocket_consumer(self) -> None:
        await self.check("sync-websocket")

    async def test_async_http_consumer(self) -> None:
        await self.check("async-http")

    async def test_sync_http_consumer(self) -> None:
        await self.check("sync-http")

    async def test_every_kind_in_one_test(self) -> None:
        for number, kind in enumerate(KINDS):
            assert len(await ask(kind, add=f"user-{number}")) == number + 2


class ConsumersInATestCaseFromSyncTests(TestCase):
    """Sync test methods that drive the communicators through async_to_sync."""

    @classmethod
    def setUpTestData(cls) -> None:
        User.objects.create_user(username="from-setup")

    def check(self, kind: str) -> None:
        User.objects.create_user(username="from-test")
        raw = connection.connection
        assert async_to_sync(ask)(kind) == ["from-setup", "from-test"], kind
        names = async_to_sync(ask)(kind, add="from-consumer")
        assert names == ["from-consumer", "from-setup", "from-test"], kind
        assert User.objects.filter(username="from-consumer").exists()
        assert User.objects.count() == 3
        assert connection.connection is raw
        assert connection.in_atomic_block

    def test_async_websocket_consumer(self) -> None:
        self.check("async-websocket")

    def test_sync_websocket_consumer(self) -> None:
        self.check("sync-websocket")

    def test_async_http_consumer(self) -> None:
        self.check("async-http")

    def test_sync_http_consumer(self) -> None:
        self.check("sync-http")

    def test_aclose_old_connections_leaves_the_test_connection_alone(self) -> None:
        User.objects.create_user(username="from-test")
        raw = connection.connection
        async_to_sync(aclose_old_connections)()
        assert connection.connection is raw
        assert User.objects.count() == 2


@committed
@pytest.mark.parametrize("kind", KINDS)
def test_a_consumer_called_inside_an_atomic_block_leaves_its_connection_open(kind: str) -> None:
    with transaction.atomic():
        User.objects.create_user(username="inside")
        raw = connection.connection
        assert async_to_sync(ask)(kind, add="consumer") == ["consumer", "inside"]
        assert connection.connection is raw
        assert User.objects.count() == 2
    # Committed; with CONN_MAX_AGE = 0 the connection is stale now that the
    # block has ended, and the next call closes it as usual.
    assert async_to_sync(database_sync_to_async(User.objects.count))() == 2
    assert connection.connection is None
