"""channels.auth against a real database, with sessions made by Django's test Client.

The "next HTTP request" checks go through Django's own stack (the test
Client, Django's SessionMiddleware and AuthenticationMiddleware, a view).
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import textwrap
import threading
import types
from collections.abc import Iterable, Iterator
from http.cookies import SimpleCookie
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

from channels.auth import (
    AuthMiddleware,
    AuthMiddlewareStack,
    UserLazyObject,
    get_user,
    login,
    logout,
)
from channels.db import database_sync_to_async
from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer
from channels.middleware import BaseMiddleware
from channels.routing import URLRouter
from channels.sessions import CookieMiddleware, SessionMiddleware, SessionMiddlewareStack
from channels.testing import HttpCommunicator, WebsocketCommunicator

TIMEOUT = 10
User = get_user_model()
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"

pytestmark = pytest.mark.django_db(transaction=True)


# -- helpers -------------------------------------------------------------------------


def describe(user: Any) -> str:
    return user.get_username() if user.is_authenticated else "<anonymous>"


@pytest.fixture
def ada() -> Any:
    return User.objects.create_user("ada", password="analytical-engine")


@pytest.fixture
def grace() -> Any:
    return User.objects.create_user("grace", password="cobol")


@pytest.fixture
def site(settings: Any) -> Iterator[Client]:
    """Django's HTTP stack with a /whoami/ view; yields a test Client for it."""

    def whoami(request: HttpRequest) -> HttpResponse:
        return HttpResponse(describe(request.user))

    urls = types.ModuleType("channels_tests_auth_urls")
    urls.urlpatterns = [path("whoami/", whoami)]  # type: ignore[attr-defined]
    sys.modules[urls.__name__] = urls
    settings.ROOT_URLCONF = urls.__name__
    settings.MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
    yield Client()
    del sys.modules[urls.__name__]


async def whoami_over_http(client: Client) -> str:
    response = await database_sync_to_async(client.get)("/whoami/")
    assert response.status_code == 200
    return str(response.content.decode())


def cookie_header(client: Client) -> bytes:
    return "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items()).encode()


async def logged_in_client(user: Any) -> Client:
    client = Client()
    await database_sync_to_async(client.force_login)(user)
    return client


class AccountConsumer(AsyncWebsocketConsumer):
    """Commands: whoami, login <username>, logout, recheck."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        assert text_data is not None
        command, *args = text_data.split()
        session = self.scope["session"]
        if command == "whoami":
            await self.send(text_data=describe(self.scope["user"]))
        elif command == "login":
            user = await database_sync_to_async(User.objects.get)(username=args[0])
            await login(self.scope, user)
            await database_sync_to_async(session.save)()
            await self.send(text_data=session.session_key)
        elif command == "logout":
            await logout(self.scope)
            await self.send(text_data=describe(self.scope["user"]))
        elif command == "recheck":
            self.scope["user"] = await get_user(self.scope)
            await self.send(text_data=describe(self.scope["user"]))


async def open_socket(
    app: Any, cookie: bytes | None = None, path: str = "/ws/"
) -> WebsocketCommunicator:
    headers = [(b"cookie", cookie)] if cookie is not None else []
    communicator = WebsocketCommunicator(app, path, headers=headers)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    return communicator


async def ask(communicator: WebsocketCommunicator, text: str) -> str:
    await communicator.send_to(text_data=text)
    reply = await communicator.receive_from(timeout=TIMEOUT)
    assert isinstance(reply, str)
    return reply


@pytest.fixture
def signals() -> Iterator[list[tuple[str, Any, Any]]]:
    received: list[tuple[str, Any, Any]] = []

    def on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        received.append(("in", request, user))

    def on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        received.append(("out", request, user))

    user_logged_in.connect(on_login)
    user_logged_out.connect(on_logout)
    yield received
    user_logged_in.disconnect(on_login)
    user_logged_out.disconnect(on_logout)


# -- AuthMiddleware ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_user_of_django_client_session_is_in_scope(ada: Any) -> None:
    client = await logged_in_client(ada)
    communicator = await open_socket(
        AuthMiddlewareStack(AccountConsumer.as_asgi()), cookie_header(client)
    )
    assert await ask(communicator, "whoami") == "ada"
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_user_is_resolved_before_the_application_runs_off_the_event_loop(
    ada: Any, settings: Any
) -> None:
    threads: list[int] = []

    class RecordingBackend(ModelBackend):
        def get_user(self, user_id: Any) -> Any:
            threads.append(threading.get_ident())
            return super().get_user(user_id)

    module = types.ModuleType("channels_tests_recording_backend")
    module.RecordingBackend = RecordingBackend  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    backend_path = f"{module.__name__}.RecordingBackend"
    settings.AUTHENTICATION_BACKENDS = [backend_path]
    try:
        client = Client()
        await database_sync_to_async(client.force_login)(ada, backend=backend_path)
        seen: list[Any] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            user = scope["user"]
            # Already resolved: reading it here, on the event loop, needs no query.
            seen.append((type(user), user.is_resolved, user.username, user.is_authenticated))
            await send({"type": "websocket.close"})

        communicator = WebsocketCommunicator(
            AuthMiddlewareStack(app), "/", headers=[(b"cookie", cookie_header(client))]
        )
        assert (await communicator.connect(timeout=TIMEOUT))[0] is False
        assert seen == [(UserLazyObject, True, "ada", True)]
        assert len(threads) == 1
        assert threads[0] != threading.get_ident()
    finally:
        del sys.modules[module.__name__]


@pytest.mark.asyncio
async def test_no_session_cookie_gives_anonymous_user() -> None:
    communicator = await open_socket(AuthMiddlewareStack(AccountConsumer.as_asgi()))
    assert await ask(communicator, "whoami") == "<anonymous>"
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_auth_middleware_without_session_names_session_middleware() -> None:
    app = CookieMiddleware(AuthMiddleware(AccountConsumer.as_asgi()))
    scope = {"type": "websocket", "path": "/", "headers": [], "query_string": b""}
    with pytest.raises(ValueError, match="SessionMiddleware"):
        await app(scope, None, None)  # type: ignore[arg-type]


@pytest.mark.asyncio
@pytest.mark.parametrize("function", [get_user, login, logout])
async def test_functions_without_session_name_session_middleware(function: Any) -> None:
    arguments = ({"type": "websocket"}, None) if function is login else ({"type": "websocket"},)
    with pytest.raises(ValueError, match="SessionMiddleware"):
        await function(*arguments)


@pytest.mark.asyncio
async def test_lifespan_passes_through_auth_stack() -> None:
    seen: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await AuthMiddlewareStack(app)(scope, None, None)  # type: ignore[arg-type]
    assert seen == [scope]


@pytest.mark.asyncio
async def test_user_set_by_outer_middleware_is_kept(ada: Any, grace: Any) -> None:
    class PutGrace(BaseMiddleware):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await super().__call__(dict(scope, user=grace), receive, send)

    client = await logged_in_client(ada)
    app = PutGrace(AuthMiddlewareStack(AccountConsumer.as_asgi()))
    communicator = await open_socket(app, cookie_header(client))
    assert await ask(communicator, "whoami") == "grace"
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_nested_auth_stacks_are_harmless(ada: Any) -> None:
    client = await logged_in_client(ada)
    app = AuthMiddlewareStack(AuthMiddlewareStack(AccountConsumer.as_asgi()))
    communicator = await open_socket(app, cookie_header(client))
    assert await ask(communicator, "whoami") == "ada"
    await communicator.disconnect()
    assert communicator.response_headers == []


@pytest.mark.asyncio
async def test_router_nested_under_auth_stack_routes_by_prefix(ada: Any) -> None:
    client = await logged_in_client(ada)
    app = URLRouter(
        [path("ws/", AuthMiddlewareStack(URLRouter([path("account/", AccountConsumer.as_asgi())])))]
    )
    communicator = await open_socket(app, cookie_header(client), path="/ws/account/")
    assert await ask(communicator, "whoami") == "ada"
    await communicator.disconnect()


def test_unresolved_user_lazy_object_says_so() -> None:
    user = UserLazyObject()
    assert not user.is_resolved
    with pytest.raises(ValueError, match="before AuthMiddleware resolved it"):
        user.is_authenticated  # noqa: B018


def test_auth_can_be_imported_before_django_is_set_up() -> None:
    code = textwrap.dedent(
        """
        import channels.auth, channels.sessions, channels.security.websocket
        from django.apps import apps
        assert not apps.ready
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# -- get_user: what makes a session invalid ------------------------------------------


async def user_for_session(**data: Any) -> str:
    def make() -> str:
        session = SessionStore()
        session.update(data)
        session.create()
        return str(session.session_key)

    key = await database_sync_to_async(make)()
    scope = {"session": SessionStore(key)}
    return describe(await get_user(scope))


@pytest.mark.asyncio
async def test_get_user_follows_django_rules(ada: Any, settings: Any) -> None:
    good = {
        SESSION_KEY: str(ada.pk),
        BACKEND_SESSION_KEY: MODEL_BACKEND,
        HASH_SESSION_KEY: ada.get_session_auth_hash(),
    }
    assert await user_for_session(**good) == "ada"
    assert await user_for_session() == "<anonymous>"
    assert await user_for_session(**{**good, SESSION_KEY: "999999"}) == "<anonymous>"
    assert await user_for_session(**{**good, SESSION_KEY: "not-a-number"}) == "<anonymous>"
    assert await user_for_session(**{**good, HASH_SESSION_KEY: "forged"}) == "<anonymous>"
    without_hash = {k: v for k, v in good.items() if k != HASH_SESSION_KEY}
    assert await user_for_session(**without_hash) == "<anonymous>"
    assert await user_for_session(**{**good, BACKEND_SESSION_KEY: "x.Backend"}) == "<anonymous>"
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.AllowAllUsersModelBackend"]
    assert await user_for_session(**good) == "<anonymous>"


@pytest.mark.asyncio
async def test_inactive_user_is_anonymous(ada: Any) -> None:
    client = await logged_in_client(ada)
    ada.is_active = False
    await database_sync_to_async(ada.save)()
    communicator = await open_socket(
        AuthMiddlewareStack(AccountConsumer.as_asgi()), cookie_header(client)
    )
    assert await ask(communicator, "whoami") == "<anonymous>"
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_password_change_elsewhere_logs_the_socket_out(ada: Any, site: Client) -> None:
    await database_sync_to_async(site.force_login)(ada)
    communicator = await open_socket(
        AuthMiddlewareStack(AccountConsumer.as_asgi()), cookie_header(site)
    )
    assert await ask(communicator, "whoami") == "ada"

    def change_password() -> None:
        user = User.objects.get(pk=ada.pk)
        user.set_password("difference-engine")
        user.save()

    await database_sync_to_async(change_password)()
    # The open socket still has its user until it checks again ...
    assert await ask(communicator, "whoami") == "ada"
    # ... and then it is anonymous, and the session is gone, as in Django.
    assert await ask(communicator, "recheck") == "<anonymous>"
    await communicator.disconnect()
    communicator = await open_socket(
        AuthMiddlewareStack(AccountConsumer.as_asgi()), cookie_header(site)
    )
    assert await ask(communicator, "whoami") == "<anonymous>"
    await communicator.disconnect()
    assert await whoami_over_http(site) == "<anonymous>"


@pytest.mark.asyncio
async def test_session_from_a_rotated_secret_key_is_kept_and_rehashed(
    ada: Any, settings: Any
) -> None:
    settings.SECRET_KEY = "the-old-secret-key-" + "x" * 40
    client = await logged_in_client(ada)
    old_key = client.cookies["sessionid"].value
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "the-new-secret-key-" + "y" * 40
    communicator = await open_socket(
        AuthMiddlewareStack(AccountConsumer.as_asgi()), cookie_header(client)
    )
    assert await ask(communicator, "whoami") == "ada"
    await communicator.disconnect()
    # Django moves the session to a new key when it re-hashes it; the
    # handshake response tells the browser.
    jar: SimpleCookie = SimpleCookie()
    for name, value in communicator.response_headers or []:
        if name == b"set-cookie":
            jar.load(value.decode())
    assert jar["sessionid"].value != old_key


# -- login ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_login_in_websocket_is_seen_by_next_http_request(
    ada: Any, site: Client, signals: list[Any]
) -> None:
    # The browser has an anonymous session from an earlier visit.
    def anonymous_visit() -> str:
        session = site.session
        session["cart"] = ["tea"]
        session.save()
        site.cookies["sessionid"] = session.session_key
        return str(session.session_key)

    planted_key = await database_sync_to_async(anonymous_visit)()
    communicator = await open_socket(
        AuthMiddlewareStack(AccountConsumer.as_asgi()), cookie_header(site)
    )
    assert await ask(communicator, "whoami") == "<anonymous>"
    new_key = await ask(communicator, "login ada")
    assert await ask(communicator, "whoami") == "ada"
    await communicator.disconnect()

    # The key was rotated: the key from before the login is worthless.
    assert new_key != planted_key
    assert await whoami_over_http(site) == "<anonymous>"

    def stored(key: str) -> dict[str, Any]:
        return dict(SessionStore(key).load())

    data = await database_sync_to_async(stored)(new_key)
    assert data[SESSION_KEY] == str(ada.pk)
    assert data[BACKEND_SESSION_KEY] == MODEL_BACKEND
    assert data[HASH_SESSION_KEY] == ada.get_session_auth_hash()
    assert data["cart"] == ["tea"]
    assert signals == [("in", None, ada)]

    # With the new key (handed to the page by the application), Django sees ada.
    site.cookies["sessionid"] = new_key
    assert await whoami_over_http(site) == "ada"


class LoginOnConnect(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        username = self.scope["query_string"].decode()
        user = await database_sync_to_async(User.objects.get)(username=username)
        await login(self.scope, user)
        await database_sync_to_async(self.scope["session"].save)()
        await self.accept()


@pytest.mark.asyncio
async def test_login_before_accept_sets_the_cookie_in_the_handshake(ada: Any, site: Client) -> None:
    communicator = WebsocketCommunicator(AuthMiddlewareStack(LoginOnConnect.as_asgi()), "/?ada")
    assert (await communicator.connect(timeout=TIMEOUT))[0] is True
    await communicator.disconnect()
    jar: SimpleCookie = SimpleCookie()
    for name, value in communicator.response_headers or []:
        if name == b"set-cookie":
            jar.load(value.decode())
    cookie = jar["sessionid"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    # The browser stores the cookie from the handshake response.
    site.cookies.load(jar.output(header="", sep=";").strip())
    assert await whoami_over_http(site) == "ada"


class SyncLoginOnConnect(WebsocketConsumer):
    def connect(self) -> None:
        user = User.objects.get(username=self.scope["query_string"].decode())
        async_to_sync(login)(self.scope, user)
        self.scope["session"].save()
        self.accept()
        self.send(text_data=describe(self.scope["user"]))


def take_session_cookie(site: Client, headers: Iterable[tuple[bytes, bytes]]) -> None:
    """Give *site* the session cookie that *headers* (a response's) set."""
    jar: SimpleCookie = SimpleCookie()
    for name, value in headers:
        if name == b"set-cookie":
            jar.load(value.decode())
    site.cookies["sessionid"] = jar["sessionid"].value


@pytest.mark.asyncio
async def test_login_from_sync_consumer_before_accept(ada: Any, site: Client) -> None:
    communicator = WebsocketCommunicator(AuthMiddlewareStack(SyncLoginOnConnect.as_asgi()), "/?ada")
    assert (await communicator.connect(timeout=TIMEOUT))[0] is True
    assert await communicator.receive_from(timeout=TIMEOUT) == "ada"
    await communicator.disconnect()
    take_session_cookie(site, communicator.response_headers or [])
    assert await whoami_over_http(site) == "ada"


@pytest.mark.asyncio
async def test_login_over_http_consumer_sets_cookie_for_django(ada: Any, site: Client) -> None:
    class LoginView(AsyncHttpConsumer):
        async def handle(self, body: bytes) -> None:
            user = await database_sync_to_async(User.objects.get)(username=body.decode())
            await login(self.scope, user)
            await self.send_response(200, b"welcome")

    communicator = HttpCommunicator(
        AuthMiddlewareStack(LoginView.as_asgi()), "POST", "/", body=b"ada"
    )
    response = await communicator.get_response(timeout=TIMEOUT)
    take_session_cookie(site, response["headers"])
    assert await whoami_over_http(site) == "ada"


@pytest.mark.asyncio
async def test_login_over_someone_elses_session_starts_afresh(ada: Any, grace: Any) -> None:
    client = await logged_in_client(grace)

    def add_private_data() -> None:
        session = client.session
        session["grace-private"] = 1
        session.save()

    await database_sync_to_async(add_private_data)()
    communicator = await open_socket(
        AuthMiddlewareStack(AccountConsumer.as_asgi()), cookie_header(client)
    )
    assert await ask(communicator, "whoami") == "grace"
    new_key = await ask(communicator, "login ada")
    await communicator.disconnect()
    data = await database_sync_to_async(lambda: dict(SessionStore(new_key).load()))()
    assert "grace-private" not in data
    assert data[SESSION_KEY] == str(ada.pk)


@pytest.mark.asyncio
async def test_logging_in_again_as_the_same_user_keeps_the_key(ada: Any) -> None:
    client = await logged_in_client(ada)
    key = client.cookies["sessionid"].value
    communicator = await open_socket(
        AuthMiddlewareStack(AccountConsumer.as_asgi()), cookie_header(client)
    )
    assert await ask(communicator, "login ada") == key
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_login_backend_choice(ada: Any, settings: Any) -> None:
    def scope() -> dict[str, Any]:
        return {"session": SessionStore()}

    other = "django.contrib.auth.backends.AllowAllUsersModelBackend"
    settings.AUTHENTICATION_BACKENDS = [MODEL_BACKEND, other]
    with pytest.raises(ValueError, match="several authentication backends"):
        await login(scope(), ada)

    given = scope()
    await login(given, ada, backend=other)
    assert given["session"][BACKEND_SESSION_KEY] == other
    assert given["user"] == ada

    ada.backend = other
    from_user = scope()
    await login(from_user, ada)
    assert from_user["session"][BACKEND_SESSION_KEY] == other
    del ada.backend

    with pytest.raises(TypeError, match="dotted import path"):
        await login(scope(), ada, backend=ModelBackend)  # type: ignore[arg-type]

    settings.AUTHENTICATION_BACKENDS = [MODEL_BACKEND]
    only = scope()
    await login(only, ada)
    assert only["session"][BACKEND_SESSION_KEY] == MODEL_BACKEND


@pytest.mark.asyncio
async def test_login_needs_a_real_user(ada: Any) -> None:
    with pytest.raises(ValueError, match="needs a user"):
        await login({"session": SessionStore()}, None)
    with pytest.raises(ValueError, match="anonymous"):
        await login({"session": SessionStore()}, AnonymousUser())
    # None means the user in the scope (AuthMiddleware's stand-in is unwrapped).
    scope = {"session": SessionStore(), "user": ada}
    await login(scope, None)
    assert scope["session"][SESSION_KEY] == str(ada.pk)
    lazy = UserLazyObject()
    lazy._wrapped = ada
    scope = {"session": SessionStore(), "user": lazy}
    await login(scope, None)
    assert type(scope["user"]) is User


# -- logout --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_logout_in_websocket(ada: Any, site: Client, signals: list[Any]) -> None:
    await database_sync_to_async(site.force_login)(ada)
    assert await whoami_over_http(site) == "ada"
    key = site.cookies["sessionid"].value
    signals.clear()  # (force_login sent user_logged_in)
    communicator = await open_socket(
        AuthMiddlewareStack(AccountConsumer.as_asgi()), cookie_header(site)
    )
    assert await ask(communicator, "logout") == "<anonymous>"
    assert await ask(communicator, "whoami") == "<anonymous>"
    await communicator.disconnect()
    assert signals == [("out", None, ada)]
    assert type(signals[0][2]) is User
    # The session is gone from the store, so the browser's cookie names nothing.
    assert await database_sync_to_async(lambda: SessionStore().exists(key))() is False
    assert await whoami_over_http(site) == "<anonymous>"


@pytest.mark.asyncio
async def test_logout_of_anonymous_user_sends_signal_with_no_user(signals: list[Any]) -> None:
    scope: dict[str, Any] = {"session": SessionStore(), "user": AnonymousUser()}
    await logout(scope)
    assert signals == [("out", None, None)]
    assert isinstance(scope["user"], AnonymousUser)


# -- bad input and isolation ---------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "cookie",
    [
        b"sessionid=0123456789abcdef0123456789abcdef",
        b"sessionid=" + b"z" * 50_000,
        b"sessionid=\xff\x00; sessionid",
        b'sessionid="\\000"; =; ;;',
        b"sessionid=' OR 1=1 --",
        b"sessionid=\xe2\x98\x83",
    ],
)
async def test_bad_session_cookies_give_anonymous_user(cookie: bytes) -> None:
    communicator = await open_socket(AuthMiddlewareStack(AccountConsumer.as_asgi()), cookie)
    assert await ask(communicator, "whoami") == "<anonymous>"
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_200_interleaved_connections_each_get_their_own_user() -> None:
    count = 200

    def make_users_and_sessions() -> list[str]:
        with transaction.atomic():
            users = User.objects.bulk_create(
                [User(username=f"user{number}", password="!") for number in range(count)]
            )
            keys = []
            for user in users:
                session = SessionStore()
                session[SESSION_KEY] = str(user.pk)
                session[BACKEND_SESSION_KEY] = MODEL_BACKEND
                session[HASH_SESSION_KEY] = user.get_session_auth_hash()
                session["number"] = int(user.username[4:])
                session.create()
                keys.append(str(session.session_key))
            return keys

    keys = await database_sync_to_async(make_users_and_sessions)()

    class WhoAmI(AsyncWebsocketConsumer):
        async def receive(
            self, text_data: str | None = None, bytes_data: bytes | None = None
        ) -> None:
            await asyncio.sleep(random.random() / 100)
            number = await database_sync_to_async(self.scope["session"].get)("number")
            await self.send(text_data=f"{describe(self.scope['user'])} {number}")

    app = AuthMiddlewareStack(WhoAmI.as_asgi())
    communicators = await asyncio.gather(
        *(open_socket(app, f"sessionid={key}".encode()) for key in keys)
    )
    order = list(range(count))
    random.shuffle(order)
    for number in order:
        await communicators[number].send_to(text_data="?")
    replies = await asyncio.gather(
        *(communicator.receive_from(timeout=TIMEOUT) for communicator in communicators)
    )
    await asyncio.gather(*(communicator.disconnect() for communicator in communicators))
    assert replies == [f"user{number} {number}" for number in range(count)]


# -- the documentation's custom middleware --------------------------------------------


@pytest.fixture
def docs_example(documented_code: Any) -> dict[str, Any]:
    return documented_code("token-auth-middleware-example", "authentication.rst")


class ReportUser(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=describe(self.scope["user"]))


async def user_seen_with(app: Any, query: str) -> str:
    communicator = WebsocketCommunicator(app, f"/ws/?{query}")
    assert (await communicator.connect(timeout=TIMEOUT))[0] is True
    reply = await communicator.receive_from(timeout=TIMEOUT)
    await communicator.disconnect()
    assert isinstance(reply, str)
    return reply


@pytest.mark.asyncio
async def test_documented_token_middleware(docs_example: dict[str, Any], ada: Any) -> None:
    middleware = docs_example["TokenAuthMiddleware"](ReportUser.as_asgi())
    token = docs_example["make_token"](ada)
    assert await user_seen_with(middleware, f"token={token}") == "ada"
    assert await user_seen_with(middleware, "") == "<anonymous>"
    assert await user_seen_with(middleware, "token=forged") == "<anonymous>"
    assert await user_seen_with(middleware, f"token={token}x") == "<anonymous>"

    # Expired tokens are refused.
    docs_example["TOKEN_MAX_AGE"] = -1
    assert await user_seen_with(middleware, f"token={token}") == "<anonymous>"
    docs_example["TOKEN_MAX_AGE"] = 60

    # So are inactive users.
    ada.is_active = False
    await database_sync_to_async(ada.save)()
    assert await user_seen_with(middleware, f"token={token}") == "<anonymous>"


@pytest.mark.asyncio
async def test_documented_token_middleware_leaves_server_scope_alone(
    docs_example: dict[str, Any], ada: Any
) -> None:
    seen: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["user"])

    token = docs_example["make_token"](ada)
    scope = {"type": "websocket", "path": "/", "query_string": f"token={token}".encode()}
    await docs_example["TokenAuthMiddleware"](app)(scope, None, None)
    assert "user" not in scope
    assert seen == [ada]


def test_session_stack_is_part_of_auth_stack() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    stack = AuthMiddlewareStack(app)
    assert isinstance(stack, CookieMiddleware)
    assert isinstance(stack.inner, SessionMiddleware)
    assert isinstance(stack.inner.inner, AuthMiddleware)
    assert stack.inner.inner.inner is app
    assert type(SessionMiddlewareStack(app).inner) is SessionMiddleware


@pytest.mark.asyncio
@pytest.mark.parametrize("scope_type", ["websocket", "http", "lifespan"])
async def test_the_middleware_return_what_the_application_returns(scope_type: str) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> tuple[str, bool]:
        return "inner result", "user" in scope

    scope = {"type": scope_type, "path": "/", "headers": [], "query_string": b""}
    # AuthMiddleware adds a user to every scope but lifespan ones.
    adds_user = scope_type != "lifespan"
    for middleware, user in (
        (AuthMiddlewareStack(app), adds_user),
        (SessionMiddlewareStack(app), False),
        (CookieMiddleware(app), False),
        (CookieMiddleware(SessionMiddleware(app)), False),
    ):
        result = await middleware(scope, None, None)  # type: ignore[arg-type]
        assert result == ("inner result", user)
