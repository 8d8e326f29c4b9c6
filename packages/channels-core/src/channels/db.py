"""Running Django's synchronous ORM from asynchronous code.

Django closes a thread's stale database connections at the start and end of
each request (``close_old_connections`` on ``request_started`` and
``request_finished``). A consumer has no such boundaries, so the helpers here
draw them around each call into the ORM instead, with the same rule Django
follows: a connection is only closed between units of work, never in the
middle of one. See :func:`close_old_connections`.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import SyncToAsync, sync_to_async
from django.db import connections

__all__ = [
    "DatabaseSyncToAsync",
    "aclose_old_connections",
    "close_old_connections",
    "database_sync_to_async",
]


def close_old_connections(**kwargs: Any) -> None:
    """Close this thread's database connections that are broken or too old.

    Django's own ``django.db.close_old_connections``, except that a
    connection inside an atomic block is left alone. Django never reaches
    that case: it closes connections between requests, outside any
    transaction, and its test client does not close them at all. Here the
    caller may well be inside one:

    * a ``django.test.TestCase`` holds a transaction open on the test
      thread's connection for the whole test, and ``database_sync_to_async``
      runs in that very thread when the test drives a consumer (from an async
      test method, or through ``async_to_sync``). Closing the connection
      there would end the test's transaction, and every later query of the
      test would fail ("Cannot operate on a closed database", "the connection
      is closed");
    * code that calls into a consumer from inside ``transaction.atomic()``.

    Such a connection is checked again at the first call made after its
    atomic block has ended. Accepts and ignores keyword arguments, so that
    it can be connected to a signal as Django's is.
    """
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            continue
        connection.close_if_unusable_or_obsolete()


class DatabaseSyncToAsync(SyncToAsync):  # type: ignore[type-arg]
    """``sync_to_async`` that closes stale database connections around the call.

    Django closes connections that are broken or past ``CONN_MAX_AGE`` at the
    start and end of every HTTP request. A long-lived consumer has no such
    request boundary, so every call made through this wrapper gets one: the
    thread's old connections are closed before the function runs and again
    after it returns (or raises), by :func:`close_old_connections`, which
    leaves alone a connection that is inside a transaction (a
    ``django.test.TestCase``'s, for one).
    """

    def thread_handler(self, loop: Any, *args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return super().thread_handler(loop, *args, **kwargs)
        finally:
            close_old_connections()


#: Use as a decorator or a wrapper: ``await database_sync_to_async(fn)(...)``.
database_sync_to_async = DatabaseSyncToAsync


async def aclose_old_connections() -> None:
    """Run :func:`close_old_connections` in the thread that synchronous ORM code runs in.

    Call it before Django's asynchronous ORM methods (``aget()``,
    ``acreate()``, ...) in a long-lived consumer: they go through plain
    ``sync_to_async`` and never close a stale connection themselves.
    """
    await sync_to_async(close_old_connections)()
