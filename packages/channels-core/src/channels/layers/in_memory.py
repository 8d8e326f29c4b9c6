"""A channel layer that lives in one process's memory.

For tests and local development: it cannot carry messages between processes.
It implements the whole Channel Layer Specification with the ``groups`` and
``flush`` extensions, so code tested against it behaves the same on a
network layer.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
import uuid
from collections import deque
from collections.abc import Mapping
from typing import Any

from ..exceptions import ChannelFull
from . import names
from .base import BaseChannelLayer, CapacityPattern

__all__ = ["InMemoryChannelLayer"]

logger = logging.getLogger(__name__)

_IMMUTABLE = (str, bytes, int, float, bool, type(None))


def copy_message(value: Any) -> Any:
    """Copy a message so that neither sender nor receivers share mutable state.

    The types the specification allows in messages are copied by hand, which
    is several times faster than ``copy.deepcopy``; anything else (the
    in-memory layer does not refuse it) falls back to ``copy.deepcopy``.
    """
    kind = type(value)
    if kind is dict:
        return {key: copy_message(item) for key, item in value.items()}
    if kind in _IMMUTABLE:
        return value
    if kind is list:
        return [copy_message(item) for item in value]
    if kind is tuple:
        return tuple(copy_message(item) for item in value)
    return copy.deepcopy(value)


def _set_done(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Channel:
    """One channel's queue: (deadline, message) pairs and the receivers waiting."""

    __slots__ = ("messages", "waiters")

    def __init__(self) -> None:
        self.messages: deque[tuple[float, dict[str, Any]]] = deque()
        self.waiters: deque[asyncio.Future[None]] = deque()

    def wake_one(self) -> None:
        """Wake the first receiver still waiting, on whichever loop it runs."""
        for waiter in self.waiters:
            if waiter.done():
                continue
            loop = waiter.get_loop()
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if loop is running:
                waiter.set_result(None)
            else:
                # A sender on another loop (async_to_sync from a thread): the
                # future may only be completed from its own loop's thread.
                loop.call_soon_threadsafe(_set_done, waiter)
            return


class InMemoryChannelLayer(BaseChannelLayer):
    """The in-process channel layer (``"channels.layers.InMemoryChannelLayer"``).

    :param expiry: seconds a message waits unread before it is dropped; a
        channel whose message expires also leaves every group it was in.
    :param group_expiry: seconds a group membership lasts after its last
        ``group_add``.
    :param capacity: messages one channel may hold; ``send()`` beyond it
        raises :class:`~channels.exceptions.ChannelFull`, ``group_send()``
        silently skips that member.
    :param channel_capacity: per-channel capacities (see
        :class:`~channels.layers.BaseChannelLayer`).
    """

    extensions = ["groups", "flush"]

    def __init__(
        self,
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: Mapping[CapacityPattern, int] | None = None,
        **unused: Any,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        if group_expiry <= 0:
            raise ValueError(
                f"group_expiry must be a positive number of seconds, not {group_expiry!r}"
            )
        if unused:
            # Settings written for another backend ("hosts", ...) are harmless
            # here; say so once rather than fail a development setup.
            logger.warning("InMemoryChannelLayer ignores the options %s", ", ".join(sorted(unused)))
        self.group_expiry = group_expiry
        self.channels: dict[str, _Channel] = {}
        #: group name -> {channel name: time of the last group_add}
        self.groups: dict[str, dict[str, float]] = {}
        # The reverse index, so an expired channel leaves its groups quickly.
        self._memberships: dict[str, set[str]] = {}
        self._next_sweep = 0.0
        self._sweep_interval = min(1.0, expiry / 4)

    # -- channels --------------------------------------------------------------

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Put *message* on *channel*; raise ``ChannelFull`` at capacity."""
        if not isinstance(message, dict):
            raise TypeError(f"message must be a dict, not {type(message).__name__}")
        names.require_valid_channel_name(channel)
        now = time.monotonic()
        self._sweep_if_due(now)
        self._put(channel, copy_message(message), now)

    async def receive(self, channel: str) -> dict[str, Any]:
        """Wait for and return the next message on *channel*.

        Cancelling a waiting ``receive()`` never loses a message: a message is
        only taken off the queue by a receiver that goes on to return it.
        """
        names.require_valid_channel_name(channel)
        now = time.monotonic()
        self._sweep_if_due(now)
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = _Channel()
        while True:
            self._drop_expired(channel, queue, now)
            if queue.messages:
                message = queue.messages.popleft()[1]
                if queue.messages:
                    queue.wake_one()
                self._forget_if_idle(channel, queue)
                return message
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            queue.waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and queue.messages:
                    # We were handed a wake-up we can no longer use: pass it on.
                    queue.waiters.remove(waiter)
                    queue.wake_one()
                raise
            finally:
                if waiter in queue.waiters:
                    queue.waiters.remove(waiter)
                self._forget_if_idle(channel, queue)
            if self.channels.get(channel) is not queue:
                # flush() or close() replaced the channel while we waited.
                queue = self.channels.setdefault(channel, queue)
            now = time.monotonic()

    async def new_channel(self, prefix: str = "specific.") -> str:
        """A new process-specific channel name, unique in this layer."""
        name = f"{prefix}inmemory!{uuid.uuid4().hex[:16]}"
        names.require_valid_channel_name(name)
        return name

    # -- groups ----------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        names.require_valid_group_name(group)
        names.require_valid_channel_name(channel)
        self.groups.setdefault(group, {})[channel] = time.monotonic()
        self._memberships.setdefault(channel, set()).add(group)

    async def group_discard(self, group: str, channel: str) -> None:
        names.require_valid_group_name(group)
        names.require_valid_channel_name(channel)
        self._leave(group, channel)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Send *message* to every member of *group*; full members are skipped."""
        if not isinstance(message, dict):
            raise TypeError(f"message must be a dict, not {type(message).__name__}")
        names.require_valid_group_name(group)
        now = time.monotonic()
        self._sweep_if_due(now)
        members = self.groups.get(group)
        if not members:
            return
        oldest = now - self.group_expiry
        for channel, added in list(members.items()):
            if added < oldest:
                self._leave(group, channel)
                continue
            try:
                self._put(channel, copy_message(message), now)
            except ChannelFull:
                # At-most-once: a group send drops a message for a full member.
                pass

    # -- flush extension -------------------------------------------------------

    async def flush(self) -> None:
        """Drop every message and group. Receivers already waiting keep waiting."""
        kept = {}
        for name, queue in self.channels.items():
            queue.messages.clear()
            if queue.waiters:
                kept[name] = queue
        self.channels = kept
        self.groups = {}
        self._memberships = {}

    async def close(self) -> None:
        """The in-memory layer holds no connections; closing empties it."""
        await self.flush()

    # -- internals -------------------------------------------------------------

    def _put(self, channel: str, message: dict[str, Any], now: float) -> None:
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = _Channel()
        else:
            self._drop_expired(channel, queue, now)
        if len(queue.messages) >= self.get_capacity(channel):
            raise ChannelFull(f"Channel {channel!r} is at its capacity")
        queue.messages.append((now + self.expiry, message))
        if queue.waiters:
            queue.wake_one()

    def _drop_expired(self, channel: str, queue: _Channel, now: float) -> None:
        messages = queue.messages
        if messages and messages[0][0] <= now:
            # Deadlines on one channel only grow, so expired messages are in front.
            while messages and messages[0][0] <= now:
                messages.popleft()
            # The specification lets a layer drop the group memberships of a
            # channel that let a message expire (its reader is likely gone).
            for group in list(self._memberships.get(channel, ())):
                self._leave(group, channel)

    def _forget_if_idle(self, channel: str, queue: _Channel) -> None:
        if not queue.messages and not queue.waiters and self.channels.get(channel) is queue:
            del self.channels[channel]

    def _leave(self, group: str, channel: str) -> None:
        members = self.groups.get(group)
        if members is not None:
            members.pop(channel, None)
            if not members:
                del self.groups[group]
        groups = self._memberships.get(channel)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self._memberships[channel]

    def _sweep_if_due(self, now: float) -> None:
        """Expire messages and memberships nobody touched, at most once a second.

        Per-channel checks on send and receive keep every answer right; the
        sweep only keeps unread channels and stale groups from piling up.
        """
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._sweep_interval
        for channel, queue in list(self.channels.items()):
            self._drop_expired(channel, queue, now)
            self._forget_if_idle(channel, queue)
        oldest = now - self.group_expiry
        for group, members in list(self.groups.items()):
            for channel, added in list(members.items()):
                if added < oldest:
                    self._leave(group, channel)
