"""The base class for ASGI middleware that adds to the scope."""

from __future__ import annotations

from typing import Any

from .asgi_types import AnyASGIApplication, Receive, Scope, Send

__all__ = ["BaseMiddleware"]


class BaseMiddleware:
    """Middleware that wraps an application and may add keys to its scope.

    Subclasses override :meth:`__call__`, add what they need to a *copy* of
    the scope (``scope = dict(scope, user=...)``), and then call
    ``await super().__call__(scope, receive, send)``. The scope a server
    passes in is never changed, so middleware instances can be shared between
    connections safely.
    """

    def __init__(self, inner: AnyASGIApplication) -> None:
        #: The application this middleware wraps.
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        """Call the inner application with a copy of *scope*; return what it returns."""
        # Copy the scope so that what this middleware adds stays on this connection.
        scope = dict(scope)
        return await self.inner(scope, receive, send)
