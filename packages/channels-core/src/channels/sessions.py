"""Cookies and Django sessions for HTTP and WebSocket connections.

* :class:`CookieMiddleware` parses the ``Cookie`` request header into
  ``scope["cookies"]`` and has the helpers that add ``Set-Cookie`` headers to
  a response message.
* :class:`SessionMiddleware` puts a Django session, chosen by the session
  cookie and built by ``SESSION_ENGINE``, in ``scope["session"]``. For HTTP it
  saves the session and sends the cookie with ``http.response.start``, with the
  same rules as Django's own ``SessionMiddleware``. WebSocket sessions are
  never saved for you.
* :class:`InstanceSessionWrapper` does that work for one connection; subclass
  it to find or save sessions another way. ``scope["session"]`` is a
  :class:`SessionLazyObject` (a Django ``LazyObject``) that it fills in.
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
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.http.cookie import parse_cookie
from django.utils import timezone
from django.utils.functional import LazyObject, empty
from django.utils.http import http_date

from .asgi_types import AnyASGIApplication, Message, Receive, Scope, Send
from .db import database_sync_to_async
from .middleware import BaseMiddleware

__all__ = [
    "MAX_SESSION_KEY_LENGTH",
    "CookieMiddleware",
    "InstanceSessionWrapper",
    "SessionLazyObject",
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


class SessionLazyObject(LazyObject):  # type: ignore[type-arg, unused-ignore]
    """``scope["session"]``: a stand-in for the connection's session store.

    :class:`InstanceSessionWrapper` puts an empty one in the scope and its
    :meth:`~InstanceSessionWrapper.resolve_session` fills it in by setting
    ``_wrapped`` to a ``SessionStore``; from then on it behaves like that
    store (``session["key"]``, ``session.save()``, ``isinstance(session,
    SessionBase)``). Using it before then raises ``ValueError``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "_wrapped":
            super().__setattr__(name, value)
            return
        state = self.__dict__
        if value is not empty and "_resolved_key" not in state:
            # Remember the key the session had when it was first resolved: a
            # key that differs when the WebSocket is accepted was changed by
            # the application (a login, a logout, another store put in), and
            # the browser must hear of it. Reading it does not touch the store.
            state["_resolved_key"] = getattr(value, "session_key", None)
        # Where LazyObject.__setattr__ keeps it too (going through it would
        # cost a second call on every connection).
        state["_wrapped"] = value

    def _setup(self) -> None:
        raise ValueError(
            "scope['session'] was used before the session was resolved: "
            "InstanceSessionWrapper.resolve_session() must set scope['session']._wrapped "
            "before the application runs"
        )

    @property
    def is_resolved(self) -> bool:
        """Whether a session store has been put in."""
        return self._wrapped is not empty  # type: ignore[attr-defined, unused-ignore]


class InstanceSessionWrapper:
    """The session of one connection, and the ``send`` that persists it.

    :class:`SessionMiddleware` makes one for every connection, so nothing
    about a session is shared between connections. Its life is::

        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        await inner(wrapper.scope, receive, wrapper.send)

    The constructor copies the scope into :attr:`scope` and puts an
    unresolved :class:`SessionLazyObject` in ``scope["session"]``;
    :meth:`resolve_session` fills it with the store named by the session
    cookie; :meth:`send` saves the session and sets its cookie on the
    response. Subclass it to find the session another way (override
    :meth:`resolve_session`) or to save it another way (override
    :meth:`save_session`), and set the subclass as
    :attr:`SessionMiddleware.wrapper_class`.

    When the scope already has a ``session`` (an outer session middleware
    made it) or is a lifespan scope, the wrapper is not :attr:`activated`:
    it adds nothing, resolves nothing and sends messages as they are.
    """

    #: Messages that save the session, if it was modified (or on every
    #: response with ``SESSION_SAVE_EVERY_REQUEST``), with the rules of
    #: Django's ``SessionMiddleware``. Of the messages named here or in
    #: :attr:`cookie_response_message_types`, only the first one a connection
    #: sends is handled (its response start, or its accept).
    save_message_types: ClassVar[list[str]] = ["http.response.start"]
    #: Messages whose headers get the session cookie: set when the session
    #: was saved, deleted when the client sent one and the session is now
    #: empty. On a message that does not save (``websocket.accept``), the
    #: cookie is set when the application changed the session key since it
    #: was resolved (a login or logout before accepting).
    cookie_response_message_types: ClassVar[list[str]] = [
        "http.response.start",
        "websocket.accept",
    ]

    def __init__(self, scope: Scope, send: Send) -> None:
        #: The session cookie's name (``SESSION_COOKIE_NAME``).
        self.cookie_name: str = settings.SESSION_COOKIE_NAME
        #: The ``SessionStore`` class of ``SESSION_ENGINE``.
        self.session_store: type[SessionBase] = import_module(settings.SESSION_ENGINE).SessionStore
        #: The ``send`` of the server (or of the middleware outside this one).
        self.real_send: Send = send
        #: The scope to give the inner application: a copy of the one passed in.
        self.scope: Scope = dict(scope)
        #: Whether this wrapper manages the session (see the class docstring).
        self.activated: bool
        if "session" in scope or _plain_passthrough(scope):
            self.activated = False
        else:
            if "cookies" not in scope:
                raise ValueError(
                    "SessionMiddleware found no 'cookies' in the scope: wrap it in "
                    "CookieMiddleware (SessionMiddlewareStack and AuthMiddlewareStack do this "
                    "for you)"
                )
            self.scope["session"] = SessionLazyObject()
            self.activated = True
        self._response_handled = False
        # What the base save_session() measured, for the cookie it sets next.
        self._saved_cookie_lifetime: tuple[int | None, str | None] | None = None

    async def resolve_session(self) -> None:
        """Put the session store into ``scope["session"]._wrapped``.

        The store is the ``SessionStore`` for the key in the session cookie,
        or a new, empty one when there is no cookie or its value cannot be a
        session key. Making it reads nothing: Django loads the data on first
        use. Override this to find the session another way; set
        ``self.scope["session"]._wrapped`` to a store.
        """
        if not self.activated:
            return
        sent = self.scope["cookies"].get(self.cookie_name)
        key = sent if _could_be_session_key(sent) else None
        self.scope["session"]._wrapped = self.session_store(key)

    async def send(self, message: Message) -> None:
        """Send *message*, first saving the session and adding its cookie if it is due."""
        if self.activated and not self._response_handled:
            message_type = message.get("type")
            if (
                message_type in self.save_message_types
                or message_type in self.cookie_response_message_types
            ):
                self._response_handled = True
                message = await self._finish_response(message)
        return await self.real_send(message)

    async def save_session(self) -> None:
        """Save the session, in a worker thread.

        Called by :meth:`send` when the session is due to be saved.

        :raises django.contrib.sessions.exceptions.SessionInterrupted: if the
            session was deleted from the store meanwhile (a logout in a
            concurrent request); saving it would bring it back.
        """
        self._saved_cookie_lifetime = await database_sync_to_async(self._save)()

    def _store(self) -> tuple[SessionBase, str | None] | None:
        """The resolved session store and its key when resolved, or ``None``."""
        session = self.scope.get("session")
        if isinstance(session, LazyObject):
            # One attribute lookup on the LazyObject instead of two.
            state = session.__dict__
            store = state.get("_wrapped", empty)
            if store is empty:
                return None
            resolved_key: str | None = state.get("_resolved_key")
            return store, resolved_key
        if session is None:
            return None
        # resolve_session() replaced the stand-in with a store of its own.
        sent = self.scope["cookies"].get(self.cookie_name)
        return session, sent if _could_be_session_key(sent) else None

    async def _finish_response(self, message: Message) -> Message:
        """Save the session and set or delete its cookie, as Django does for HTTP."""
        resolved = self._store()
        if resolved is None:
            return message
        store, resolved_key = resolved
        message_type = message.get("type")
        saves = message_type in self.save_message_types
        with_cookie = message_type in self.cookie_response_message_types
        # None of these read the session store.
        accessed, modified, empty = store.accessed, store.modified, store.is_empty()
        # The application's message is never changed: headers go on a copy
        # (set_cookie() and delete_cookie() put a new header list on it).
        response = dict(message)
        cookie_changed = False
        if with_cookie:
            if empty and self.cookie_name in self.scope["cookies"]:
                # The session was flushed (a logout) or named nothing: tell
                # the client to forget the cookie.
                CookieMiddleware.delete_cookie(
                    response,
                    self.cookie_name,
                    path=settings.SESSION_COOKIE_PATH,
                    domain=settings.SESSION_COOKIE_DOMAIN,
                    samesite=settings.SESSION_COOKIE_SAMESITE,
                )
                cookie_changed = True
            elif not saves:
                # WebSocket sessions are never saved for you. But when the
                # application changed the key before accepting (login() rotates
                # it and stores the session under the new key), the handshake
                # response is the only chance to update the browser's cookie
                # (the accept's headers, ASGI WebSocket spec 2.1).
                key = store.session_key
                if key is not None and key != resolved_key:
                    lifetime = await database_sync_to_async(_cookie_lifetime)(store)
                    self._set_session_cookie(response, store, *lifetime)
                    cookie_changed = True
        if saves and not empty and (modified or settings.SESSION_SAVE_EVERY_REQUEST):
            status = message.get("status", 200)
            # A server error must not persist half-made changes (Django skips
            # the save for every 5xx response too).
            if not (isinstance(status, int) and status >= 500):
                self._saved_cookie_lifetime = None
                await self.save_session()
                if with_cookie:
                    lifetime = self._saved_cookie_lifetime
                    if lifetime is None:
                        # An overriding save_session() did not measure it.
                        lifetime = await database_sync_to_async(_cookie_lifetime)(store)
                    self._set_session_cookie(response, store, *lifetime)
                    cookie_changed = True
        if message_type == "http.response.start" and (accessed or cookie_changed):
            if not cookie_changed:
                response["headers"] = list(message.get("headers") or ())
            _add_vary_cookie(response["headers"])
            return response
        return response if cookie_changed else message

    def _save(self) -> tuple[int | None, str | None]:
        """Save the session (in a worker thread); return the cookie's lifetime."""
        resolved = self._store()
        if resolved is None:
            raise ValueError(
                "save_session() was called before resolve_session() put a session in the scope"
            )
        store = resolved[0]
        lifetime = _cookie_lifetime(store)
        try:
            store.save()
        except UpdateError:
            raise SessionInterrupted(
                "The session was deleted before the response was sent; the user may "
                "have logged out in a concurrent request."
            ) from None
        return lifetime

    def _set_session_cookie(
        self, message: Message, store: SessionBase, max_age: int | None, expires: str | None
    ) -> None:
        CookieMiddleware.set_cookie(
            message,
            self.cookie_name,
            store.session_key or "",
            max_age=max_age,
            expires=expires,
            path=settings.SESSION_COOKIE_PATH,
            domain=settings.SESSION_COOKIE_DOMAIN,
            secure=bool(settings.SESSION_COOKIE_SECURE),
            httponly=bool(settings.SESSION_COOKIE_HTTPONLY),
            samesite=settings.SESSION_COOKIE_SAMESITE,
        )


def _cookie_lifetime(store: SessionBase) -> tuple[int | None, str | None]:
    """``Max-Age`` and ``Expires`` for the session cookie (may read the store)."""
    if store.get_expire_at_browser_close():
        return None, None
    max_age = store.get_expiry_age()
    return max_age, http_date(time.time() + max_age)


class SessionMiddleware(BaseMiddleware):
    """Puts the connection's Django session in ``scope["session"]``.

    Must be inside :class:`CookieMiddleware` (use
    :func:`SessionMiddlewareStack`). ``scope["session"]`` is a
    :class:`SessionLazyObject` wrapping the ``SessionStore`` of
    ``SESSION_ENGINE`` for the key in the ``SESSION_COOKIE_NAME`` cookie, or
    a new, empty one. Its data is read from the store the first time it is
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

    The work for each connection is done by an instance of
    :attr:`wrapper_class`. Wrapping this middleware around itself is
    harmless: the inner one finds ``scope["session"]`` and passes the
    connection through.
    """

    #: The :class:`InstanceSessionWrapper` (sub)class made for each connection.
    wrapper_class: ClassVar[type[InstanceSessionWrapper]] = InstanceSessionWrapper

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if "session" in scope or _plain_passthrough(scope):
            return await self.inner(scope, receive, send)
        wrapper = self.wrapper_class(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, wrapper.send)


def SessionMiddlewareStack(inner: AnyASGIApplication) -> CookieMiddleware:
    """``CookieMiddleware(SessionMiddleware(inner))``: sessions for *inner*."""
    return CookieMiddleware(SessionMiddleware(inner))
