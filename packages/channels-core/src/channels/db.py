"""Running Django's synchronous ORM from asynchronous code."""

from __future__ import annotations

from typing import Any

from asgiref.sync import SyncToAsync, sync_to_async
from django.db import close_old_connections

__all__ = ["DatabaseSyncToAsync", "aclose_old_connections", "database_sync_to_async"]


class DatabaseSyncToAsync(SyncToAsync):  # type: ignore[type-arg]
    """``sync_to_async`` that closes stale database connections around the call.

    Django closes connections that are broken or past ``CONN_MAX_AGE`` at the
    start and end of every HTTP request. A long-lived consumer has no such
    request boundary, so every call made through this wrapper gets one: the
    thread's old connections are closed before the function runs and again
    after it returns (or raises).
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
    """Close stale connections of the thread that synchronous ORM code runs in."""
    await sync_to_async(close_old_connections)()
