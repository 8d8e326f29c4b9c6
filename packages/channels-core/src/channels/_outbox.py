"""Sending ASGI events from a synchronous handler's thread without blocking it.

A ``SyncConsumer`` handler runs in a worker thread, but the server's ``send``
is a coroutine on the event loop. ``async_to_sync`` would park the thread
until the loop has run each send — two thread switches per event sent.
Instead, :class:`ThreadOutbox` queues the event and wakes the loop once; a
single flushing task on the loop sends the queued events in order while the
handler goes on. After each handler the consumer awaits :meth:`drain`, so:

* events reach the server in the order the handler sent them, promptly
  (the loop is woken on the first one, not at the end of the handler);
* the next event is not dispatched, and the instance does not stop, until
  everything the handler sent has been sent;
* an exception raised by the server's ``send`` is raised from the handler's
  dispatch, as it would have been from the ``send()`` call; events queued
  after the failing one are dropped, as the handler would have stopped there;
* except an ``OSError`` (other than ``TimeoutError``): the server says the
  client has gone. That is not the handler's error: the queued events and
  every later one are dropped, and :meth:`drain` returns the ``OSError``
  (once) instead of raising it, for the consumer to log (see
  :mod:`channels.consumer`).
"""

from __future__ import annotations

import asyncio
import threading

from .asgi_types import Message, Send

__all__ = ["ThreadOutbox"]


class ThreadOutbox:
    """Events queued from any thread and sent, in order, by the event loop."""

    __slots__ = (
        "_closed",
        "_error",
        "_flusher",
        "_gone",
        "_lock",
        "_loop",
        "_pending",
        "_scheduled",
        "_send",
    )

    def __init__(self, send: Send, loop: asyncio.AbstractEventLoop) -> None:
        self._send = send
        self._loop = loop
        # A list, swapped out whole by the flusher: cheaper per idle consumer
        # than a deque, and events arrive one or two at a time.
        self._pending: list[Message] = []
        self._lock = threading.Lock()
        self._scheduled = False
        self._flusher: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._gone: OSError | None = None
        self._closed = False

    def __call__(self, message: Message) -> None:
        """Queue *message* for sending; callable from any thread."""
        with self._lock:
            if self._error is not None or self._closed:
                # A send already failed (the handler would have stopped there),
                # the client has gone, or the instance is gone and a handler
                # thread it could not stop is still running: nothing more
                # reaches the client.
                return
            self._pending.append(message)
            if self._scheduled:
                return
            self._scheduled = True
        self._loop.call_soon_threadsafe(self._start_flush)

    def _start_flush(self) -> None:
        if self._flusher is None:
            self._flusher = self._loop.create_task(self._flush())

    async def _flush(self) -> None:
        send = self._send
        try:
            while True:
                with self._lock:
                    batch, self._pending = self._pending, []
                    if not batch:
                        self._scheduled = False
                        return
                for message in batch:
                    try:
                        await send(message)
                    except OSError as exc:
                        # TimeoutError is an OSError too, but not one that
                        # says the connection is closed.
                        if isinstance(exc, TimeoutError):
                            self._stop(exc)
                        else:
                            self._stop(None)
                            self._gone = exc
                        return
                    except BaseException as exc:  # noqa: BLE001 - re-raised by drain()
                        self._stop(exc)
                        return
        finally:
            self._flusher = None

    def _stop(self, error: BaseException | None) -> None:
        """A send failed: drop what is queued and accept no more.

        *error* is raised by :meth:`drain`; ``None`` when the client has gone,
        which is no error (later sends are dropped at :meth:`__call__`).
        """
        with self._lock:
            self._pending = []
            self._scheduled = False
            if error is None:
                self._closed = True
            else:
                self._error = error

    async def drain(self) -> OSError | None:
        """Wait until every queued event is sent; raise what a send raised.

        If instead a send found the client gone, return the server's
        ``OSError``, the first time only; otherwise return ``None``.
        """
        while True:
            flusher = self._flusher
            if flusher is not None:
                await asyncio.shield(flusher)
                continue
            with self._lock:
                if not self._scheduled:
                    break
            # A flush was requested from the thread but has not started yet.
            await asyncio.sleep(0)
        error, self._error = self._error, None
        if error is not None:
            raise error
        gone, self._gone = self._gone, None
        return gone

    def cancel(self) -> None:
        """Drop what is queued and stop flushing (the instance is going away)."""
        with self._lock:
            self._pending = []
            self._closed = True
        if self._flusher is not None:
            self._flusher.cancel()

    def __repr__(self) -> str:
        return f"<ThreadOutbox pending={len(self._pending)}>"
