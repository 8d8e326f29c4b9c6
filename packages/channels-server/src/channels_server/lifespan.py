"""The ASGI lifespan protocol (the ASGI "Lifespan Protocol" specification).

The server runs the application once with a ``lifespan`` scope in the same
event loop as the connections: ``lifespan.startup`` before it accepts any,
``lifespan.shutdown`` after the last one has closed. The scope's ``state``
dict is the namespace every connection scope gets a shallow copy of.

With ``--lifespan auto`` (the default) an application that raises before
answering ``lifespan.startup`` is taken not to support the protocol, as the
specification asks, and the server carries on; Channels' ``ProtocolTypeRouter``
without a ``"lifespan"`` entry is such an application. With ``--lifespan on``
the same is a failure and the server does not start.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Literal

from .asgi.scope import ASGI_VERSION
from .errors import ApplicationError, LifespanFailure

if TYPE_CHECKING:
    from channels.asgi_types import ASGIApplication, Message

__all__ = ["Lifespan"]

logger = logging.getLogger("channels_server")


class Lifespan:
    """Runs the lifespan protocol for one server.

    :param application: the ASGI application.
    :param mode: ``"on"``, ``"off"`` or ``"auto"``.
    :param state: the namespace shared with connection scopes.
    """

    def __init__(
        self,
        application: ASGIApplication,
        mode: Literal["on", "off", "auto"],
        state: dict[str, Any],
    ) -> None:
        self.application = application
        self.mode = mode
        self.state = state
        #: Whether the application takes part in the lifespan protocol.
        self.supported = False
        self._task: asyncio.Task[None] | None = None
        self._startup_done: asyncio.Future[str | None] | None = None
        self._shutdown_done: asyncio.Future[str | None] | None = None
        self._shutdown_requested: asyncio.Event | None = None
        self._startup_sent = False
        self._error: BaseException | None = None

    async def startup(self) -> None:
        """Send ``lifespan.startup`` and wait for the answer.

        Raises :class:`~channels_server.errors.LifespanFailure` when the
        application reports failure (or raises, with ``mode="on"``).
        """
        if self.mode == "off":
            return
        loop = asyncio.get_running_loop()
        startup_done: asyncio.Future[str | None] = loop.create_future()
        self._startup_done = startup_done
        self._shutdown_done = loop.create_future()
        self._shutdown_requested = asyncio.Event()
        task = self._task = loop.create_task(self._run())
        waiting: list[asyncio.Future[Any]] = [startup_done, task]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if startup_done.done():
            failure = startup_done.result()
            if failure is not None:
                raise LifespanFailure(f"Application startup failed: {failure}")
            self.supported = True
            return
        # The application ended without answering lifespan.startup.
        error = self._error
        if self.mode == "on":
            raise LifespanFailure(
                "Application did not complete lifespan startup"
                + (f": {error!r}" if error is not None else "")
            )
        if error is not None:
            logger.info(
                "The application does not support the ASGI lifespan protocol (%r); continuing",
                error,
            )

    async def shutdown(self, timeout: float | None = None) -> None:
        """Send ``lifespan.shutdown`` and wait (up to *timeout*) for the answer."""
        task, requested, finished = self._task, self._shutdown_requested, self._shutdown_done
        if task is None or requested is None or finished is None or not self.supported:
            return
        requested.set()
        waiting: list[asyncio.Future[Any]] = [finished, task]
        done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            logger.warning("Application did not complete lifespan shutdown in %ss", timeout)
        elif finished.done():
            failure = finished.result()
            if failure is not None:
                logger.error("Application shutdown failed: %s", failure)
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": ASGI_VERSION, "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.application(scope, self._receive, self._send)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reported through startup() and shutdown()
            self._error = exc
            if self.supported or (self._startup_sent and self.mode == "on"):
                logger.exception("Exception in lifespan protocol")
        finally:
            # An application that fails after startup cannot answer shutdown.
            finished = self._shutdown_done
            if self.supported and self._error is not None and finished and not finished.done():
                finished.set_result(repr(self._error))

    async def _receive(self) -> Message:
        if not self._startup_sent:
            self._startup_sent = True
            return {"type": "lifespan.startup"}
        requested = self._shutdown_requested
        if requested is None:  # pragma: no cover - _run() only starts after startup() made it
            raise ApplicationError("The lifespan is not running")
        await requested.wait()
        return {"type": "lifespan.shutdown"}

    async def _send(self, message: Message) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        startup, shutdown = self._startup_done, self._shutdown_done
        if startup is None or shutdown is None:  # pragma: no cover - as for _receive()
            raise ApplicationError("The lifespan is not running")
        if kind == "lifespan.startup.complete" and not startup.done():
            startup.set_result(None)
        elif kind == "lifespan.startup.failed" and not startup.done():
            startup.set_result(str(message.get("message", "")) or "(no message)")
        elif kind == "lifespan.shutdown.complete" and startup.done() and not shutdown.done():
            shutdown.set_result(None)
        elif kind == "lifespan.shutdown.failed" and startup.done() and not shutdown.done():
            shutdown.set_result(str(message.get("message", "")) or "(no message)")
        else:
            raise ApplicationError(f"Unexpected lifespan message {message!r}")
