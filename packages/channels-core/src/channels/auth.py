"""Django authentication for Channels: ``scope["user"]``, login and logout.

* :class:`AuthMiddleware` puts the user of the connection's session in
  ``scope["user"]`` before the application runs; :func:`AuthMiddlewareStack`
  adds the cookie and session middleware it needs.
* :func:`get_user`, :func:`login` and :func:`logout` are the coroutine
  counterparts of ``django.contrib.auth.get_user``, ``login`` and ``logout``,
  working on a scope instead of a request.

Everything that reads the database runs in a worker thread through
:func:`channels.db.database_sync_to_async`, never on the event loop. This
module can be imported before ``django.setup()``: the user models are only
looked up when a connection arrives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.utils.crypto import constant_time_compare
from django.utils.functional import LazyObject, empty
from django.utils.module_loading import import_string

from .db import database_sync_to_async
from .middleware import BaseMiddleware
from .sessions import CookieMiddleware, SessionMiddleware

if TYPE_CHECKING:
    from django.contrib.sessions.backends.base import SessionBase

    from .asgi_types import ASGIApplication, Receive, Scope, Send

__all__ = [
    "AuthMiddleware",
    "AuthMiddlewareStack",
    "UserLazyObject",
    "get_user",
    "login",
    "logout",
]


def _session_of(scope: Scope, caller: str) -> SessionBase:
    try:
        session: SessionBase = scope["session"]
    except KeyError:
        raise ValueError(
            f"{caller} cannot find a session in the scope: wrap the application in "
            "SessionMiddleware (SessionMiddlewareStack or AuthMiddlewareStack do this)"
        ) from None
    return session


def _anonymous_user() -> Any:
    # Imported here so that importing channels.auth needs no app registry.
    from django.contrib.auth.models import AnonymousUser

    return AnonymousUser()


def _verified(session: SessionBase, user: Any) -> bool:
    """Whether the session's auth hash still matches *user*'s password.

    As in Django, a hash made with a key in ``SECRET_KEY_FALLBACKS`` is
    accepted and replaced by one made with ``SECRET_KEY``, under a new session
    key. A session that does not verify is flushed.
    """
    stored = session.get(HASH_SESSION_KEY)
    current = user.get_session_auth_hash()
    if stored and constant_time_compare(stored, current):
        return True
    fallback_hashes = getattr(user, "get_session_auth_fallback_hash", None)
    if (
        stored
        and fallback_hashes is not None
        and any(constant_time_compare(stored, fallback) for fallback in fallback_hashes())
    ):
        session.cycle_key()
        session[HASH_SESSION_KEY] = current
        return True
    session.flush()
    return False


def _user_from_session(scope: Scope) -> Any:
    """The user the session is logged in as, or ``AnonymousUser`` (blocking)."""
    session = _session_of(scope, "get_user()")
    try:
        stored_id = session[SESSION_KEY]
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        return _anonymous_user()
    # A backend that has been removed from the settings vouches for no one.
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return _anonymous_user()
    try:
        user_id = _user_pk_from_session(stored_id)
    except ValidationError:
        # The primary key type changed since this session was made.
        return _anonymous_user()
    user = import_string(backend_path)().get_user(user_id)
    if user is None:
        return _anonymous_user()
    if hasattr(user, "get_session_auth_hash") and not _verified(session, user):
        return _anonymous_user()
    return user


async def get_user(scope: Scope) -> Any:
    """The user logged in to the scope's session, or an ``AnonymousUser``.

    Follows ``django.contrib.auth.get_user``: the user is loaded by the
    authentication backend recorded at login (which must still be in
    ``AUTHENTICATION_BACKENDS``), and a session whose auth hash no longer
    matches the user's password (it was changed elsewhere) is flushed and
    gives an anonymous user. Long-lived consumers can call this again to
    check that their user is still logged in.

    :raises ValueError: if the scope has no ``session``.
    """
    _session_of(scope, "get_user()")
    return await database_sync_to_async(_user_from_session)(scope)


def _login(scope: Scope, user: Any, backend: str | None) -> None:
    session = _session_of(scope, "login()")
    if user is None:
        user = scope.get("user")
    if user is None:
        raise ValueError("login() needs a user: pass one, or have one in scope['user']")
    if isinstance(user, UserLazyObject) and user.is_resolved:
        user = user._wrapped  # type: ignore[attr-defined, unused-ignore]
    if getattr(user, "is_anonymous", False):
        raise ValueError("login() cannot log in an anonymous user")
    session_auth_hash = (
        user.get_session_auth_hash() if hasattr(user, "get_session_auth_hash") else ""
    )
    if SESSION_KEY in session:
        try:
            same_user = _user_pk_from_session(session[SESSION_KEY]) == user.pk
        except ValidationError:
            same_user = False
        if not same_user or (
            session_auth_hash
            and not constant_time_compare(session.get(HASH_SESSION_KEY, ""), session_auth_hash)
        ):
            # Never reuse a session that belonged to someone else: start afresh.
            session.flush()
    else:
        # A new key, so that a key planted before login is worthless after it
        # (session fixation).
        session.cycle_key()
    session[SESSION_KEY] = user._meta.pk.value_to_string(user)
    session[BACKEND_SESSION_KEY] = _backend_path(user, backend)
    session[HASH_SESSION_KEY] = session_auth_hash
    scope["user"] = user
    user_logged_in.send(sender=user.__class__, request=None, user=user)


def _backend_path(user: Any, backend: str | None) -> str:
    """The dotted path of the backend to record: given, on the user, or the only one."""
    chosen = backend or getattr(user, "backend", None)
    if chosen is None:
        configured = list(settings.AUTHENTICATION_BACKENDS)
        if not configured:
            raise ImproperlyConfigured(
                "AUTHENTICATION_BACKENDS is empty: no backend can be recorded for login()"
            )
        if len(configured) > 1:
            raise ValueError(
                "You have several authentication backends configured: pass login() the "
                "'backend' argument or set the 'backend' attribute on the user"
            )
        chosen = configured[0]
    if not isinstance(chosen, str):
        raise TypeError(f"backend must be a dotted import path string, not {chosen!r}")
    return chosen


async def login(scope: Scope, user: Any, backend: str | None = None) -> None:
    """Log *user* in to the scope's session, as ``django.contrib.auth.login`` does.

    The session key is rotated (or the session flushed when it belonged to
    another user), the user's id, the authentication backend and the session
    auth hash are stored in the session, ``scope["user"]`` becomes *user* and
    ``user_logged_in`` is sent (with ``request=None``).

    The session is **not saved**: in a WebSocket consumer, or after an HTTP
    response has started, call ``scope["session"].save()`` yourself (from
    synchronous code, for example
    ``await database_sync_to_async(scope["session"].save)()``).

    :param user: the user; ``None`` means ``scope["user"]``.
    :param backend: the dotted path of the backend to record; defaults to
        ``user.backend`` (set by ``authenticate()``), or the only configured one.
    :raises ValueError: if the scope has no session, there is no user, or
        several backends are configured and none was given.
    """
    _session_of(scope, "login()")
    await database_sync_to_async(_login)(scope, user, backend)


def _logout(scope: Scope) -> None:
    session = _session_of(scope, "logout()")
    user = scope.get("user")
    if isinstance(user, UserLazyObject) and user.is_resolved:
        # Receivers get the user itself, not AuthMiddleware's stand-in.
        user = user._wrapped  # type: ignore[attr-defined, unused-ignore]
    if not getattr(user, "is_authenticated", True):
        user = None
    user_logged_out.send(sender=user.__class__, request=None, user=user)
    session.flush()
    scope["user"] = _anonymous_user()


async def logout(scope: Scope) -> None:
    """Log the scope's user out, as ``django.contrib.auth.logout`` does.

    Sends ``user_logged_out`` (with ``request=None``), flushes the session
    (its data is deleted from the store and it gets a new key when next
    saved) and sets ``scope["user"]`` to an ``AnonymousUser``.

    :raises ValueError: if the scope has no session.
    """
    _session_of(scope, "logout()")
    await database_sync_to_async(_logout)(scope)


def _user_pk_from_session(value: Any) -> Any:
    """The user model's primary key for a value stored in a session, as Django reads it."""
    # Through Any: the Django 4.2 stubs type ``_meta.pk`` as optional, later
    # ones do not; both must type-check (nox -s typecheck_oldest).
    meta: Any = get_user_model()._meta
    return meta.pk.to_python(value)


class UserLazyObject(LazyObject):  # type: ignore[type-arg, unused-ignore]
    """``scope["user"]``: a stand-in for the user, filled in by :class:`AuthMiddleware`.

    It behaves like the user it wraps. Middleware that resolve users their
    own way may set ``scope["user"]._wrapped`` in ``resolve_scope()``.
    """

    def _setup(self) -> None:
        raise ValueError(
            "scope['user'] was used before AuthMiddleware resolved it; resolve it in "
            "resolve_scope() before the application runs"
        )

    @property
    def is_resolved(self) -> bool:
        """Whether a user (or ``AnonymousUser``) has been put in."""
        return self._wrapped is not empty  # type: ignore[attr-defined, unused-ignore]


class AuthMiddleware(BaseMiddleware):
    """Puts the session's user in ``scope["user"]`` before the application runs.

    Needs ``scope["session"]`` (wrap it in :class:`~channels.sessions.SessionMiddleware`,
    or use :func:`AuthMiddlewareStack`); raises ``ValueError`` otherwise. The
    user is looked up with :func:`get_user` in a worker thread, so the event
    loop is not blocked. No session cookie, or a session that is unknown,
    expired, forged or invalidated by a password change, gives an
    ``AnonymousUser``.

    A user already in the scope (from an outer ``AuthMiddleware`` or your own
    middleware) is kept. Subclasses can override :meth:`populate_scope` and
    :meth:`resolve_scope`.
    """

    def populate_scope(self, scope: Scope) -> None:
        """Check the scope has a session, and add an unresolved ``user``."""
        if "session" not in scope:
            raise ValueError(
                "AuthMiddleware cannot find a session in the scope: it must be wrapped by "
                "SessionMiddleware (use AuthMiddlewareStack, which adds it)"
            )
        if "user" not in scope:
            scope["user"] = UserLazyObject()

    async def resolve_scope(self, scope: Scope) -> None:
        """Load the session's user into ``scope["user"]`` if nobody did yet."""
        user = scope["user"]
        if isinstance(user, UserLazyObject) and not user.is_resolved:
            user._wrapped = await get_user(scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if scope.get("type") == "lifespan":
            return await self.inner(scope, receive, send)
        scope = dict(scope)
        self.populate_scope(scope)
        await self.resolve_scope(scope)
        return await self.inner(scope, receive, send)


def AuthMiddlewareStack(inner: ASGIApplication) -> CookieMiddleware:
    """``CookieMiddleware(SessionMiddleware(AuthMiddleware(inner)))``: sessions and users."""
    return CookieMiddleware(SessionMiddleware(AuthMiddleware(inner)))
