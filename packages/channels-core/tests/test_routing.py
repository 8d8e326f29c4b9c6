"""channels.routing: ProtocolTypeRouter, URLRouter, ChannelNameRouter, get_default_application."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import include, path, re_path

from channels.consumer import AsyncConsumer
from channels.middleware import BaseMiddleware
from channels.routing import (
    ChannelNameRouter,
    ProtocolTypeRouter,
    URLRouter,
    get_default_application,
)
from channels.testing import WebsocketCommunicator


def endpoint(name: str) -> Any:
    """An ASGI app that sends back its name and the scope it was given."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"name": name, "scope": scope})

    return app


async def route(router: Any, scope: dict[str, Any]) -> dict[str, Any]:
    """Run *router* on *scope*; return what the endpoint it picked sent."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("endpoints in these tests never receive")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await router(scope, receive, send)
    (message,) = sent
    return message


def ws(path_: str, **extra: Any) -> dict[str, Any]:
    return {"type": "websocket", "path": path_, **extra}


# -- ProtocolTypeRouter ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_protocol_type_router_routes_by_scope_type() -> None:
    router = ProtocolTypeRouter({"http": endpoint("h"), "websocket": endpoint("w")})
    assert (await route(router, {"type": "http"}))["name"] == "h"
    assert (await route(router, {"type": "websocket"}))["name"] == "w"


@pytest.mark.asyncio
async def test_protocol_type_router_unknown_type_is_named() -> None:
    router = ProtocolTypeRouter({"http": endpoint("h")})
    with pytest.raises(ValueError, match=r"'lifespan'.*\['http'\]"):
        await route(router, {"type": "lifespan"})


# -- URLRouter: matching and url_route ----------------------------------------------------


@pytest.mark.asyncio
async def test_path_and_re_path_match_the_whole_path() -> None:
    router = URLRouter(
        [
            path("chat/", endpoint("chat")),
            re_path(r"^news/(\d+)/$", endpoint("news")),
            path("", endpoint("root")),
        ]
    )
    chat = await route(router, ws("/chat/"))
    assert chat["name"] == "chat"
    assert chat["scope"]["url_route"] == {"args": (), "kwargs": {}}
    news = await route(router, ws("/news/42/"))
    assert news["name"] == "news"
    assert news["scope"]["url_route"] == {"args": ("42",), "kwargs": {}}
    assert (await route(router, ws("/")))["name"] == "root"
    with pytest.raises(ValueError, match="No route found for path '/chat/more/'"):
        await route(router, ws("/chat/more/"))


@pytest.mark.asyncio
async def test_no_match_names_the_path() -> None:
    router = URLRouter([path("chat/", endpoint("chat"))])
    with pytest.raises(ValueError, match="No route found for path '/nowhere/'"):
        await route(router, ws("/nowhere/"))


@pytest.mark.asyncio
async def test_converters_are_applied() -> None:
    ident = uuid.uuid4()
    router = URLRouter(
        [
            path(
                "room/<int:number>/<slug:name>/<uuid:ident>/<path:rest>",
                endpoint("room"),
            ),
            path("str/<name>/", endpoint("str")),
        ]
    )
    message = await route(router, ws(f"/room/7/the-lobby/{ident}/a/b/c.txt"))
    assert message["scope"]["url_route"] == {
        "args": (),
        "kwargs": {"number": 7, "name": "the-lobby", "ident": ident, "rest": "a/b/c.txt"},
    }
    assert isinstance(message["scope"]["url_route"]["kwargs"]["number"], int)
    assert isinstance(message["scope"]["url_route"]["kwargs"]["ident"], uuid.UUID)
    # A value the converter refuses is no match.
    with pytest.raises(ValueError, match="No route found"):
        await route(router, ws("/room/seven/the-lobby/x/y"))
    message = await route(router, ws("/str/abc/"))
    assert message["scope"]["url_route"]["kwargs"] == {"name": "abc"}


@pytest.mark.asyncio
async def test_route_default_kwargs_are_in_url_route() -> None:
    router = URLRouter(
        [
            path("a/<int:page>/", endpoint("a"), {"mode": "fast"}),
            re_path(r"^b/(?P<page>\d+)/$", endpoint("b"), {"mode": "slow"}),
        ]
    )
    assert (await route(router, ws("/a/3/")))["scope"]["url_route"]["kwargs"] == {
        "page": 3,
        "mode": "fast",
    }
    assert (await route(router, ws("/b/4/")))["scope"]["url_route"]["kwargs"] == {
        "page": "4",
        "mode": "slow",
    }


@pytest.mark.asyncio
async def test_first_matching_route_wins() -> None:
    router = URLRouter([path("x/<int:n>/", endpoint("int")), path("x/<str:s>/", endpoint("str"))])
    assert (await route(router, ws("/x/1/")))["name"] == "int"
    assert (await route(router, ws("/x/one/")))["name"] == "str"


# -- nesting --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_nested_routers_strip_the_matched_prefix() -> None:
    inner = URLRouter(
        [
            path("room/<int:number>/", endpoint("room")),
            re_path(r"^log/(\d+)/$", endpoint("log")),
        ]
    )
    router = URLRouter(
        [
            path("chat/<slug:site>/", inner, {"outer": True}),
            re_path(r"^legacy/(\d+)/", inner),
        ]
    )
    room = await route(router, ws("/chat/main/room/5/"))
    assert room["name"] == "room"
    # The endpoint still sees the full path; the captures of both levels add up.
    assert room["scope"]["path"] == "/chat/main/room/5/"
    assert room["scope"]["url_route"] == {
        "args": (),
        "kwargs": {"site": "main", "outer": True, "number": 5},
    }
    log = await route(router, ws("/legacy/1/log/2/"))
    assert log["scope"]["url_route"] == {"args": ("1", "2"), "kwargs": {}}
    with pytest.raises(ValueError, match="No route found for path '/chat/main/room/x/'"):
        await route(router, ws("/chat/main/room/x/"))


@pytest.mark.asyncio
async def test_a_nested_router_without_a_match_lets_later_routes_try() -> None:
    router = URLRouter(
        [
            path("api/", URLRouter([path("v1/", endpoint("v1"))])),
            path("api/v2/", endpoint("v2")),
        ]
    )
    assert (await route(router, ws("/api/v1/")))["name"] == "v1"
    assert (await route(router, ws("/api/v2/")))["name"] == "v2"
    with pytest.raises(ValueError, match="No route found for path '/api/v3/'"):
        await route(router, ws("/api/v3/"))


class TagMiddleware(BaseMiddleware):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope = dict(scope, tag="base")
        await super().__call__(scope, receive, send)


class PlainMiddleware:
    """Plain ASGI middleware that keeps the application as ``self.app``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(dict(scope, plain=True), receive, send)


@pytest.mark.parametrize(
    ("wrap", "added"),
    [
        (TagMiddleware, {"tag": "base"}),
        (PlainMiddleware, {"plain": True}),
        (lambda app: PlainMiddleware(TagMiddleware(app)), {"tag": "base", "plain": True}),
    ],
    ids=["BaseMiddleware", "plain-asgi", "stacked"],
)
@pytest.mark.asyncio
async def test_nested_router_wrapped_in_middleware(wrap: Any, added: dict[str, Any]) -> None:
    inner = wrap(URLRouter([path("room/<int:number>/", endpoint("room"))]))
    router = URLRouter([path("chat/", inner)])
    message = await route(router, ws("/chat/room/9/"))
    assert message["name"] == "room"
    assert message["scope"]["url_route"]["kwargs"] == {"number": 9}
    for key, value in added.items():
        assert message["scope"][key] == value


def test_include_is_rejected_clearly() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"does not support include\(\).*URLRouter"):
        URLRouter([path("chat/", include([path("x/", endpoint("x"))]))])


def test_routes_must_be_path_entries() -> None:
    with pytest.raises(ImproperlyConfigured, match="path\\(\\) or re_path\\(\\)"):
        URLRouter([endpoint("x")])  # type: ignore[list-item]


@pytest.mark.asyncio
async def test_root_path_is_stripped_before_matching() -> None:
    router = URLRouter([path("chat/<int:n>/", endpoint("chat"))])
    message = await route(router, ws("/prefix/chat/1/", root_path="/prefix"))
    assert message["scope"]["url_route"]["kwargs"] == {"n": 1}
    assert message["scope"]["path"] == "/prefix/chat/1/"
    with pytest.raises(ValueError, match=r"'/chat/1/'.*outside the root path '/prefix'"):
        await route(router, ws("/chat/1/", root_path="/prefix"))


@pytest.mark.asyncio
async def test_a_scope_without_a_path_is_an_error() -> None:
    router = URLRouter([path("chat/", endpoint("chat"))])
    with pytest.raises(ValueError, match="needs a 'path'"):
        await route(router, {"type": "websocket"})


@pytest.mark.asyncio
async def test_the_scope_passed_in_is_never_mutated() -> None:
    inner = TagMiddleware(URLRouter([path("room/<int:n>/", endpoint("room"))]))
    router = ProtocolTypeRouter({"websocket": URLRouter([path("chat/<slug:s>/", inner)])})
    scope = ws("/chat/a/room/1/", headers=[(b"host", b"example.com")], root_path="")
    original = copy.deepcopy(scope)
    message = await route(router, scope)
    assert scope == original
    assert message["scope"] is not scope


@pytest.mark.asyncio
async def test_url_router_serves_a_consumer_through_a_communicator(stop: Any) -> None:
    class Room(AsyncConsumer):
        async def websocket_connect(self, message: dict[str, Any]) -> None:
            await self.send({"type": "websocket.accept"})
            kwargs = self.scope["url_route"]["kwargs"]
            await self.send({"type": "websocket.send", "text": f"room {kwargs['number']}"})

    application = ProtocolTypeRouter(
        {"websocket": URLRouter([path("chat/<int:number>/", Room.as_asgi())])}
    )
    communicator = WebsocketCommunicator(application, "/chat/12/")
    assert await communicator.connect() == (True, None)
    assert await communicator.receive_from() == "room 12"
    await stop(communicator)


# -- ChannelNameRouter ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_channel_name_router() -> None:
    router = ChannelNameRouter({"thumbnails": endpoint("thumbs"), "email": endpoint("mail")})
    assert (await route(router, {"type": "channel", "channel": "email"}))["name"] == "mail"
    with pytest.raises(ValueError, match="'unknown'"):
        await route(router, {"type": "channel", "channel": "unknown"})
    with pytest.raises(ValueError, match="without a 'channel' key"):
        await route(router, {"type": "websocket", "path": "/"})


# -- get_default_application() -----------------------------------------------------------


def test_get_default_application(settings: Any, tmp_path: Path, monkeypatch: Any) -> None:
    module = f"asgi_for_test_{uuid.uuid4().hex}"
    (tmp_path / f"{module}.py").write_text("async def application(scope, receive, send): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.ASGI_APPLICATION = f"{module}.application"
    application = get_default_application()
    assert application.__name__ == "application"
    assert application.__module__ == module

    settings.ASGI_APPLICATION = f"{module}.missing"
    with pytest.raises(ImproperlyConfigured, match=f"'{module}' has no attribute 'missing'"):
        get_default_application()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "must name the application"),
        ("application", "must name the application"),
        (42, "must name the application"),
        ("no_such_module_here.application", "Cannot import .*'no_such_module_here'"),
    ],
)
def test_get_default_application_errors(settings: Any, value: Any, message: str) -> None:
    settings.ASGI_APPLICATION = value
    with pytest.raises(ImproperlyConfigured, match=message):
        get_default_application()


def test_get_default_application_without_the_setting(settings: Any) -> None:
    del settings.ASGI_APPLICATION
    with pytest.raises(ImproperlyConfigured, match="ASGI_APPLICATION"):
        get_default_application()


@pytest.mark.asyncio
async def test_routers_return_what_the_application_returns() -> None:
    async def answering(scope: dict[str, Any], receive: Any, send: Any) -> tuple[str, Any]:
        return "answered", scope.get("url_route")

    nested = URLRouter([path("inner/<int:number>/", answering)])
    router = ProtocolTypeRouter(
        {
            "websocket": URLRouter([path("outer/", nested), path("flat/", answering)]),
            "channel": ChannelNameRouter({"jobs": answering}),
        }
    )
    flat = await router({"type": "websocket", "path": "/flat/"}, None, None)  # type: ignore[arg-type]
    assert flat == ("answered", {"args": (), "kwargs": {}})
    deep = await router({"type": "websocket", "path": "/outer/inner/7/"}, None, None)  # type: ignore[arg-type]
    assert deep == ("answered", {"args": (), "kwargs": {"number": 7}})
    job = await router({"type": "channel", "channel": "jobs"}, None, None)  # type: ignore[arg-type]
    assert job == ("answered", None)
