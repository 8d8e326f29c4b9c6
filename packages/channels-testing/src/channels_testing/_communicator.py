"""The base of the HTTP and WebSocket communicators."""

from __future__ import annotations

import asyncio
from typing import Any

from asgiref.testing import ApplicationCommunicator


class FailFastCommunicator(ApplicationCommunicator):
    """``ApplicationCommunicator`` whose ``receive_output()`` stops waiting when the app ends.

    asgiref's version waits out the whole timeout even after the application
    has raised, and only then reports the error. Here an application that
    raises has its exception raised at once, and one that returns without
    sending anything more gives ``TimeoutError`` at once: nothing can arrive.
    """

    def __init__(self, application: Any, scope: dict[str, Any]) -> None:
        super().__init__(application, scope)
        # After the base class, so that a refused object is still whole when
        # it is collected (asgiref's __del__ needs its state).
        if not callable(application):
            raise TypeError(
                f"application must be an ASGI application (a callable), not {application!r}"
            )

    async def receive_output(self, timeout: float = 1) -> Any:
        future = self.future
        if future.done():
            future.result()  # the application's exception, if it raised
        queue = self.output_queue
        if not queue.empty():
            return queue.get_nowait()
        getter = asyncio.ensure_future(queue.get())
        try:
            await asyncio.wait(
                {getter, future}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if not getter.done():
                # Cancelling a get() that has not returned leaves the queue as it was.
                getter.cancel()
                await asyncio.gather(getter, return_exceptions=True)
        if getter.done() and not getter.cancelled():
            return getter.result()
        if future.done():
            future.result()
            raise asyncio.TimeoutError("the application returned without sending another event")
        # Timed out with the application still running: stop it, as asgiref does.
        future.cancel()
        await asyncio.gather(future, return_exceptions=True)
        raise asyncio.TimeoutError(f"no event from the application within {timeout} seconds")
