"""Consumers: ASGI applications written as one method per event type.

A consumer instance serves one connection (one scope). Each incoming event,
from the client or from the channel layer, is handed to the method named
after its ``type`` with ``.`` replaced by ``_``: ``websocket.receive`` goes
to ``websocket_receive``.

The lifecycle of an instance, with a channel layer configured::

    __call__ ─► new_channel() ─► start the layer reader ─┐
                                                        ▼
      ┌──────────── receive() from the client ◄──── main loop ────┐
      │                                                          │
      └─► dispatch (one handler at a time: whoever has the turn) ◄── layer reader
                                                        │
      StopConsumer / error / cancellation ─► stop the reader ─► return

Handlers never run concurrently: events from the client and from the layer
are dispatched one after the other. The instance owns every task it starts
and none outlives it.

Between two events the instance gives the event loop a turn, even when the
next event is already waiting and ``receive()`` would return it at once.
Channels reads every event through the loop, and code built on it relies on
what follows from that: a task that a handler schedules (``ensure_future``,
``create_task``) starts before the next event is handled, so a subscription
it sets up is in place for the client's next message. It also keeps one
instance with a backlog (or one that keeps sending events to itself) from
holding the loop while other connections wait. The turn costs one pass of
the loop per event (``bench/consumer.py`` measures it).

Once the client has gone, sends are dropped. A server that follows ASGI
www spec 2.4 raises an ``OSError`` (``ClientDisconnected`` and the like)
from ``send()`` on a closed connection; Daphne, which code written for
Channels is used to, ignores such a send. A handler that sends to a client
that has just left (typically a channel-layer event handler) is the common
case, and ending the instance there would skip the ``websocket.disconnect``
the server is about to deliver, and with it the consumer's clean-up (leaving
its groups, ``disconnect()``). So the first ``OSError`` from ``send`` is
logged at DEBUG and swallowed, every later send does nothing, and the
instance runs until the server's disconnect event stops it as usual.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from . import DEFAULT_CHANNEL_LAYER
from ._outbox import ThreadOutbox
from .db import database_sync_to_async
from .exceptions import StopConsumer
from .layers import get_channel_layer

if TYPE_CHECKING:
    from .asgi_types import ASGIApplication, Message, Receive, Scope, Send
    from .layers import BaseChannelLayer

__all__ = ["AsyncConsumer", "SyncConsumer", "get_handler_name"]

_T = TypeVar("_T")

logger = logging.getLogger(__name__)


def get_handler_name(message: Message) -> str:
    """The name of the method that handles *message*.

    Raises ``ValueError`` for a message with no string ``type`` or one whose
    handler name would start with an underscore: private methods are never
    reachable from an event, whoever sent it.
    """
    try:
        message_type = message["type"]
    except (KeyError, TypeError):
        raise ValueError(f"Incoming message has no 'type' key: {message!r}") from None
    if not isinstance(message_type, str):
        raise ValueError(f"Message type must be a str, not {type(message_type).__name__}")
    name = message_type.replace(".", "_")
    if name.startswith("_"):
        raise ValueError(
            f"Malformed message type {message_type!r}: a handler name may not start "
            "with an underscore"
        )
    return name


# Not asyncio.Lock: bench/consumer.py AsyncWebsocketConsumer echo rows, 1.07-1.12x msg/s, -41 B.
class _Turn:
    """Whose turn it is to run a handler: a lock for one consumer instance.

    Handlers of one instance never overlap, whether the event came from the
    client or the channel layer. The turn passes to waiters in the order they
    asked. ``asyncio.Lock`` would do the same, but an idle consumer is the
    common case and this costs two slots instead of a lock and a deque.
    """

    __slots__ = ("busy", "waiters")

    def __init__(self) -> None:
        self.busy = False
        self.waiters: list[asyncio.Future[None]] | None = None

    def try_acquire(self) -> bool:
        if self.busy:
            return False
        self.busy = True
        return True

    async def wait(self) -> None:
        """Wait until the turn is handed over (call only after try_acquire() failed)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.waiters is None:
            self.waiters = []
        self.waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed the turn, but cannot use it: pass it on
            elif waiter in self.waiters:
                self.waiters.remove(waiter)
            raise

    def release(self) -> None:
        waiters = self.waiters
        while waiters:
            waiter = waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)  # still busy: the turn is handed over
                return
        self.busy = False


class AsyncConsumer:
    """Base class of asynchronous consumers: every handler is a coroutine.

    Set :attr:`channel_layer_alias` to use a layer other than ``"default"``.
    With a layer configured, each instance has :attr:`channel_layer` and its
    own :attr:`channel_name`, and events sent to that channel (or to a group
    it joined) are dispatched like client events.
    """

    _sync: ClassVar[bool] = False
    #: The ``CHANNEL_LAYERS`` alias this consumer uses.
    channel_layer_alias: str = DEFAULT_CHANNEL_LAYER

    # Per-instance state that most instances never change stays on the class.
    _main_task: asyncio.Task[Any] | None = None
    _stop_reason: BaseException | None = None
    _stopping_main = False
    _tasks: list[asyncio.Task[None]] | None = None
    _layer_reader: asyncio.Task[None] | None = None
    _client_left = False

    scope: Scope
    channel_layer: BaseChannelLayer | None
    channel_name: str
    #: Receive the next event on :attr:`channel_name` from the channel layer.
    channel_receive: Callable[[], Awaitable[Message]]
    base_send: Any

    def __init__(self, *args: Any, **initkwargs: Any) -> None:
        if args:
            raise TypeError(
                f"{type(self).__qualname__}() takes keyword arguments only, got {args!r}"
            )
        for key, value in initkwargs.items():
            _require_class_attribute(type(self), key)
            setattr(self, key, value)

    @classmethod
    def as_asgi(cls, **initkwargs: Any) -> ASGIApplication:
        """An ASGI application that serves each scope with a new instance.

        Keyword arguments are passed to the constructor of every instance;
        the base constructor sets them as attributes, which must already
        exist on the class (as with Django's ``as_view()``).
        """
        if cls.__init__ is AsyncConsumer.__init__:
            for key in initkwargs:
                _require_class_attribute(cls, key)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            consumer = cls(**initkwargs)
            await consumer(scope, receive, send)

        app.consumer_class = cls  # type: ignore[attr-defined]
        app.consumer_initkwargs = initkwargs  # type: ignore[attr-defined]
        functools.update_wrapper(app, cls, updated=())
        return app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one connection until a handler raises ``StopConsumer``."""
        self.scope = scope
        self.base_send = ThreadOutbox(send, asyncio.get_running_loop()) if self._sync else send
        layer = self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self._main_task = asyncio.current_task()
        self._turn = _Turn()
        try:
            if layer is not None:
                self.channel_name = await layer.new_channel()
                self._layer_reader = asyncio.get_running_loop().create_task(
                    self._dispatch_layer_events(layer, self.channel_name)
                )
            # The client's events. The loop is written out here and in
            # _dispatch_layer_events rather than shared: a coroutine that
            # waits holds its frame, and an idle instance waits for ever
            # (bench/server.py idle rows: 224 bytes per frame).
            while True:
                await self._in_turn(self.dispatch, await receive())
                await asyncio.sleep(0)  # the loop's turn: see the module docstring
        except StopConsumer:
            pass
        except asyncio.CancelledError:
            reason = self._take_stop_reason()
            if reason is None:
                raise
            if not isinstance(reason, StopConsumer):
                raise reason from None
        finally:
            await self._stop_tasks()

    if not TYPE_CHECKING:  # type checkers see the annotation of channel_receive above

        def __getattr__(self, name: str) -> Any:
            # channel_receive is made on first use: the instance's own reader
            # does not need it, and an idle instance would hold it for nothing.
            if name == "channel_receive" and self.channel_layer is not None:
                receive = functools.partial(self.channel_layer.receive, self.channel_name)
                self.channel_receive = receive
                return receive
            raise AttributeError(
                f"{type(self).__qualname__!r} object has no attribute {name!r}", name=name, obj=self
            )

    async def _dispatch_layer_events(self, layer: BaseChannelLayer, channel: str) -> None:
        """The layer reader task: dispatch each event on *channel*, in turn with the client's.

        Owned like a :meth:`start_task` task: cancelled and awaited when the
        instance stops, and an exception from a handler stops the instance.
        It is started without :meth:`start_task`'s wrapper, list and callback,
        which an idle instance would hold for its whole life (bench/server.py
        ``idle-5000-redis``).
        """
        try:
            while True:
                # (layer.receive looked up per event: a bound method kept in
                # the frame would cost every idle instance 64 bytes.)
                await self._in_turn(self.dispatch, await layer.receive(channel))
                await asyncio.sleep(0)  # the loop's turn: see the module docstring
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the main task
            self._request_stop(exc)

    async def _in_turn(self, handler: Callable[[_T], Awaitable[None]], argument: _T) -> None:
        """Run ``handler(argument)`` when no other handler of this instance runs.

        Afterwards, carry out a stop that was asked for while it ran.
        """
        turn = self._turn
        if not turn.try_acquire():
            await turn.wait()
        try:
            await handler(argument)
        finally:
            turn.release()
        if self._stop_reason is not None:
            if asyncio.current_task() is self._main_task:
                reason, self._stop_reason = self._stop_reason, None
                raise reason
            self._cancel_main_task()

    def start_task(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run *coroutine* as a task that this instance owns.

        The task is cancelled and awaited when the instance stops. If it
        raises (``StopConsumer`` included), the instance stops with that
        exception once no handler is running, as if a handler had raised it.
        """
        task = asyncio.ensure_future(self._guard(coroutine))
        if self._tasks is None:
            self._tasks = []
        self._tasks.append(task)
        task.add_done_callback(functools.partial(self._task_done, coroutine))
        return task

    def _task_done(self, coroutine: Coroutine[Any, Any, None], task: asyncio.Task[None]) -> None:
        if self._tasks is not None and task in self._tasks:
            self._tasks.remove(task)
        # A task cancelled before its first step never ran _guard, which leaves
        # *coroutine* un-awaited (a RuntimeWarning when it is collected). Closing
        # it is a no-op once it has run.
        coroutine.close()

    async def _guard(self, coroutine: Coroutine[Any, Any, None]) -> None:
        try:
            await coroutine
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the main task
            self._request_stop(exc)

    def _request_stop(self, reason: BaseException) -> None:
        """Stop the instance with *reason*: now, or when the running handler returns.

        A handler is never cut off half-way; whoever holds the turn carries
        the stop out when it lets go (see :meth:`_in_turn`).
        """
        main = self._main_task
        if main is None or main.done() or self._stop_reason is not None:
            return
        self._stop_reason = reason
        if not self._turn.busy:
            self._cancel_main_task()

    def _cancel_main_task(self) -> None:
        if self._main_task is not None and not self._stopping_main:
            self._stopping_main = True
            self._main_task.cancel()

    def _take_stop_reason(self) -> BaseException | None:
        """After a CancelledError in the main task: the stop we asked for, if it was ours."""
        if not self._stopping_main:
            return None  # cancelled from outside (the server): let it propagate
        reason, self._stop_reason = self._stop_reason, None
        uncancel = getattr(self._main_task, "uncancel", None)
        # Python 3.11+: undo our own cancel(); if another remains, it wins.
        if uncancel is not None and uncancel() > 0:
            return None
        return reason

    async def _stop_tasks(self) -> None:
        # From here on a failing task no longer stops (cancels) the main task,
        # which is busy stopping them.
        self._main_task = None
        if isinstance(self.base_send, ThreadOutbox):
            self.base_send.cancel()
        tasks = list(self._tasks or ())
        reader = self._layer_reader
        if reader is not None:
            self._layer_reader = None
            tasks.append(reader)
        if tasks:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def dispatch(self, message: Message) -> None:
        """Call the handler for *message*'s type; ``ValueError`` if there is none."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(_no_handler(self, message))
        await handler(message)

    async def send(self, message: Message) -> None:
        """Send an event to the client (the ASGI ``send`` callable).

        Once the client has gone (the server's ``send`` raised an
        ``OSError``), the event is dropped instead, as are all later ones;
        the server's disconnect event then stops the instance as usual.
        Any other exception from the server is raised.
        """
        try:
            await self.base_send(message)
        except OSError as exc:
            # TimeoutError is an OSError too, but one raised around a send
            # (a deadline on a slow client) says nothing about the connection
            # being closed, and no disconnect event would follow.
            if isinstance(exc, TimeoutError):
                raise
            self._drop_sends(exc)

    def _drop_sends(self, error: OSError) -> None:
        """The client has gone (the server's ``send`` raised *error*): send nothing more.

        Called by :meth:`send`, or by a synchronous consumer once its outbox
        reports the error (the outbox drops later sends itself).
        """
        if self._client_left:
            return  # two sends were in flight (a handler and a task)
        self._client_left = True
        if not self._sync:
            self.base_send = _send_nothing
        logger.debug(
            "%s: the client has gone (%s: %s); this send and any later ones are dropped",
            type(self).__qualname__,
            type(error).__name__,
            error,
        )


class SyncConsumer(AsyncConsumer):
    """Base class of synchronous consumers: handlers are plain functions.

    Handlers run in a worker thread (the one Django's ORM uses from async
    code), with stale database connections closed before and after each
    one (by :func:`channels.db.close_old_connections`, which leaves a
    connection inside a transaction alone, such as a ``TestCase``'s), so
    they may block and may use the ORM directly. ``send()`` queues
    the event and returns at once, without waiting for the event loop; the
    loop sends queued events promptly and in order, and the next event is
    only dispatched once everything the handler sent has been sent (an
    error from the server's ``send`` is raised from the handler's dispatch,
    except an ``OSError`` saying the client has gone: then this and later
    events are dropped, as in :meth:`AsyncConsumer.send`).
    """

    _sync = True
    base_send: ThreadOutbox

    async def dispatch(self, message: Message) -> None:
        try:
            await self._dispatch_in_thread(message)
        finally:
            client_gone = await self.base_send.drain()
            if client_gone is not None:
                self._drop_sends(client_gone)

    @database_sync_to_async
    def _dispatch_in_thread(self, message: Message) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(_no_handler(self, message))
        handler(message)

    def send(self, message: Message) -> None:  # type: ignore[override]
        """Send an event to the client, from any thread."""
        self.base_send(message)


async def _send_nothing(message: Message) -> None:
    """The ``base_send`` of an instance whose client has gone."""
    # Still a turn of the loop, as a real send may be: a streaming loop that
    # only sends must not hold the loop, or the disconnect event that stops
    # it would never be read.
    await asyncio.sleep(0)


def _no_handler(consumer: AsyncConsumer, message: Message) -> str:
    return (
        f"No handler for message type {message['type']!r} on "
        f"{type(consumer).__qualname__}: define a method named "
        f"{get_handler_name(message)!r}"
    )


def _require_class_attribute(cls: type, key: str) -> None:
    if not hasattr(cls, key):
        raise TypeError(
            f"{cls.__qualname__}.as_asgi() got the keyword argument {key!r}, which is "
            f"not an attribute of {cls.__qualname__}: only existing attributes can be set"
        )
