"""channels.sessions: cookies in, Django sessions loaded and saved, cookies out.

Sessions live in a real store: every session test runs against each of
Django's session engines (db, cached_db, cache, file, signed_cookies), with
the database being the suite's SQLite file or PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime
import random
import sys
import threading
import types
from collections.abc import Callable, Iterator
from http.cookies import Morsel, SimpleCookie
from importlib import import_module
from typing import Any, ClassVar
from urllib.parse import parse_qs

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.exceptions import SessionInterrupted
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.utils.functional import LazyObject
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer
from channels.sessions import (
    MAX_SESSION_KEY_LENGTH,
    CookieMiddleware,
    InstanceSessionWrapper,
    SessionLazyObject,
    SessionMiddleware,
    SessionMiddlewareStack,
)
from channels.testing import ApplicationCommunicator, HttpCommunicator, WebsocketCommunicator

TIMEOUT = 10
ENGINES = ["db", "cached_db", "cache", "file", "signed_cookies"]


# -- helpers -------------------------------------------------------------------------


@pytest.fixture(params=ENGINES)
def engine(request: Any, settings: Any, tmp_path: Any, transactional_db: None) -> Iterator[type]:
    """The SessionStore class of each session engine in turn, set as SESSION_ENGINE."""
    settings.SESSION_ENGINE = f"django.contrib.sessions.backends.{request.param}"
    settings.SESSION_FILE_PATH = str(tmp_path)
    cache.clear()
    yield import_module(settings.SESSION_ENGINE).SessionStore
    cache.clear()


@pytest.fixture
def db_store(settings: Any) -> type[SessionBase]:
    """The database engine's SessionStore, set as SESSION_ENGINE."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    return import_module(settings.SESSION_ENGINE).SessionStore


def is_signed_cookies(store: type[SessionBase]) -> bool:
    return store.__module__.endswith("signed_cookies")


def make_session(store: type[SessionBase], **data: Any) -> str:
    """Save a new session holding *data* in the store; return its key."""
    session = store()
    session.update(data)
    session.save()
    key = session.session_key
    assert key
    return key


def read_session(store: type[SessionBase], key: str) -> dict[str, Any]:
    return dict(store(key).load())


def set_cookies(response: dict[str, Any]) -> dict[str, Morsel[str]]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in response["headers"]:
        if name == b"set-cookie":
            jar.load(value.decode("latin-1"))
    return dict(jar)


def header_values(headers: list[tuple[bytes, bytes]], wanted: bytes) -> list[bytes]:
    return [value for name, value in headers if name == wanted]


def http_app(action: Callable[[SessionBase], Any], status: int = 200) -> Callable[..., Any]:
    """An HTTP application that runs *action(session)* in a worker thread and
    answers with its result (as text) and *status*."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        result = await database_sync_to_async(action)(scope["session"])
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": repr(result).encode()})

    return app


async def get(app: Any, cookie: bytes | str | None = None) -> dict[str, Any]:
    headers = []
    if cookie is not None:
        headers.append((b"cookie", cookie if isinstance(cookie, bytes) else cookie.encode()))
    communicator = HttpCommunicator(app, "GET", "/", headers=headers)
    response = await communicator.get_response(timeout=TIMEOUT)
    await communicator.wait(TIMEOUT)
    return response


def cookie_header(client: Client) -> bytes:
    return "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items()).encode()


class ScopeRecorder:
    """An application that keeps the scope it was called with, then answers."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if scope["type"] == "http":
            await receive()
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})


def http_scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "query_string": b"",
        "headers": headers,
    }


async def call(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """Run *app* for one HTTP request directly, so that its exceptions surface at once."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def run_http(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": b""})
    messages = [await communicator.receive_output(TIMEOUT)]
    while messages[-1]["type"] != "http.response.body" or messages[-1].get("more_body"):
        messages.append(await communicator.receive_output(TIMEOUT))
    await communicator.wait(TIMEOUT)
    return messages


# -- CookieMiddleware: reading -------------------------------------------------------


@pytest.mark.asyncio
async def test_cookie_header_is_parsed_into_scope_without_touching_server_scope() -> None:
    recorder = ScopeRecorder()
    scope = http_scope([(b"cookie", b"sessionid=abc123; theme=dark; empty=")])
    await run_http(CookieMiddleware(recorder), scope)
    assert recorder.scopes[0]["cookies"] == {"sessionid": "abc123", "theme": "dark", "empty": ""}
    assert "cookies" not in scope


@pytest.mark.asyncio
async def test_cookie_header_lines_split_by_http2_are_joined() -> None:
    recorder = ScopeRecorder()
    scope = http_scope([(b"cookie", b"a=1"), (b"accept", b"*/*"), (b"cookie", b"b=2; c=3")])
    await run_http(CookieMiddleware(recorder), scope)
    assert recorder.scopes[0]["cookies"] == {"a": "1", "b": "2", "c": "3"}


@pytest.mark.asyncio
async def test_no_cookie_header_gives_empty_cookies() -> None:
    recorder = ScopeRecorder()
    await run_http(CookieMiddleware(recorder), http_scope([]))
    assert recorder.scopes[0]["cookies"] == {}


@pytest.mark.asyncio
async def test_quoted_cookie_values_are_unquoted() -> None:
    recorder = ScopeRecorder()
    await run_http(CookieMiddleware(recorder), http_scope([(b"cookie", b'q="a\\"b"')]))
    assert recorder.scopes[0]["cookies"] == {"q": 'a"b'}


@pytest.mark.asyncio
async def test_cookies_already_parsed_by_outer_middleware_are_kept() -> None:
    recorder = ScopeRecorder()
    scope = http_scope([(b"cookie", b"a=1")])
    scope["cookies"] = {"a": "outer"}
    await run_http(CookieMiddleware(recorder), scope)
    assert recorder.scopes[0]["cookies"] == {"a": "outer"}


@pytest.mark.asyncio
async def test_scope_without_headers_is_refused_with_a_clear_error() -> None:
    middleware = SessionMiddlewareStack(ScopeRecorder())
    with pytest.raises(ValueError, match=r"no 'headers' key.*HTTP and WebSocket"):
        await middleware({"type": "channel", "channel": "x"}, None, None)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_lifespan_scope_passes_through_untouched() -> None:
    recorder = ScopeRecorder()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await SessionMiddlewareStack(recorder)(scope, None, None)  # type: ignore[arg-type]
    assert recorder.scopes == [scope]
    assert "cookies" not in recorder.scopes[0]
    assert "session" not in recorder.scopes[0]


@hypothesis_settings(max_examples=200, deadline=None)
@given(header=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_cookie_header_parses_to_str_cookies(header: bytes) -> None:
    recorder = ScopeRecorder()
    async_to_sync(run_http)(CookieMiddleware(recorder), http_scope([(b"cookie", header)]))
    cookies = recorder.scopes[0]["cookies"]
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in cookies.items())


# -- CookieMiddleware: writing -------------------------------------------------------


def one_cookie(message: dict[str, Any]) -> Morsel[str]:
    (morsel,) = set_cookies(message).values()
    return morsel


def test_set_cookie_with_every_attribute() -> None:
    message: dict[str, Any] = {"type": "http.response.start", "status": 200}
    CookieMiddleware.set_cookie(
        message,
        "token",
        "abc",
        max_age=60,
        path="/app/",
        domain=".example.com",
        secure=True,
        httponly=True,
        samesite="Strict",
    )
    ((name, raw),) = message["headers"]
    assert name == b"set-cookie"
    morsel = one_cookie(message)
    assert morsel.key == "token"
    assert morsel.value == "abc"
    assert morsel["max-age"] == "60"
    assert morsel["expires"].endswith(" GMT")
    assert morsel["path"] == "/app/"
    assert morsel["domain"] == ".example.com"
    assert morsel["secure"] is True
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Strict"
    assert b"Secure" in raw
    assert b"HttpOnly" in raw


def test_set_cookie_defaults_are_path_root_and_samesite_lax() -> None:
    message: dict[str, Any] = {"type": "http.response.start", "status": 200}
    CookieMiddleware.set_cookie(message, "a", "1")
    morsel = one_cookie(message)
    assert morsel["path"] == "/"
    assert morsel["samesite"] == "lax"
    assert not morsel["max-age"]
    assert not morsel["expires"]
    assert not morsel["domain"]
    assert not morsel["secure"]
    assert not morsel["httponly"]


def test_set_cookie_keeps_existing_headers_and_appends() -> None:
    headers = ((b"content-type", b"text/plain"),)
    message: dict[str, Any] = {"type": "http.response.start", "status": 200, "headers": headers}
    CookieMiddleware.set_cookie(message, "a", "1")
    CookieMiddleware.set_cookie(message, "b", "2")
    assert message["headers"][0] == (b"content-type", b"text/plain")
    assert set(set_cookies(message)) == {"a", "b"}
    assert headers == ((b"content-type", b"text/plain"),)


def test_set_cookie_max_age_timedelta() -> None:
    message: dict[str, Any] = {"headers": []}
    CookieMiddleware.set_cookie(message, "a", "1", max_age=datetime.timedelta(hours=1))
    assert one_cookie(message)["max-age"] == "3600"


@pytest.mark.parametrize("aware", [True, False])
def test_set_cookie_datetime_expires_becomes_max_age(aware: bool) -> None:
    when = datetime.datetime.now(tz=datetime.timezone.utc) + datetime.timedelta(seconds=100)
    if not aware:
        when = when.replace(tzinfo=None)
    message: dict[str, Any] = {"headers": []}
    CookieMiddleware.set_cookie(message, "a", "1", expires=when)
    assert 99 <= int(one_cookie(message)["max-age"]) <= 101


def test_set_cookie_string_expires_is_kept() -> None:
    message: dict[str, Any] = {"headers": []}
    CookieMiddleware.set_cookie(message, "a", "1", expires="Wed, 21 Oct 2037 07:28:00 GMT")
    morsel = one_cookie(message)
    assert morsel["expires"] == "Wed, 21 Oct 2037 07:28:00 GMT"
    assert not morsel["max-age"]


@pytest.mark.parametrize("samesite", [None, "", False])
def test_set_cookie_without_samesite(samesite: Any) -> None:
    message: dict[str, Any] = {"headers": []}
    CookieMiddleware.set_cookie(message, "a", "1", samesite=samesite)
    assert b"samesite" not in message["headers"][0][1].lower()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"key": "bad name"}, "Cookie name 'bad name' is not valid"),
        ({"key": ""}, "Cookie name '' is not valid"),
        ({"key": "expires"}, "Cookie name 'expires' is not valid"),
        ({"key": "a", "samesite": "sometimes"}, "samesite must be"),
        (
            {"key": "a", "max_age": 5, "expires": datetime.datetime(2037, 1, 1)},
            "not both",
        ),
        ({"key": "a", "value": "snowman \u2603"}, "cannot be sent in an HTTP header"),
    ],
)
def test_set_cookie_rejects_bad_input(kwargs: dict[str, Any], error: str) -> None:
    message: dict[str, Any] = {"headers": []}
    with pytest.raises(ValueError, match=error):
        CookieMiddleware.set_cookie(message, **kwargs)
    assert message["headers"] == []


def test_delete_cookie_expires_it_now() -> None:
    message: dict[str, Any] = {"headers": []}
    CookieMiddleware.delete_cookie(message, "sessionid", path="/app/", domain="example.com")
    morsel = one_cookie(message)
    assert morsel.value == ""
    assert morsel["max-age"] == "0"
    assert morsel["expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert morsel["path"] == "/app/"
    assert morsel["domain"] == "example.com"
    assert not morsel["secure"]


@pytest.mark.parametrize(("key", "samesite"), [("__Host-id", "lax"), ("id", "None")])
def test_delete_cookie_is_secure_where_browsers_require_it(key: str, samesite: str) -> None:
    message: dict[str, Any] = {"headers": []}
    CookieMiddleware.delete_cookie(message, key, samesite=samesite)
    assert one_cookie(message)["secure"] is True


# -- SessionMiddleware over HTTP -----------------------------------------------------


@pytest.mark.asyncio
async def test_modified_session_is_saved_and_its_cookie_set(engine: type[SessionBase]) -> None:
    def remember(session: SessionBase) -> None:
        session["colour"] = "green"

    response = await get(SessionMiddlewareStack(http_app(remember)))
    assert response["status"] == 200
    cookie = set_cookies(response)["sessionid"]
    assert cookie.value
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["max-age"] == str(60 * 60 * 24 * 7 * 2)
    assert header_values(response["headers"], b"vary") == [b"Cookie"]
    stored = await database_sync_to_async(read_session)(engine, cookie.value)
    assert stored == {"colour": "green"}

    # The next request with that cookie sees the data.
    response = await get(
        SessionMiddlewareStack(http_app(lambda session: session.get("colour"))),
        f"sessionid={cookie.value}",
    )
    assert response["body"] == b"'green'"
    assert "sessionid" not in set_cookies(response)


@pytest.mark.asyncio
async def test_session_made_by_django_client_is_used_and_updated(
    engine: type[SessionBase],
) -> None:
    client = Client()

    def prepare() -> None:
        session = client.session
        session["visits"] = 1
        session.save()
        client.cookies["sessionid"] = session.session_key

    await database_sync_to_async(prepare)()

    def visit(session: SessionBase) -> int:
        session["visits"] += 1
        return int(session["visits"])

    response = await get(SessionMiddlewareStack(http_app(visit)), cookie_header(client))
    assert response["body"] == b"2"
    new_key = set_cookies(response)["sessionid"].value
    client.cookies["sessionid"] = new_key

    def visits_seen_by_django() -> int:
        return int(client.session["visits"])

    assert await database_sync_to_async(visits_seen_by_django)() == 2


@pytest.mark.asyncio
async def test_untouched_session_sends_no_cookie_and_no_vary(engine: type[SessionBase]) -> None:
    key = await database_sync_to_async(make_session)(engine, a=1)
    response = await get(SessionMiddlewareStack(http_app(lambda session: None)), f"sessionid={key}")
    assert set_cookies(response) == {}
    assert header_values(response["headers"], b"vary") == []


@pytest.mark.asyncio
async def test_read_session_varies_on_cookie_but_is_not_saved(engine: type[SessionBase]) -> None:
    key = await database_sync_to_async(make_session)(engine, a=1)
    response = await get(
        SessionMiddlewareStack(http_app(lambda session: session["a"])), f"sessionid={key}"
    )
    assert response["body"] == b"1"
    assert set_cookies(response) == {}
    assert header_values(response["headers"], b"vary") == [b"Cookie"]


@pytest.mark.asyncio
async def test_save_every_request(engine: type[SessionBase], settings: Any) -> None:
    settings.SESSION_SAVE_EVERY_REQUEST = True
    key = await database_sync_to_async(make_session)(engine, a=1)
    response = await get(SessionMiddlewareStack(http_app(lambda session: None)), f"sessionid={key}")
    cookie = set_cookies(response)["sessionid"]
    assert await database_sync_to_async(read_session)(engine, cookie.value) == {"a": 1}
    # Without a session there is nothing to save: no cookie.
    response = await get(SessionMiddlewareStack(http_app(lambda session: None)))
    assert set_cookies(response) == {}


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [500, 503])
async def test_server_error_responses_do_not_save(engine: type[SessionBase], status: int) -> None:
    key = await database_sync_to_async(make_session)(engine, a=1)

    def change(session: SessionBase) -> None:
        session["a"] = 2

    response = await get(
        SessionMiddlewareStack(http_app(change, status=status)), f"sessionid={key}"
    )
    assert response["status"] == status
    assert set_cookies(response) == {}
    assert await database_sync_to_async(read_session)(engine, key) == {"a": 1}


@pytest.mark.asyncio
async def test_other_statuses_save(engine: type[SessionBase]) -> None:
    def change(session: SessionBase) -> None:
        session["a"] = 2

    for status in (201, 302, 404, 499):
        response = await get(SessionMiddlewareStack(http_app(change, status=status)))
        assert "sessionid" in set_cookies(response), status


@pytest.mark.asyncio
async def test_flushed_session_has_its_cookie_deleted(engine: type[SessionBase]) -> None:
    key = await database_sync_to_async(make_session)(engine, a=1)
    response = await get(
        SessionMiddlewareStack(http_app(lambda session: session.flush())), f"sessionid={key}"
    )
    cookie = set_cookies(response)["sessionid"]
    assert cookie.value == ""
    assert cookie["max-age"] == "0"
    assert header_values(response["headers"], b"vary") == [b"Cookie"]
    if not is_signed_cookies(engine):
        # (A signed cookie cannot be revoked on the server: it is its own store.)
        assert await database_sync_to_async(read_session)(engine, key) == {}


@pytest.mark.asyncio
async def test_every_session_cookie_setting_is_honoured(
    engine: type[SessionBase], settings: Any
) -> None:
    settings.SESSION_COOKIE_NAME = "sid"
    settings.SESSION_COOKIE_AGE = 1234
    settings.SESSION_COOKIE_DOMAIN = ".example.com"
    settings.SESSION_COOKIE_SECURE = True
    settings.SESSION_COOKIE_PATH = "/app/"
    settings.SESSION_COOKIE_HTTPONLY = False
    settings.SESSION_COOKIE_SAMESITE = "Strict"

    def change(session: SessionBase) -> None:
        session["a"] = 1

    response = await get(SessionMiddlewareStack(http_app(change)))
    cookies = set_cookies(response)
    assert list(cookies) == ["sid"]
    cookie = cookies["sid"]
    assert cookie["max-age"] == "1234"
    assert cookie["domain"] == ".example.com"
    assert cookie["secure"] is True
    assert cookie["path"] == "/app/"
    assert not cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    # The cookie is read back under its configured name.
    response = await get(
        SessionMiddlewareStack(http_app(lambda session: session.get("a"))),
        f"sessionid=nothing; sid={cookie.value}",
    )
    assert response["body"] == b"1"

    # Deletion uses the same path and domain, or the browser keeps the cookie.
    response = await get(
        SessionMiddlewareStack(http_app(lambda session: session.flush())), f"sid={cookie.value}"
    )
    deleted = set_cookies(response)["sid"]
    assert deleted["max-age"] == "0"
    assert deleted["path"] == "/app/"
    assert deleted["domain"] == ".example.com"


@pytest.mark.asyncio
@pytest.mark.parametrize("samesite", [None, False, "None"])
async def test_samesite_setting_none_and_off(samesite: Any, settings: Any, engine: Any) -> None:
    settings.SESSION_COOKIE_SAMESITE = samesite

    def change(session: SessionBase) -> None:
        session["a"] = 1

    response = await get(SessionMiddlewareStack(http_app(change)))
    cookie = set_cookies(response)["sessionid"]
    assert cookie["samesite"] == (samesite or "")


@pytest.mark.asyncio
async def test_expire_at_browser_close(engine: type[SessionBase], settings: Any) -> None:
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = True

    def change(session: SessionBase) -> None:
        session["a"] = 1

    cookie = set_cookies(await get(SessionMiddlewareStack(http_app(change))))["sessionid"]
    assert cookie.value
    assert not cookie["max-age"]
    assert not cookie["expires"]


@pytest.mark.asyncio
async def test_set_expiry_sets_cookie_max_age(engine: type[SessionBase]) -> None:
    def change(session: SessionBase) -> None:
        session["a"] = 1
        session.set_expiry(300)

    cookie = set_cookies(await get(SessionMiddlewareStack(http_app(change))))["sessionid"]
    assert cookie["max-age"] == "300"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ([(b"vary", b"Accept-Encoding")], [b"Accept-Encoding", b"Cookie"]),
        ([(b"vary", b"accept-encoding, cookie")], [b"accept-encoding, cookie"]),
        ([(b"vary", b"*")], [b"*"]),
    ],
)
async def test_vary_header_is_merged(
    engine: type[SessionBase], existing: list[tuple[bytes, bytes]], expected: list[bytes]
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await database_sync_to_async(scope["session"].get)("x")
        start = {"type": "http.response.start", "status": 200, "headers": list(existing)}
        await send(start)
        # The application's own message is not changed.
        assert start["headers"] == existing
        await send({"type": "http.response.body", "body": b""})

    response = await get(SessionMiddlewareStack(app))
    assert header_values(response["headers"], b"vary") == expected


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_session_deleted_during_request_raises_session_interrupted(
    db_store: type[SessionBase],
) -> None:
    key = await database_sync_to_async(make_session)(db_store, a=1)

    def change_after_concurrent_logout(session: SessionBase) -> None:
        session["a"] = 2
        db_store(key).delete()

    with pytest.raises(SessionInterrupted, match="deleted before the response"):
        await call(
            SessionMiddlewareStack(http_app(change_after_concurrent_logout)),
            http_scope([(b"cookie", f"sessionid={key}".encode())]),
        )


# -- SessionMiddleware over WebSocket ------------------------------------------------


class SessionEcho(WebsocketConsumer):
    """Replies to "get <name>", "set <name> <value>" and "save" on its session."""

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        assert text_data is not None
        command, *args = text_data.split(" ")
        session = self.scope["session"]
        if command == "get":
            self.send(text_data=repr(session.get(args[0])))
        elif command == "set":
            session[args[0]] = args[1]
            self.send(text_data="ok")
        elif command == "save":
            session.save()
            self.send(text_data=str(session.session_key))


async def ws_connect(app: Any, cookie: bytes | None) -> WebsocketCommunicator:
    headers = [(b"cookie", cookie)] if cookie is not None else []
    communicator = WebsocketCommunicator(app, "/ws/", headers=headers)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    return communicator


async def ask(communicator: WebsocketCommunicator, text: str) -> str | bytes:
    await communicator.send_to(text_data=text)
    return await communicator.receive_from(timeout=TIMEOUT)


async def rename_to_grace_and_save(
    communicator: WebsocketCommunicator, engine: type[SessionBase]
) -> None:
    """Set the name to "grace", save the session (``"save"``) and disconnect; check the store."""
    assert await ask(communicator, "set name grace") == "ok"
    saved_key = await ask(communicator, "save")
    await communicator.disconnect()
    assert isinstance(saved_key, str)
    assert await database_sync_to_async(read_session)(engine, saved_key) == {"name": "grace"}


@pytest.mark.asyncio
async def test_websocket_sees_session_made_by_django_client(engine: type[SessionBase]) -> None:
    client = Client()

    def prepare() -> None:
        session = client.session
        session["name"] = "ada"
        session.save()
        client.cookies["sessionid"] = session.session_key

    await database_sync_to_async(prepare)()
    communicator = await ws_connect(
        SessionMiddlewareStack(SessionEcho.as_asgi()), cookie_header(client)
    )
    assert communicator.response_headers == []
    assert await ask(communicator, "get name") == "'ada'"
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_websocket_session_is_saved_only_when_asked(engine: type[SessionBase]) -> None:
    key = await database_sync_to_async(make_session)(engine, name="ada")
    app = SessionMiddlewareStack(SessionEcho.as_asgi())

    communicator = await ws_connect(app, f"sessionid={key}".encode())
    assert await ask(communicator, "set name grace") == "ok"
    assert await ask(communicator, "get name") == "'grace'"
    await communicator.disconnect()
    assert await database_sync_to_async(read_session)(engine, key) == {"name": "ada"}

    communicator = await ws_connect(app, f"sessionid={key}".encode())
    await rename_to_grace_and_save(communicator, engine)


class RotateBeforeAccept(AsyncWebsocketConsumer):
    action = "cycle"

    async def connect(self) -> None:
        session = self.scope["session"]
        if self.action == "cycle":

            def rotate_and_save() -> None:
                session["b"] = 2
                session.cycle_key()
                session.save()

            await database_sync_to_async(rotate_and_save)()
        elif self.action == "flush":
            await database_sync_to_async(session.flush)()
        await self.accept()
        await self.send(text_data=str(session.session_key))


@pytest.mark.asyncio
async def test_key_changed_before_accept_is_sent_in_handshake(engine: type[SessionBase]) -> None:
    key = await database_sync_to_async(make_session)(engine, a=1)
    communicator = await ws_connect(
        SessionMiddlewareStack(RotateBeforeAccept.as_asgi()), f"sessionid={key}".encode()
    )
    new_key = await communicator.receive_from(timeout=TIMEOUT)
    await communicator.disconnect()
    assert new_key != key
    assert communicator.response_headers is not None
    cookie = set_cookies({"headers": communicator.response_headers})["sessionid"]
    assert cookie.value == new_key
    assert cookie["httponly"] is True
    assert cookie["max-age"]
    assert await database_sync_to_async(read_session)(engine, cookie.value) == {"a": 1, "b": 2}
    if not is_signed_cookies(engine):
        assert await database_sync_to_async(read_session)(engine, key) == {}


@pytest.mark.asyncio
async def test_session_flushed_before_accept_deletes_cookie(engine: type[SessionBase]) -> None:
    key = await database_sync_to_async(make_session)(engine, a=1)
    communicator = await ws_connect(
        SessionMiddlewareStack(RotateBeforeAccept.as_asgi(action="flush")),
        f"sessionid={key}".encode(),
    )
    await communicator.receive_from(timeout=TIMEOUT)
    await communicator.disconnect()
    cookie = set_cookies({"headers": communicator.response_headers})["sessionid"]
    assert cookie.value == ""
    assert cookie["max-age"] == "0"


@pytest.mark.asyncio
async def test_unchanged_websocket_session_adds_nothing_to_accept(engine: Any) -> None:
    key = await database_sync_to_async(make_session)(engine, a=1)
    communicator = await ws_connect(
        SessionMiddlewareStack(RotateBeforeAccept.as_asgi(action="none")),
        f"sessionid={key}".encode(),
    )
    assert await communicator.receive_from(timeout=TIMEOUT) == key
    await communicator.disconnect()
    assert communicator.response_headers == []


# -- laziness, nesting, errors -------------------------------------------------------


@pytest.fixture
def counting_store(settings: Any, transactional_db: None) -> Iterator[Any]:
    """A db SessionStore that records the thread of every load() from the database."""
    from django.contrib.sessions.backends.db import SessionStore as DatabaseStore

    class CountingStore(DatabaseStore):
        load_threads: list[int] = []

        def load(self) -> dict[str, Any]:
            CountingStore.load_threads.append(threading.get_ident())
            return super().load()

    module = types.ModuleType("channels_tests_counting_session_engine")
    module.SessionStore = CountingStore  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    settings.SESSION_ENGINE = module.__name__
    yield CountingStore
    del sys.modules[module.__name__]


@pytest.mark.asyncio
async def test_session_is_not_loaded_unless_used(counting_store: Any) -> None:
    key = await database_sync_to_async(make_session)(counting_store, a=1)
    counting_store.load_threads.clear()
    await get(SessionMiddlewareStack(http_app(lambda session: None)), f"sessionid={key}")
    communicator = await ws_connect(
        SessionMiddlewareStack(RotateBeforeAccept.as_asgi(action="none")),
        f"sessionid={key}".encode(),
    )
    await communicator.receive_from(timeout=TIMEOUT)
    await communicator.disconnect()
    assert counting_store.load_threads == []

    await get(SessionMiddlewareStack(http_app(lambda session: session["a"])), f"sessionid={key}")
    assert len(counting_store.load_threads) == 1
    assert counting_store.load_threads[0] != threading.get_ident()


@pytest.mark.asyncio
async def test_save_every_request_save_runs_off_the_event_loop(
    counting_store: Any, settings: Any
) -> None:
    settings.SESSION_SAVE_EVERY_REQUEST = True
    key = await database_sync_to_async(make_session)(counting_store, a=1)
    counting_store.load_threads.clear()
    response = await get(SessionMiddlewareStack(http_app(lambda session: None)), f"sessionid={key}")
    assert "sessionid" in set_cookies(response)
    assert counting_store.load_threads
    assert threading.get_ident() not in counting_store.load_threads


@pytest.mark.asyncio
async def test_nested_session_middleware_is_harmless(engine: type[SessionBase]) -> None:
    seen: list[Any] = []

    def change(session: SessionBase) -> None:
        session["a"] = 1

    inner = http_app(change)

    async def record(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["session"])
        await inner(scope, receive, send)

    async def outer_record(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["session"])
        await nested(scope, receive, send)

    nested = SessionMiddlewareStack(record)
    response = await get(SessionMiddlewareStack(outer_record))
    assert len(header_values(response["headers"], b"set-cookie")) == 1
    assert len(header_values(response["headers"], b"vary")) == 1
    assert seen[0] is seen[1]


@pytest.mark.asyncio
async def test_session_middleware_without_cookie_middleware_is_an_error() -> None:
    with pytest.raises(ValueError, match="wrap it in CookieMiddleware"):
        await call(SessionMiddleware(http_app(lambda session: None)), http_scope([]))


@pytest.mark.asyncio
async def test_server_scope_is_not_changed(engine: type[SessionBase]) -> None:
    recorder = ScopeRecorder()
    scope = http_scope([(b"cookie", b"sessionid=abcdefghijkl")])
    before = dict(scope)
    await run_http(SessionMiddlewareStack(recorder), scope)
    assert scope == before
    session = recorder.scopes[0]["session"]
    # Channels' contract: a LazyObject whose _wrapped is the store, and which
    # passes for the store it wraps.
    assert isinstance(session, LazyObject)
    assert isinstance(session, SessionLazyObject)
    assert session.is_resolved
    assert type(session._wrapped) is engine
    assert session._wrapped.session_key == "abcdefghijkl"
    assert isinstance(session, SessionBase)


def test_middleware_keeps_inner_app_reachable() -> None:
    app = ScopeRecorder()
    stack = SessionMiddlewareStack(app)
    assert isinstance(stack, CookieMiddleware)
    assert isinstance(stack.inner, SessionMiddleware)
    assert stack.inner.inner is app


# -- bad input -----------------------------------------------------------------------

BAD_COOKIE_HEADERS = [
    b"sessionid",
    b"=;=;;=",
    b'sessionid="unterminated',
    b"sessionid=\xff\xfe\x00\x01",
    b"sessionid=" + b"a" * 100_000,
    b"sessionid=" + b"b" * (MAX_SESSION_KEY_LENGTH + 1),
    b"sessionid=" + b"c" * 300,
    b";" * 20_000,
    b"sessionid=0123456789abcdef0123456789abcdef",
    b"sessionid=../../../../etc/passwd",
    b"sessionid=' OR '1'='1",
    b'sessionid="\\000\\000abcdefgh"',
    b"sessionid=abc",
    b"sessionid=\xc3\xa9t\xc3\xa9t\xc3\xa9t\xc3\xa9",
    b"sessionid=x:y:z",
    b"sessionid=a; sessionid=b; sessionid=",
]


@pytest.mark.asyncio
@pytest.mark.parametrize("header", BAD_COOKIE_HEADERS)
async def test_bad_cookies_give_a_fresh_session(engine: type[SessionBase], header: bytes) -> None:
    def use(session: SessionBase) -> Any:
        value = session.get("a")
        session["b"] = 1
        return value

    response = await get(SessionMiddlewareStack(http_app(use)), header)
    assert response["status"] == 200
    assert response["body"] == b"None"
    cookie = set_cookies(response)["sessionid"]
    assert await database_sync_to_async(read_session)(engine, cookie.value) == {"b": 1}

    communicator = await ws_connect(SessionMiddlewareStack(SessionEcho.as_asgi()), header)
    assert await ask(communicator, "get a") == "None"
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
@hypothesis_settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.binary(max_size=200))
def test_any_session_cookie_value_is_harmless(value: bytes) -> None:
    async def scenario() -> dict[str, Any]:
        return await get(
            SessionMiddlewareStack(http_app(lambda session: session.get("a"))),
            b"sessionid=" + value,
        )

    response = async_to_sync(scenario)()
    assert response["status"] == 200
    assert response["body"] == b"None"


# -- isolation (CVE-2020-35681) -----------------------------------------------------


class WhoAmI(AsyncWebsocketConsumer):
    """Reports the number in its session, after writing its own mark in it."""

    sessions: list[Any] = []

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        session = self.scope["session"]
        WhoAmI.sessions.append(session)

        def read_and_mark() -> tuple[int, str]:
            number = session["n"]
            session["mark"] = f"connection-{number}"
            # Give other connections every chance to interleave.
            return number, session["mark"]

        number, mark = await database_sync_to_async(read_and_mark)()
        await asyncio.sleep(random.random() / 100)
        await self.send(text_data=f"{number} {mark} {session['mark']} {text_data}")


@pytest.mark.asyncio
async def test_200_interleaved_websockets_each_see_only_their_session(
    engine: type[SessionBase],
) -> None:
    count = 200

    def make_all() -> list[str]:
        with transaction.atomic():
            return [make_session(engine, n=number) for number in range(count)]

    keys = await database_sync_to_async(make_all)()
    WhoAmI.sessions = []
    app = SessionMiddlewareStack(WhoAmI.as_asgi())
    communicators = await asyncio.gather(
        *(ws_connect(app, f"sessionid={key}".encode()) for key in keys)
    )
    order = list(range(count))
    random.shuffle(order)
    for number in order:
        await communicators[number].send_to(text_data=f"ask-{number}")
    replies = await asyncio.gather(
        *(communicator.receive_from(timeout=TIMEOUT) for communicator in communicators)
    )
    await asyncio.gather(*(communicator.disconnect() for communicator in communicators))
    for number, reply in enumerate(replies):
        assert reply == f"{number} connection-{number} connection-{number} ask-{number}"
    assert len({id(session) for session in WhoAmI.sessions}) == count


@pytest.mark.asyncio
async def test_200_interleaved_http_requests_each_get_their_own_session(
    engine: type[SessionBase],
) -> None:
    count = 200

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        number = int(message["body"])
        await asyncio.sleep(random.random() / 100)

        def write() -> None:
            scope["session"]["n"] = number

        await database_sync_to_async(write)()
        await asyncio.sleep(random.random() / 100)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(number).encode()})

    middleware = SessionMiddlewareStack(app)

    async def request(number: int) -> dict[str, Any]:
        communicator = HttpCommunicator(middleware, "POST", "/", body=str(number).encode())
        response = await communicator.get_response(timeout=TIMEOUT)
        await communicator.wait(TIMEOUT)
        return response

    responses = await asyncio.gather(*(request(number) for number in range(count)))
    keys = [set_cookies(response)["sessionid"].value for response in responses]
    assert len(set(keys)) == count

    def read_all() -> list[dict[str, Any]]:
        return [read_session(engine, key) for key in keys]

    assert await database_sync_to_async(read_all)() == [{"n": n} for n in range(count)]


# -- the Channels wrapper API: InstanceSessionWrapper ------------------------------


class TokenSessionWrapper(InstanceSessionWrapper):
    """Finds the session by an ``x-session-token`` header or a ``?token=`` query
    string instead of the cookie, the way libraries built on Channels do."""

    async def resolve_session(self) -> None:
        token: str | None = None
        for name, value in self.scope["headers"]:
            if name == b"x-session-token":
                token = value.decode("ascii")
        if token is None:
            query = parse_qs(self.scope["query_string"].decode("ascii"))
            token = query.get("token", [None])[0]
        self.scope["session"]._wrapped = await database_sync_to_async(self.session_store)(token)


class TokenSessionMiddleware(SessionMiddleware):
    """Picks the wrapper up through the class attribute."""

    wrapper_class = TokenSessionWrapper


class OverridingSessionMiddleware(SessionMiddleware):
    """Makes its wrapper in an overridden ``__call__``, as authentik's does."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        wrapper = TokenSessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, wrapper.send)


TOKEN_MIDDLEWARE = [TokenSessionMiddleware, OverridingSessionMiddleware]


class SessionCounter(AsyncHttpConsumer):
    """Counts requests in the session; remembers what scope["session"] was."""

    seen: ClassVar[list[Any]] = []

    async def handle(self, body: bytes) -> None:
        session = self.scope["session"]
        SessionCounter.seen.append(session)

        def count() -> int:
            session["count"] = session.get("count", 0) + 1
            return int(session["count"])

        number = await database_sync_to_async(count)()
        status = 503 if self.scope["path"] == "/fail/" else 200
        await self.send_response(status, str(number).encode())


async def get_with(
    app: Any, path: str = "/", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    communicator = HttpCommunicator(app, "GET", path, headers=headers or [])
    response = await communicator.get_response(timeout=TIMEOUT)
    await communicator.wait(TIMEOUT)
    return response


@pytest.mark.asyncio
@pytest.mark.parametrize("middleware", TOKEN_MIDDLEWARE)
async def test_wrapper_subclass_finds_the_http_session_its_own_way(
    engine: type[SessionBase], middleware: type[SessionMiddleware]
) -> None:
    mine = await database_sync_to_async(make_session)(engine, count=41)
    other = await database_sync_to_async(make_session)(engine, count=1000)
    SessionCounter.seen = []
    app = CookieMiddleware(middleware(SessionCounter.as_asgi()))

    # The header wins over a cookie naming another session.
    response = await get_with(
        app,
        headers=[(b"x-session-token", mine.encode()), (b"cookie", f"sessionid={other}".encode())],
    )
    assert response["status"] == 200
    assert response["body"] == b"42"
    session = SessionCounter.seen[0]
    assert isinstance(session, LazyObject)
    assert type(session._wrapped) is engine
    # The save still goes through the wrapper's send(): stored, cookie set.
    saved_key = set_cookies(response)["sessionid"].value
    if not is_signed_cookies(engine):
        assert saved_key == mine
    assert await database_sync_to_async(read_session)(engine, saved_key) == {"count": 42}
    assert await database_sync_to_async(read_session)(engine, other) == {"count": 1000}

    # Without a token the subclass gives a new session, whatever the cookie says.
    response = await get_with(app, headers=[(b"cookie", f"sessionid={other}".encode())])
    assert response["body"] == b"1"


class TokenEcho(SessionEcho):
    """SessionEcho that also reports what its scope["session"] is."""

    def connect(self) -> None:
        self.accept()
        session = self.scope["session"]
        self.send(text_data=f"{type(session).__name__} {type(session._wrapped).__name__}")


@pytest.mark.asyncio
@pytest.mark.parametrize("middleware", TOKEN_MIDDLEWARE)
async def test_wrapper_subclass_finds_the_websocket_session_by_query_string(
    engine: type[SessionBase], middleware: type[SessionMiddleware]
) -> None:
    key = await database_sync_to_async(make_session)(engine, name="ada")
    app = CookieMiddleware(middleware(TokenEcho.as_asgi()))
    communicator = WebsocketCommunicator(app, f"/ws/?token={key}")
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    assert await communicator.receive_from(timeout=TIMEOUT) == "SessionLazyObject SessionStore"
    # The key did not change after resolve_session(), so no cookie is set on
    # the accept, although the client sent none.
    assert communicator.response_headers == []
    assert await ask(communicator, "get name") == "'ada'"
    await rename_to_grace_and_save(communicator, engine)


class RecordingWrapper(InstanceSessionWrapper):
    """Records every save_session() call, then saves as usual."""

    saves: ClassVar[list[dict[str, Any]]] = []

    async def save_session(self) -> None:
        RecordingWrapper.saves.append(dict(self.scope["session"]._wrapped.items()))
        await super().save_session()


class RecordingMiddleware(SessionMiddleware):
    wrapper_class = RecordingWrapper


@pytest.mark.asyncio
async def test_overridden_save_session_is_what_saves(engine: type[SessionBase]) -> None:
    RecordingWrapper.saves = []
    app = CookieMiddleware(RecordingMiddleware(SessionCounter.as_asgi()))
    response = await get_with(app)
    assert response["body"] == b"1"
    assert RecordingWrapper.saves == [{"count": 1}]
    key = set_cookies(response)["sessionid"].value
    assert await database_sync_to_async(read_session)(engine, key) == {"count": 1}

    # A server error saves nothing: save_session() is not called.
    response = await get_with(app, "/fail/", [(b"cookie", f"sessionid={key}".encode())])
    assert response["status"] == 503
    assert RecordingWrapper.saves == [{"count": 1}]
    assert set_cookies(response) == {}

    # An unmodified session is not saved either.
    response = await get_with(
        CookieMiddleware(RecordingMiddleware(http_app(lambda session: session.get("count")))),
        headers=[(b"cookie", f"sessionid={key}".encode())],
    )
    assert response["body"] == b"1"
    assert RecordingWrapper.saves == [{"count": 1}]
    assert set_cookies(response) == {}


class OwnSaveWrapper(InstanceSessionWrapper):
    """Saves the session its own way, without the base class's save_session()."""

    calls: ClassVar[int] = 0

    async def save_session(self) -> None:
        OwnSaveWrapper.calls += 1
        await database_sync_to_async(self.scope["session"].save)()


class OwnSaveMiddleware(SessionMiddleware):
    wrapper_class = OwnSaveWrapper


@pytest.mark.asyncio
async def test_save_session_replaced_entirely_still_gets_a_full_cookie(
    engine: type[SessionBase], settings: Any
) -> None:
    settings.SESSION_COOKIE_AGE = 4321
    OwnSaveWrapper.calls = 0
    response = await get_with(CookieMiddleware(OwnSaveMiddleware(SessionCounter.as_asgi())))
    assert OwnSaveWrapper.calls == 1
    cookie = set_cookies(response)["sessionid"]
    assert cookie["max-age"] == "4321"
    assert header_values(response["headers"], b"vary") == [b"Cookie"]
    assert await database_sync_to_async(read_session)(engine, cookie.value) == {"count": 1}


class SaveOnAcceptWrapper(RecordingWrapper):
    save_message_types = [*InstanceSessionWrapper.save_message_types, "websocket.accept"]


class SaveOnAcceptMiddleware(SessionMiddleware):
    wrapper_class = SaveOnAcceptWrapper


class ChangeThenAccept(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await database_sync_to_async(self.scope["session"].__setitem__)("seen", True)
        await self.accept()


@pytest.mark.asyncio
async def test_message_types_listed_by_a_subclass_save_the_session(
    engine: type[SessionBase],
) -> None:
    RecordingWrapper.saves = []
    communicator = await ws_connect(
        CookieMiddleware(SaveOnAcceptMiddleware(ChangeThenAccept.as_asgi())), None
    )
    await communicator.disconnect()
    assert RecordingWrapper.saves == [{"seen": True}]
    cookie = set_cookies({"headers": communicator.response_headers})["sessionid"]
    assert await database_sync_to_async(read_session)(engine, cookie.value) == {"seen": True}


class NoCookieWrapper(InstanceSessionWrapper):
    cookie_response_message_types: ClassVar[list[str]] = []


class NoCookieMiddleware(SessionMiddleware):
    wrapper_class = NoCookieWrapper


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_saving_without_a_cookie_message_saves_but_sets_no_cookie(
    db_store: type[SessionBase],
) -> None:
    # (Not with signed_cookies: there the cookie is the store.)
    key = await database_sync_to_async(make_session)(db_store, count=1)
    response = await get_with(
        CookieMiddleware(NoCookieMiddleware(SessionCounter.as_asgi())),
        headers=[(b"cookie", f"sessionid={key}".encode())],
    )
    assert response["body"] == b"2"
    assert set_cookies(response) == {}
    assert await database_sync_to_async(read_session)(db_store, key) == {"count": 2}


@pytest.mark.asyncio
async def test_store_set_into_wrapped_by_the_application_is_the_one_saved(
    engine: type[SessionBase],
) -> None:
    original = await database_sync_to_async(make_session)(engine, who="original")

    async def swap(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        replacement = engine()
        replacement["who"] = "replacement"
        scope["session"]._wrapped = replacement
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    response = await get(SessionMiddlewareStack(swap), f"sessionid={original}")
    key = set_cookies(response)["sessionid"].value
    assert key != original
    assert await database_sync_to_async(read_session)(engine, key) == {"who": "replacement"}
    assert await database_sync_to_async(read_session)(engine, original) == {"who": "original"}


@pytest.mark.asyncio
async def test_session_used_before_it_is_resolved_names_resolve_session() -> None:
    class Forgetful(SessionMiddleware):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
            wrapper = InstanceSessionWrapper(scope, send)
            return await self.inner(wrapper.scope, receive, wrapper.send)

    sessions: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        sessions.append(scope["session"])
        scope["session"].get("a")

    with pytest.raises(ValueError, match=r"before the session was resolved.*resolve_session"):
        await call(CookieMiddleware(Forgetful(app)), http_scope([]))
    assert isinstance(sessions[0], SessionLazyObject)
    assert not sessions[0].is_resolved


@pytest.mark.asyncio
async def test_wrapper_under_an_existing_session_changes_nothing(engine: Any) -> None:
    key = await database_sync_to_async(make_session)(engine, a=1)
    seen: list[Any] = []

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        assert not wrapper.activated
        assert wrapper.real_send is send
        seen.append((scope["session"], wrapper.scope["session"]))
        await http_app(lambda session: session["a"])(wrapper.scope, receive, wrapper.send)

    response = await get(SessionMiddlewareStack(inner), f"sessionid={key}")
    assert response["body"] == b"1"
    outer, passed_on = seen[0]
    assert passed_on is outer
    assert outer._wrapped.session_key == key
    assert len(header_values(response["headers"], b"vary")) == 1


def test_wrapper_has_the_channels_attributes(settings: Any) -> None:
    settings.SESSION_COOKIE_NAME = "sid"

    async def send(message: Any) -> None:
        raise AssertionError("not sent")

    wrapper = InstanceSessionWrapper(http_scope([]) | {"cookies": {}}, send)
    assert wrapper.cookie_name == "sid"
    assert wrapper.session_store is import_module(settings.SESSION_ENGINE).SessionStore
    assert wrapper.activated is True
    assert wrapper.real_send is send
    assert wrapper.save_message_types == ["http.response.start"]
    assert "http.response.start" in wrapper.cookie_response_message_types
    assert isinstance(wrapper.scope["session"], LazyObject)
    assert SessionMiddleware.wrapper_class is InstanceSessionWrapper
    with pytest.raises(ValueError, match="wrap it in CookieMiddleware"):
        InstanceSessionWrapper(http_scope([]), send)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("middleware", TOKEN_MIDDLEWARE)
async def test_auth_middleware_finds_the_user_of_a_token_session(
    middleware: type[SessionMiddleware],
) -> None:
    def log_in() -> str:
        user = get_user_model().objects.create_user("ada", password="analytical-engine")
        client = Client()
        client.force_login(user)
        return client.cookies["sessionid"].value

    key = await database_sync_to_async(log_in)()

    class WhoIsIt(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept()
            await self.send(text_data=self.scope["user"].get_username())

    app = CookieMiddleware(middleware(AuthMiddleware(WhoIsIt.as_asgi())))
    communicator = WebsocketCommunicator(app, f"/ws/?token={key}")
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    assert await communicator.receive_from(timeout=TIMEOUT) == "ada"
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_documented_token_session_wrapper(
    engine: type[SessionBase], documented_code: Any
) -> None:
    namespace = documented_code("token-session-example", "sessions.rst")
    key = await database_sync_to_async(make_session)(engine, name="ada")
    app = namespace["TokenSessionMiddlewareStack"](SessionEcho.as_asgi())
    communicator = WebsocketCommunicator(app, f"/ws/?token={key}")
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    assert await ask(communicator, "get name") == "'ada'"
    await communicator.disconnect()
