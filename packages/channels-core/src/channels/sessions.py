"""Cookies and Django sessions for HTTP and WebSocket connections.

* :class:`CookieMiddleware` parses the ``Cookie`` request header into
  ``scope["cookies"]`` and has the helpers that add ``Set-Cookie`` headers to
  a response message.
* :class:`SessionMiddleware` puts a Django session, chosen by the session
  cookie and built by ``SESSION_ENGINE``, in ``scope["session"]``. For HTTP it
  saves the session and sends the cookie with ``http.response.start``, with the
  same rules as Django's own ``SessionMiddleware``. WebSocket sessions are
  never saved for you.
* :func:`SessionMiddlewareStack` is both, in the order they need.

Every connection gets a session object of its own. Nothing about a session
is kept on the middleware instance, which one application serves to every
connection: keeping it there is how CVE-2020-35681 leaked session
identifiers between concurrent requests.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.http.cookie import parse_cookie
from django.utils import timezone
from django.utils.http import http_date

from .asgi_types import ASGIApplication, Message, Receive, Scope, Send
from .db import database_sync_to_async
from .middleware import BaseMiddleware

__all__ = [
    "MAX_SESSION_KEY_LENGTH",
    "CookieMiddleware",
    "SessionMiddleware",
    "SessionMiddlewareStack",
]

#: The longest session cookie value handed to the session store; a longer
#: one is ignored, as if there were no session cookie. RFC 6265 section 6.1
#: has user agents keep at least 4096 bytes per cookie and Django's session
#: keys (signed_cookies ones, which hold the session data, included) fit in
#: one, so a longer value is not a key Django issued.
MAX_SESSION_KEY_LENGTH = 4096

# What a session key can hold: Django's keys are lower-case letters and
# digits, signed_cookies keys are URL-safe base64 and colons. Anything else
# (spaces, control characters such as NUL, which PostgreSQL refuses in a
# query, or non-ASCII) cannot be one and never reaches the session backend.
_SESSION_KEY = re.compile(r"[\x21-\x7e]+\Z")

# RFC 6265 section 4.1.1: a cookie name is an RFC 2616 token.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_SAMESITE_VALUES = frozenset({"lax", "strict", "none"})
# What browsers need to forget a cookie at once: an expiry in the past.
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"


def _cookie_header(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """All ``Cookie`` header lines of a request, as one string.

    HTTP/2 lets a client split the cookies over several ``cookie`` fields,
    which are joined with ``"; "`` (RFC 9113 section 8.2.3). Header bytes are
    decoded as latin-1, which cannot fail: a cookie with bytes that are not
    ASCII is kept (garbled) instead of crashing the connection.
    """
    return "; ".join(
        bytes(value).decode("latin-1")
        for name, value in headers
        if bytes(name).lower() == b"cookie"
    )


def _could_be_session_key(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= MAX_SESSION_KEY_LENGTH
        and _SESSION_KEY.match(value) is not None
    )


def _plain_passthrough(scope: Scope) -> bool:
    """Whether *scope* has no HTTP request to take cookies, a session or a user from.

    The lifespan protocol has no client; letting it through untouched lets
    these middleware wrap a whole ``ProtocolTypeRouter``.
    """
    return scope.get("type") == "lifespan"


class CookieMiddleware(BaseMiddleware):
    """Parses the request's ``Cookie`` header into ``scope["cookies"]``.

    ``scope["cookies"]`` is a ``dict`` of cookie names to values (``str``),
    read the way Django reads ``request.COOKIES``. A malformed header gives
    whatever cookies can be made out of it, never an error.

    The scope needs ``headers``, so this works for HTTP and WebSocket
    connections; lifespan scopes are passed through untouched and any other
    scope without headers raises ``ValueError``. If an outer
    ``CookieMiddleware`` already parsed the cookies, they are left as they are.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if "cookies" in scope or _plain_passthrough(scope):
            return await self.inner(scope, receive, send)
        headers = scope.get("headers")
        if headers is None:
            raise ValueError(
                f"CookieMiddleware got a {scope.get('type')!r} scope with no 'headers' key: "
                "use it (and SessionMiddleware, AuthMiddleware) only for HTTP and WebSocket "
                "connections"
            )
        cookies = parse_cookie(_cookie_header(headers))
        return await self.inner(dict(scope, cookies=cookies), receive, send)

    @classmethod
    def set_cookie(
        cls,
        message: Message,
        key: str,
        value: str = "",
        max_age: int | float | datetime.timedelta | None = None,
        expires: str | datetime.datetime | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: str | None = "lax",
    ) -> None:
        """Add a ``Set-Cookie`` header to the response *message*.

        *message* is an ``http.response.start`` (or ``websocket.accept``)
        message; its ``headers`` are replaced by a list with the new header
        at the end.

        :param max_age: seconds (or a ``timedelta``) until the cookie expires.
            An ``Expires`` attribute with the same moment is added for
            clients that do not know ``Max-Age``.
        :param expires: an HTTP date string, or a ``datetime`` (naive ones are
            taken as UTC), which is turned into ``max_age``.
        :param path: the ``Path`` attribute, or ``None`` for none.
        :param domain: the ``Domain`` attribute, or ``None`` for none.
        :param secure: add ``Secure``.
        :param httponly: add ``HttpOnly``.
        :param samesite: ``"lax"``, ``"strict"`` or ``"none"`` (any case), or a
            false value for no ``SameSite`` attribute.
        :raises ValueError: for a name that is not a cookie token, an unknown
            ``samesite``, a ``datetime`` *expires* together with *max_age*, or
            a value that cannot be sent in a header.
        """
        if not isinstance(key, str) or not _COOKIE_NAME.match(key):
            raise ValueError(
                f"Cookie name {key!r} is not valid: it must be a non-empty token of ASCII "
                "letters, digits and !#$%&'*+-.^_`|~ (RFC 6265 section 4.1.1)"
            )
        if samesite and samesite.lower() not in _SAMESITE_VALUES:
            raise ValueError(f'samesite must be "lax", "strict" or "none", not {samesite!r}')
        if isinstance(expires, datetime.datetime):
            if max_age is not None:
                raise ValueError("set_cookie() takes a datetime 'expires' or 'max_age', not both")
            if timezone.is_naive(expires):
                expires = timezone.make_aware(expires, datetime.timezone.utc)
            remaining = expires - datetime.datetime.now(tz=datetime.timezone.utc)
            # Round up: a fraction of a second is lost between now() and the
            # client reading the header, and the cookie should not end early.
            max_age = max(0, int(remaining.total_seconds() + 1))
            expires = None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar[key] = value
        except CookieError as exc:
            raise ValueError(f"Cookie name {key!r} is not valid: {exc}") from None
        morsel = jar[key]
        if max_age is not None:
            seconds = (
                max_age.total_seconds() if isinstance(max_age, datetime.timedelta) else max_age
            )
            morsel["max-age"] = str(int(seconds))
            if expires is None:
                expires = http_date(time.time() + seconds)
        if expires is not None:
            morsel["expires"] = expires
        if path is not None:
            morsel["path"] = path
        if domain is not None:
            morsel["domain"] = domain
        if secure:
            morsel["secure"] = True
        if httponly:
            morsel["httponly"] = True
        if samesite:
            morsel["samesite"] = samesite
        try:
            header = morsel.OutputString().encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(
                f"Cookie {key!r} has characters that cannot be sent in an HTTP header; "
                "encode the value (for example with urllib.parse.quote) first"
            ) from None
        message["headers"] = [*(message.get("headers") or ()), (b"set-cookie", header)]

    @classmethod
    def delete_cookie(
        cls,
        message: Message,
        key: str,
        path: str | None = "/",
        domain: str | None = None,
        samesite: str | None = "lax",
    ) -> None:
        """Add a ``Set-Cookie`` header to *message* that deletes cookie *key*.

        *path* and *domain* must be those the cookie was set with. The
        ``Secure`` attribute is added where browsers insist on it: for
        ``__Secure-`` and ``__Host-`` cookies and for ``SameSite=None``.
        """
        secure = key.startswith(("__Secure-", "__Host-")) or (
            bool(samesite) and str(samesite).lower() == "none"
        )
        cls.set_cookie(
            message,
            key,
            max_age=0,
            expires=_EPOCH,
            path=path,
            domain=domain,
            secure=secure,
            samesite=samesite,
        )


def _add_vary_cookie(headers: list[tuple[bytes, bytes]]) -> None:
    """Add ``Cookie`` to the response's ``Vary`` unless it is already covered.

    A response that depends on the session must not be served from a shared
    cache to someone else (RFC 9110 section 12.5.5); Django's
    ``SessionMiddleware`` does the same.
    """
    for name, value in headers:
        if bytes(name).lower() != b"vary":
            continue
        fields = {field.strip().lower() for field in bytes(value).split(b",")}
        if b"*" in fields or b"cookie" in fields:
            return
    headers.append((b"vary", b"Cookie"))


class _ConnectionSession:
    """The session of one connection, and the ``send`` that persists it.

    One is made for every scope, so nothing is shared between connections.
    """

    def __init__(
        self,
        scope: Scope,
        send: Send,
        store_class: type[SessionBase],
        cookie_name: str,
        response_message_types: Iterable[str],
    ) -> None:
        cookies = scope["cookies"]
        sent = cookies.get(cookie_name)
        self.cookie_name = cookie_name
        #: Whether the client sent a session cookie at all (even a useless one).
        self.had_cookie = cookie_name in cookies
        #: The key the client's cookie names, if it can be one.
        self.sent_key: str | None = sent if _could_be_session_key(sent) else None
        # Building a store reads nothing: Django loads the data on first use.
        self.session = store_class(self.sent_key)
        self.scope: Scope = dict(scope, session=self.session)
        self.kind = scope.get("type")
        self.response_message_types = frozenset(response_message_types)
        self._send = send
        self._response_started = False
        self._accepted = False

    async def send(self, message: Message) -> None:
        message_type = message.get("type")
        if (
            self.kind == "http"
            and message_type in self.response_message_types
            and not self._response_started
        ):
            self._response_started = True
            message = await self._finish_http_response(message)
        elif self.kind == "websocket" and message_type == "websocket.accept" and not self._accepted:
            self._accepted = True
            message = await self._finish_websocket_accept(message)
        await self._send(message)

    async def _finish_http_response(self, message: Message) -> Message:
        """Save the session and set or delete its cookie, as Django does for HTTP."""
        session = self.session
        # None of these read the session store.
        accessed, modified, empty = session.accessed, session.modified, session.is_empty()
        headers: list[tuple[bytes, bytes]] = list(message.get("headers") or ())
        response: Message = dict(message, headers=headers)
        if self.had_cookie and empty:
            # The session was flushed (a logout) or named nothing: tell the
            # client to forget the cookie.
            CookieMiddleware.delete_cookie(
                response,
                self.cookie_name,
                path=settings.SESSION_COOKIE_PATH,
                domain=settings.SESSION_COOKIE_DOMAIN,
                samesite=settings.SESSION_COOKIE_SAMESITE,
            )
            vary = True
        else:
            vary = accessed
            if (modified or settings.SESSION_SAVE_EVERY_REQUEST) and not empty:
                status = message.get("status", 200)
                # A server error must not persist half-made changes (Django
                # skips the save for every 5xx response too).
                if not (isinstance(status, int) and status >= 500):
                    max_age, expires = await database_sync_to_async(self._save)()
                    self._set_session_cookie(response, max_age, expires)
                    vary = True
        if vary:
            # set_cookie() replaced the list: add to the one now in the message.
            _add_vary_cookie(response["headers"])
        return response

    def _save(self) -> tuple[int | None, str | None]:
        """Save the session (in a worker thread); return the cookie's lifetime."""
        session = self.session
        max_age, expires = self._cookie_lifetime()
        try:
            session.save()
        except UpdateError:
            raise SessionInterrupted(
                "The session was deleted before the response was sent; the user may "
                "have logged out in a concurrent request."
            ) from None
        return max_age, expires

    def _cookie_lifetime(self) -> tuple[int | None, str | None]:
        """``Max-Age`` and ``Expires`` for the session cookie (may read the store)."""
        session = self.session
        if session.get_expire_at_browser_close():
            return None, None
        max_age = session.get_expiry_age()
        return max_age, http_date(time.time() + max_age)

    def _set_session_cookie(
        self, message: Message, max_age: int | None, expires: str | None
    ) -> None:
        CookieMiddleware.set_cookie(
            message,
            self.cookie_name,
            self.session.session_key or "",
            max_age=max_age,
            expires=expires,
            path=settings.SESSION_COOKIE_PATH,
            domain=settings.SESSION_COOKIE_DOMAIN,
            secure=bool(settings.SESSION_COOKIE_SECURE),
            httponly=bool(settings.SESSION_COOKIE_HTTPONLY),
            samesite=settings.SESSION_COOKIE_SAMESITE,
        )

    async def _finish_websocket_accept(self, message: Message) -> Message:
        """Tell the client about a session key that changed before the accept.

        WebSocket sessions are never saved for you. But when the application
        has already changed the session key by the time it accepts (a
        ``login()`` in ``connect()`` rotates it and stores the session under the
        new key; a ``logout()`` flushes it), the handshake response is the only
        chance to update the browser's cookie, so the ``Set-Cookie`` goes on
        the ``websocket.accept`` (its ``headers`` key, ASGI WebSocket spec 2.1).
        """
        session = self.session
        key = session.session_key
        if key is not None and key != self.sent_key:
            max_age, expires = await database_sync_to_async(self._cookie_lifetime)()
            accept: Message = dict(message, headers=list(message.get("headers") or ()))
            self._set_session_cookie(accept, max_age, expires)
            return accept
        if key is None and self.had_cookie and session.is_empty():
            accept = dict(message, headers=list(message.get("headers") or ()))
            CookieMiddleware.delete_cookie(
                accept,
                self.cookie_name,
                path=settings.SESSION_COOKIE_PATH,
                domain=settings.SESSION_COOKIE_DOMAIN,
                samesite=settings.SESSION_COOKIE_SAMESITE,
            )
            return accept
        return message


class SessionMiddleware(BaseMiddleware):
    """Puts the connection's Django session in ``scope["session"]``.

    Must be inside :class:`CookieMiddleware` (use
    :func:`SessionMiddlewareStack`). The session is the ``SessionStore`` of
    ``SESSION_ENGINE`` for the key in the ``SESSION_COOKIE_NAME`` cookie, or a
    new, empty one. Its data is read from the store the first time it is
    used, so a connection that never touches its session costs no query.
    Reading it touches the store synchronously, like in Django: do it from
    synchronous code (a ``SyncConsumer``, or ``database_sync_to_async``), or
    with the session's ``a*`` methods on Django 5.1 and later.

    HTTP: when the application sends ``http.response.start``, the session is
    saved and its cookie set if it was modified (or on every response with
    ``SESSION_SAVE_EVERY_REQUEST``), unless the status is 500 or above; an
    emptied session has its cookie deleted; the response varies on
    ``Cookie`` when the session was used. The save runs in a worker thread.
    Every ``SESSION_COOKIE_*`` setting applies.

    WebSocket: the session is never saved automatically; call
    ``scope["session"].save()`` (from synchronous code) when you want changes
    kept. If the session key changed before the socket was accepted (a
    login or logout in ``connect()``), the cookie is updated in the handshake
    response.

    Wrapping this middleware around itself is harmless: the inner one finds
    ``scope["session"]`` and passes the connection through.
    """

    #: The messages whose headers get the session cookie (HTTP).
    cookie_response_message_types: tuple[str, ...] = ("http.response.start",)

    @property
    def cookie_name(self) -> str:
        """The session cookie's name (``SESSION_COOKIE_NAME``)."""
        name: str = settings.SESSION_COOKIE_NAME
        return name

    @property
    def session_store(self) -> type[SessionBase]:
        """The ``SessionStore`` class of ``SESSION_ENGINE``."""
        store: type[SessionBase] = import_module(settings.SESSION_ENGINE).SessionStore
        return store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if "session" in scope or _plain_passthrough(scope):
            return await self.inner(scope, receive, send)
        if "cookies" not in scope:
            raise ValueError(
                "SessionMiddleware found no 'cookies' in the scope: wrap it in CookieMiddleware "
                "(SessionMiddlewareStack and AuthMiddlewareStack do this for you)"
            )
        connection = _ConnectionSession(
            scope, send, self.session_store, self.cookie_name, self.cookie_response_message_types
        )
        return await self.inner(connection.scope, receive, connection.send)


def SessionMiddlewareStack(inner: ASGIApplication) -> CookieMiddleware:
    """``CookieMiddleware(SessionMiddleware(inner))``: sessions for *inner*."""
    return CookieMiddleware(SessionMiddleware(inner))
