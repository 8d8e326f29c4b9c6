"""The worker: serves events sent to named channels (``manage.py runworker``).

Each channel name gets one application instance, whose scope is
``{"type": "channel", "channel": name}``; the events read from that channel
are fed to it in order. An instance that stops (it returned or raised) is
replaced by a new one when the next event arrives, so one bad event costs one
instance, never the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections.abc import Iterable
from typing import Any, cast

from .asgi_types import ASGIApplication, ChannelScope, Message, Scope
from .layers import BaseChannelLayer, require_valid_channel_name
from .utils import name_that_thing

__all__ = ["Worker"]

logger = logging.getLogger(__name__)


class _Instance:
    """One application instance, the queue that feeds it and how much it took."""

    __slots__ = ("queue", "taken", "task")

    task: asyncio.Task[None]

    def __init__(self, queue: asyncio.Queue[Message]) -> None:
        self.queue = queue
        self.taken = 0

    async def receive(self) -> Message:
        message = await self.queue.get()
        self.taken += 1
        return message


class Worker:
    """Receive from *channels* on *channel_layer* and run *application* on the events.

    :param application: the ASGI application (usually the project's
        ``ProtocolTypeRouter`` with a ``"channel"`` entry).
    :param channels: the channel names to listen on.
    :param channel_layer: the layer to receive from.
    :param max_applications: accepted for compatibility; a worker runs one
        instance per channel name, so this only caps how many names it takes.
    """

    def __init__(
        self,
        application: ASGIApplication,
        channels: Iterable[str],
        channel_layer: BaseChannelLayer | None,
        max_applications: int = 1000,
    ) -> None:
        if channel_layer is None:
            raise ValueError("Worker needs a channel layer; CHANNEL_LAYERS configures none")
        self.application = application
        self.channels = list(channels)
        if not self.channels:
            raise ValueError("Worker needs at least one channel name to listen on")
        for name in self.channels:
            require_valid_channel_name(name, receive=True)
        if len(self.channels) > max_applications:
            raise ValueError(
                f"Worker was given {len(self.channels)} channels, more than "
                f"max_applications={max_applications}"
            )
        self.channel_layer = channel_layer
        self.max_applications = max_applications
        self._instances: dict[str, _Instance] = {}
        self._stopping: asyncio.Event | None = None
        # stop() may come before handle() has made its event (a signal at start-up).
        self._stop_requested = False
        self._running = False

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM, then stop the instances and return."""
        asyncio.run(self._run_until_signalled())

    async def _run_until_signalled(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self.stop)
        await self.handle()

    def stop(self) -> None:
        """Ask a running worker to stop (safe to call from a signal handler)."""
        self._stop_requested = True
        if self._stopping is not None:
            self._stopping.set()

    async def handle(self) -> None:
        """Listen on every channel until :meth:`stop` is called or a listener fails."""
        self._stopping = asyncio.Event()
        if self._stop_requested:
            self._stopping.set()
        self._running = True
        listeners = [asyncio.ensure_future(self.listener(name)) for name in self.channels]
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            done, _ = await asyncio.wait(
                [*listeners, stopping], return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task is not stopping:
                    task.result()  # a listener only ends by raising: re-raise it
        finally:
            self._running = False
            self._stop_requested = False
            for task in [*listeners, stopping]:
                task.cancel()
            await asyncio.gather(*listeners, stopping, return_exceptions=True)
            await self._stop_instances()

    async def listener(self, channel: str) -> None:
        """Read events from *channel* and hand them to its application instance."""
        receive = self.channel_layer.receive
        while True:
            message = await receive(channel)
            if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                logger.error("Worker dropped an event on %r without a 'type': %r", channel, message)
                continue
            await self._instance_for(channel).queue.put(message)

    def _instance_for(self, channel: str) -> _Instance:
        instance = self._instances.get(channel)
        if instance is None:
            return self._start_instance(channel, asyncio.Queue())
        if instance.task.done():
            # Stopped, and its done callback has not run yet: take over its queue.
            return self._start_instance(
                channel, instance.queue if instance.taken else asyncio.Queue()
            )
        return instance

    def _start_instance(self, channel: str, queue: asyncio.Queue[Message]) -> _Instance:
        instance = self._instances[channel] = _Instance(queue)
        scope: ChannelScope = {"type": "channel", "channel": channel}
        # Checked as a ChannelScope, passed as the plain mapping applications take.
        app_scope = cast("Scope", scope)
        instance.task = asyncio.ensure_future(
            self.application(app_scope, instance.receive, self._send)
        )
        instance.task.add_done_callback(functools.partial(self._instance_done, channel, instance))
        return instance

    def _instance_done(self, channel: str, instance: _Instance, task: asyncio.Task[None]) -> None:
        if not task.cancelled():
            error = task.exception()
            if error is not None:
                logger.error(
                    "Application %s raised while handling channel %r",
                    name_that_thing(self.application),
                    channel,
                    exc_info=error,
                )
        if self._instances.get(channel) is not instance:
            return  # already replaced
        if self._running and instance.taken and not instance.queue.empty():
            # Events that were queued behind the one that ended the instance go
            # to a new instance instead of being lost with the old one. (Only
            # when it took an event: an app that fails before reading would
            # otherwise be restarted in a loop.)
            self._start_instance(channel, instance.queue)
            return
        del self._instances[channel]
        if not task.cancelled() and not instance.queue.empty():
            logger.error(
                "Dropped %d events on %r: the application stopped without reading them",
                instance.queue.qsize(),
                channel,
            )

    async def _send(self, message: Any) -> None:
        raise RuntimeError(
            f"A worker application cannot send ASGI events (it tried to send {message!r}); "
            "use the channel layer to talk to other consumers"
        )

    async def _stop_instances(self) -> None:
        tasks = [instance.task for instance in self._instances.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._instances.clear()
