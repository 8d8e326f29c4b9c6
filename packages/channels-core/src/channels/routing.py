"""Routers: pick the application that serves a connection from its scope.

* :class:`ProtocolTypeRouter` by ``scope["type"]`` (``http``, ``websocket``,
  ``channel``, ...);
* :class:`URLRouter` by the path, with Django's ``path()`` and ``re_path()``;
* :class:`ChannelNameRouter` by ``scope["channel"]`` (workers).

Routers are ASGI applications and nest. They never change the scope they are
given: an application further in gets a copy with the routing keys added.
They return what the application they pick returns.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern, URLResolver
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RegexPattern, RoutePattern

from .asgi_types import AnyASGIApplication, ASGIApplication, Receive, Scope, Send

__all__ = [
    "ChannelNameRouter",
    "ProtocolTypeRouter",
    "URLRouter",
    "get_default_application",
]

# How deep to look through middleware for a nested router (see _routes_further).
_MAX_WRAPPER_DEPTH = 32
# The attributes under which middleware commonly keeps the application it wraps.
_WRAPPED_APP_ATTRIBUTES = ("inner", "app", "application", "__wrapped__")


def get_default_application() -> ASGIApplication:
    """The application named by the ``ASGI_APPLICATION`` setting."""
    dotted = getattr(settings, "ASGI_APPLICATION", None)
    if not isinstance(dotted, str) or "." not in dotted:
        raise ImproperlyConfigured(
            "The ASGI_APPLICATION setting must name the application as "
            f"'module.attribute' (for example 'mysite.asgi.application'), not {dotted!r}"
        )
    module_path, name = dotted.rsplit(".", 1)
    try:
        module = importlib.import_module(module_path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"Cannot import the ASGI_APPLICATION module {module_path!r}: {exc}"
        ) from exc
    try:
        application: ASGIApplication = getattr(module, name)
    except AttributeError:
        raise ImproperlyConfigured(
            f"The ASGI_APPLICATION module {module_path!r} has no attribute {name!r}"
        ) from None
    return application


class ProtocolTypeRouter:
    """Route by ``scope["type"]`` to the application in *application_mapping*."""

    def __init__(self, application_mapping: Mapping[str, AnyASGIApplication]) -> None:
        self.application_mapping = application_mapping

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        try:
            application = self.application_mapping[scope["type"]]
        except KeyError:
            raise ValueError(
                f"No application configured for scope type {scope.get('type')!r} "
                f"(configured: {sorted(self.application_mapping)!r})"
            ) from None
        return await application(scope, receive, send)


def _routes_further(application: object) -> bool:
    """Whether *application* is, or wraps, a router that routes on the path.

    Such a route matches a prefix of the path (like ``include()``), not the
    whole path. Middleware is looked through by the attributes it usually
    keeps the inner application under, so ``AuthMiddlewareStack(URLRouter(...))``
    nested in another ``URLRouter`` with ``path()`` routes works.
    """
    seen = 0
    current: object = application
    while current is not None and seen < _MAX_WRAPPER_DEPTH:
        if getattr(current, "_path_routing", False) is True:
            return True
        current = next(
            (
                inner
                for inner in (getattr(current, attr, None) for attr in _WRAPPED_APP_ATTRIBUTES)
                if inner is not None and inner is not current
            ),
            None,
        )
        seen += 1
    return False


def _prefix_pattern(route: URLPattern) -> Any:
    """A copy of *route*'s pattern that matches a prefix instead of the whole path."""
    pattern = route.pattern
    # str() of these two pattern classes is the route or regex they were built from.
    if isinstance(pattern, RoutePattern):
        return RoutePattern(str(pattern), pattern.name, is_endpoint=False)
    if isinstance(pattern, RegexPattern):
        return RegexPattern(str(pattern), pattern.name, is_endpoint=False)
    raise ImproperlyConfigured(
        f"URLRouter cannot route with a pattern of type {type(pattern).__name__}: {route!r}"
    )


class URLRouter:
    """Route ``http`` and ``websocket`` connections by path.

    Takes a list of ``django.urls.path()`` / ``re_path()`` entries. The match
    is put in the scope as ``url_route = {"args": (...), "kwargs": {...}}``,
    with path converters applied and the route's extra kwargs merged in; a
    nested router adds to what outer routers captured. The scope's
    ``root_path`` is stripped before matching.
    """

    #: Marks this application as one that routes on the remaining path.
    _path_routing = True

    def __init__(self, routes: Sequence[URLPattern | URLResolver]) -> None:
        self.routes = list(routes)
        self._matchers: list[tuple[Any, URLPattern]] = []
        for route in self.routes:
            if isinstance(route, URLResolver):
                raise ImproperlyConfigured(
                    f"URLRouter does not support include() ({route!r}): nest another "
                    "URLRouter instead"
                )
            if not isinstance(route, URLPattern):
                raise ImproperlyConfigured(
                    f"URLRouter routes must be path() or re_path() entries, not {route!r}"
                )
            pattern = _prefix_pattern(route) if _routes_further(route.callback) else route.pattern
            self._matchers.append((pattern, route))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        nested = "path_remaining" in scope
        path = scope["path_remaining"] if nested else scope.get("path")
        if not isinstance(path, str):
            raise ValueError("URLRouter needs a 'path' in the scope to route on")
        if not nested:
            root_path = scope.get("root_path", "")
            if root_path:
                if not path.startswith(root_path):
                    raise ValueError(
                        f"No route found for path {path!r}: it is outside the root path "
                        f"{root_path!r}"
                    )
                path = path[len(root_path) :]
        # Django's own resolver matches paths without their leading slash.
        path = path.lstrip("/")
        for pattern, route in self._matchers:
            match = pattern.match(path)
            if not match:
                continue
            remaining, args, kwargs = match
            outer = scope.get("url_route", {})
            inner_scope = dict(
                scope,
                path_remaining=remaining,
                url_route={
                    "args": tuple(outer.get("args", ())) + tuple(args),
                    "kwargs": {**outer.get("kwargs", {}), **kwargs, **(route.default_args or {})},
                },
            )
            try:
                return await route.callback(inner_scope, receive, send)
            except Resolver404:
                # A nested router found nothing under this prefix: keep looking.
                if not _routes_further(route.callback):
                    raise
                continue
        if nested:
            raise Resolver404(f"No route found for path {path!r}")
        raise ValueError(f"No route found for path {scope.get('path')!r}")


class ChannelNameRouter:
    """Route ``channel`` scopes (from a worker) by ``scope["channel"]``."""

    def __init__(self, application_mapping: Mapping[str, AnyASGIApplication]) -> None:
        self.application_mapping = application_mapping

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if "channel" not in scope:
            raise ValueError(
                "ChannelNameRouter got a scope without a 'channel' key: use it only for "
                "'channel' scopes (under ProtocolTypeRouter's 'channel' entry)"
            )
        try:
            application = self.application_mapping[scope["channel"]]
        except KeyError:
            raise ValueError(
                f"No application configured for channel name {scope['channel']!r}"
            ) from None
        return await application(scope, receive, send)
