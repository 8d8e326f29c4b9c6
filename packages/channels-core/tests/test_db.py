"""channels.db: database_sync_to_async and aclose_old_connections, against a real database."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import connections

from channels.db import aclose_old_connections, database_sync_to_async

pytestmark = pytest.mark.django_db(transaction=True)


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


@pytest.mark.asyncio
async def test_as_a_decorator_runs_in_a_thread_and_closes_the_connection_after() -> None:
    pk, wrapper, thread = await create_user("ada")
    assert thread != threading.get_ident()
    assert await database_sync_to_async(User.objects.filter(pk=pk).exists)()
    # CONN_MAX_AGE is 0, so the connection the call opened is obsolete at its end.
    assert wrapper.connection is None


@pytest.mark.asyncio
async def test_as_a_wrapper_with_arguments() -> None:
    await create_user("grace")
    names = await database_sync_to_async(
        lambda prefix: list(
            User.objects.filter(username__startswith=prefix).values_list("username", flat=True)
        )
    )("gr")
    assert names == ["grace"]


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


@pytest.mark.asyncio
async def test_aclose_old_connections() -> None:
    stale = await sync_to_async(open_a_connection)()
    await aclose_old_connections()
    assert stale.connection is None


@pytest.mark.asyncio
async def test_decorating_a_method() -> None:
    class Repository:
        prefix = "user-"

        @database_sync_to_async
        def add(self, n: int) -> str:
            return str(User.objects.create_user(username=f"{self.prefix}{n}").username)

    assert await Repository().add(1) == "user-1"
    assert await database_sync_to_async(User.objects.count)() == 1
