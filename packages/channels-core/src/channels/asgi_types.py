"""Typed shapes of ASGI scopes, events and callables.

This is the one place where the project spells out the ASGI 3 message
formats: the "HTTP & WebSocket" (``www``) and "Lifespan" specifications at
https://asgi.readthedocs.io/, plus the ``websocket.http.response`` extension.

Two kinds of names live here:

* The loose aliases (:data:`Scope`, :data:`Message`, :data:`Receive`,
  :data:`Send`, :data:`ASGIApplication`, ...) are what public signatures use:
  consumers, routers, middleware, the worker and the server take scopes and
  events as plain mappings, because middleware adds keys no specification
  names and channel layer events carry any keys at all.
* The TypedDicts give the exact shape of each scope and event. Code that
  builds one annotates it with its TypedDict, so that mypy checks the keys
  and their types where the message is made: the generic consumers'
  ``websocket.*`` and ``http.response.*`` events, the origin validator's
  denial response, the worker's ``channel`` scope and the test
  communicators' input events. ``_as_message()`` then hands the checked
  event on as a :data:`Message`.

Every TypedDict uses ``total=False`` for the keys the specification marks as
optional and inherits the required keys from a ``total=True`` base.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Literal, TypedDict, cast

__all__ = [
    "ASGIApplication",
    "ASGIReceiveCallable",
    "ASGIReceiveEvent",
    "ASGISendCallable",
    "ASGISendEvent",
    "ASGIVersions",
    "AnyASGIApplication",
    "ChannelScope",
    "HTTPDisconnectEvent",
    "HTTPRequestEvent",
    "HTTPResponseBodyEvent",
    "HTTPResponseStartEvent",
    "HTTPResponseTrailersEvent",
    "HTTPScope",
    "Headers",
    "LifespanScope",
    "LifespanShutdownCompleteEvent",
    "LifespanShutdownEvent",
    "LifespanShutdownFailedEvent",
    "LifespanStartupCompleteEvent",
    "LifespanStartupEvent",
    "LifespanStartupFailedEvent",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "WebSocketAcceptEvent",
    "WebSocketCloseEvent",
    "WebSocketConnectEvent",
    "WebSocketDisconnectEvent",
    "WebSocketHTTPResponseBodyEvent",
    "WebSocketHTTPResponseStartEvent",
    "WebSocketReceiveEvent",
    "WebSocketScope",
    "WebSocketSendEvent",
]

#: Header names and values as the specification gives them: lower-cased
#: byte strings for names (in scopes), byte strings for values.
Headers = Iterable[tuple[bytes, bytes]]


class ASGIVersions(TypedDict, total=False):
    version: str
    spec_version: str


class _HTTPScopeRequired(TypedDict):
    type: Literal["http"]
    asgi: ASGIVersions
    http_version: str
    method: str
    scheme: str
    path: str
    query_string: bytes
    headers: Iterable[tuple[bytes, bytes]]


class HTTPScope(_HTTPScopeRequired, total=False):
    """The connection scope of one HTTP request (www spec, "HTTP")."""

    raw_path: bytes | None
    root_path: str
    client: tuple[str, int] | None
    server: tuple[str, int | None] | None
    state: dict[str, Any]
    extensions: dict[str, dict[object, object]] | None


class _WebSocketScopeRequired(TypedDict):
    type: Literal["websocket"]
    asgi: ASGIVersions
    path: str
    query_string: bytes
    headers: Iterable[tuple[bytes, bytes]]


class WebSocketScope(_WebSocketScopeRequired, total=False):
    """The connection scope of one WebSocket (www spec, "WebSocket")."""

    http_version: str
    scheme: str
    raw_path: bytes | None
    root_path: str
    client: tuple[str, int] | None
    server: tuple[str, int | None] | None
    subprotocols: Iterable[str]
    state: dict[str, Any]
    extensions: dict[str, dict[object, object]] | None


class LifespanScope(TypedDict, total=False):
    """The scope of the lifespan protocol (lifespan spec)."""

    type: Literal["lifespan"]
    asgi: ASGIVersions
    state: dict[str, Any]


class ChannelScope(TypedDict, total=False):
    """The scope a worker gives to an application for one channel name."""

    type: Literal["channel"]
    channel: str


# -- HTTP events ---------------------------------------------------------------


class HTTPRequestEvent(TypedDict, total=False):
    type: Literal["http.request"]
    body: bytes
    more_body: bool


class HTTPResponseStartEvent(TypedDict, total=False):
    type: Literal["http.response.start"]
    status: int
    headers: Iterable[tuple[bytes, bytes]]
    trailers: bool


class HTTPResponseBodyEvent(TypedDict, total=False):
    type: Literal["http.response.body"]
    body: bytes
    more_body: bool


class HTTPResponseTrailersEvent(TypedDict, total=False):
    type: Literal["http.response.trailers"]
    headers: Iterable[tuple[bytes, bytes]]
    more_trailers: bool


class HTTPDisconnectEvent(TypedDict):
    type: Literal["http.disconnect"]


# -- WebSocket events ----------------------------------------------------------


class WebSocketConnectEvent(TypedDict):
    type: Literal["websocket.connect"]


class WebSocketAcceptEvent(TypedDict, total=False):
    type: Literal["websocket.accept"]
    subprotocol: str | None
    headers: Iterable[tuple[bytes, bytes]]


class WebSocketReceiveEvent(TypedDict, total=False):
    type: Literal["websocket.receive"]
    bytes: bytes | None
    text: str | None


class WebSocketSendEvent(TypedDict, total=False):
    type: Literal["websocket.send"]
    bytes: bytes | None
    text: str | None


class WebSocketCloseEvent(TypedDict, total=False):
    type: Literal["websocket.close"]
    code: int
    reason: str | None


class WebSocketDisconnectEvent(TypedDict, total=False):
    type: Literal["websocket.disconnect"]
    code: int
    reason: str | None


class WebSocketHTTPResponseStartEvent(TypedDict, total=False):
    """``websocket.http.response.start`` (the WebSocket denial response extension)."""

    type: Literal["websocket.http.response.start"]
    status: int
    headers: Iterable[tuple[bytes, bytes]]


class WebSocketHTTPResponseBodyEvent(TypedDict, total=False):
    type: Literal["websocket.http.response.body"]
    body: bytes
    more_body: bool


# -- Lifespan events -----------------------------------------------------------


class LifespanStartupEvent(TypedDict):
    type: Literal["lifespan.startup"]


class LifespanShutdownEvent(TypedDict):
    type: Literal["lifespan.shutdown"]


class LifespanStartupCompleteEvent(TypedDict):
    type: Literal["lifespan.startup.complete"]


class LifespanStartupFailedEvent(TypedDict, total=False):
    type: Literal["lifespan.startup.failed"]
    message: str


class LifespanShutdownCompleteEvent(TypedDict):
    type: Literal["lifespan.shutdown.complete"]


class LifespanShutdownFailedEvent(TypedDict, total=False):
    type: Literal["lifespan.shutdown.failed"]
    message: str


ASGIReceiveEvent = (
    HTTPRequestEvent
    | HTTPDisconnectEvent
    | WebSocketConnectEvent
    | WebSocketReceiveEvent
    | WebSocketDisconnectEvent
    | LifespanStartupEvent
    | LifespanShutdownEvent
)

ASGISendEvent = (
    HTTPResponseStartEvent
    | HTTPResponseBodyEvent
    | HTTPResponseTrailersEvent
    | WebSocketAcceptEvent
    | WebSocketSendEvent
    | WebSocketCloseEvent
    | WebSocketHTTPResponseStartEvent
    | WebSocketHTTPResponseBodyEvent
    | LifespanStartupCompleteEvent
    | LifespanStartupFailedEvent
    | LifespanShutdownCompleteEvent
    | LifespanShutdownFailedEvent
)

# Applications, middleware and routers pass scopes and messages around as
# plain mappings: middleware adds keys ("user", "session", "url_route") that
# no specification names, and channel-layer events carry any keys at all.
# These loose aliases are what the public signatures use; the TypedDicts
# above document (and type-check) the exact shapes where code builds them.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIReceiveCallable = Receive
ASGISendCallable = Send
ASGIApplication = Callable[[Scope, Receive, Send], Awaitable[None]]
#: What routers and middleware accept as the application they wrap: any ASGI 3
#: callable, however its author annotated the scope (Django's own handler
#: takes a ``dict``, which a ``MutableMapping`` parameter would reject).
AnyASGIApplication = Callable[..., Awaitable[None]]


def _as_message(event: ASGISendEvent) -> Message:
    """*event*, built and checked as its TypedDict, typed as the :data:`Message` ``send`` takes.

    mypy does not let a TypedDict through a ``MutableMapping`` parameter (a
    mutable mapping could be given keys the TypedDict forbids); at run time the
    event is the same plain ``dict`` either way, so this only changes its type.
    """
    return cast("Message", event)
