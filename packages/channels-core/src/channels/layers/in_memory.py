"""A channel layer that lives in one process's memory.

For tests and local development: it cannot carry messages between processes.
It implements the whole Channel Layer Specification with the ``groups`` and
``flush`` extensions, so code tested against it behaves the same on a
network layer.

One layer may be used from several event loops at once (a consumer waiting
in the server's loop while a thread sends through ``async_to_sync``, which
runs the send in a loop of its own): its state is guarded by a lock that is
only held between awaits, and a receiver waiting in another loop is woken
through that loop.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from typing import Any

from .._cache import BoundedCache
from ..exceptions import ChannelFull, ForeignChannelError
from . import names
from .base import BaseChannelLayer, CapacityPattern, require_positive_seconds

__all__ = ["InMemoryChannelLayer", "copy_message"]

logger = logging.getLogger(__name__)

_IMMUTABLE = frozenset((str, bytes, int, float, bool, type(None)))


def copy_message(value: Any) -> Any:
    """Copy a message so that neither sender nor receivers share mutable state.

    The types the specification allows in messages are copied by hand, which
    is several times faster than ``copy.deepcopy``; anything else (the
    in-memory layer does not refuse it) falls back to ``copy.deepcopy``.
    """
    # bench/redis_layer.py serial and in-flight rows, run on this layer: 1.4x deepcopy's rate.
    # Exact types: a subclass goes to deepcopy, which keeps its class.
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


#: The size of the signature at the end of new_channel()'s non-local parts.
_SIGNATURE_BYTES = 4
_SIGNATURE_LENGTH = 2 * _SIGNATURE_BYTES  # in hexadecimal digits
#: How many checked non-local parts to remember (the oldest is forgotten first).
_CHECKED_REMOTES_KEPT = 4096

#: Where a channel's messages would be: most channels only ever have a
#: receiver waiting, and a deque costs some 700 bytes, so one is made on the
#: first message. (maxlen=0: nothing can be left in it by mistake.)
_NO_MESSAGES: deque[tuple[float, dict[str, Any]]] = deque(maxlen=0)


def _set_done(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Backlog:
    """The count of messages waiting on the channels behind one ``reader!``.

    The specification ("Capacity") counts a process-specific channel's
    messages on its non-local part, so every ``reader!local`` channel shares
    the backlog of ``reader!``. Other channels count their own queue.
    """

    __slots__ = ("channels", "made_here", "size")

    def __init__(self, made_here: bool) -> None:
        self.size = 0
        #: How many open channels share this backlog.
        self.channels = 0
        #: Whether the non-local part came from this layer's new_channel().
        self.made_here = made_here


class _Channel:
    """One channel's queue: (deadline, message) pairs and the receivers waiting."""

    __slots__ = ("backlog", "capacity", "messages", "shared_key", "waiters")

    def __init__(self, capacity: int, shared_key: str | None, backlog: _Backlog | None) -> None:
        self.messages = _NO_MESSAGES
        # Usually one receiver or none: a list is smaller than a deque.
        self.waiters: list[asyncio.Future[None]] = []
        self.capacity = capacity
        #: The non-local part of a process-specific channel, and its backlog.
        self.shared_key = shared_key
        self.backlog = backlog

    # -- what asyncio.Queue offers for inspection, for tests written against
    # Channels' layer, whose ``channels`` values are asyncio.Queue objects of
    # (expiry, message) pairs.

    @property
    def maxsize(self) -> int:
        """The channel's capacity."""
        return self.capacity

    @property
    def _queue(self) -> deque[tuple[float, dict[str, Any]]]:
        # The (deadline, message) pairs, oldest first; deadlines are
        # time.monotonic() values.
        return self.messages

    def qsize(self) -> int:
        """How many messages wait on the channel (expired ones included until swept)."""
        return len(self.messages)

    def empty(self) -> bool:
        """True when no message waits on the channel."""
        return not self.messages

    def full(self) -> bool:
        """True when the channel holds as many messages as its capacity."""
        return len(self.messages) >= self.capacity

    def wake_one(self) -> None:
        """Wake the first receiver still waiting, on whichever loop it runs.

        The woken receiver leaves the line; it takes a message when it runs,
        or waits again if another receiver was quicker.
        """
        waiters = self.waiters
        running = asyncio.get_running_loop()
        while waiters:
            waiter = waiters.pop(0)
            if waiter.done():
                continue
            loop = waiter.get_loop()
            if loop is running:
                waiter.set_result(None)
                return
            # A sender on another loop (async_to_sync from a thread): the
            # future may only be completed from its own loop's thread.
            try:
                loop.call_soon_threadsafe(_set_done, waiter)
            except RuntimeError:
                # That loop is closed: its receiver is gone, try the next.
                continue
            return

    def drop_abandoned_waiters(self) -> None:
        """Forget receivers whose event loop was closed under them."""
        if any(waiter.get_loop().is_closed() for waiter in self.waiters):
            self.waiters = [w for w in self.waiters if not w.get_loop().is_closed()]


class InMemoryChannelLayer(BaseChannelLayer):
    """The in-process channel layer (``"channels.layers.InMemoryChannelLayer"``).

    :param expiry: seconds a message waits unread before it is dropped; a
        channel whose message expires also leaves every group it was in.
    :param group_expiry: seconds a group membership lasts after its last
        ``group_add``.
    :param capacity: messages one channel may hold; ``send()`` beyond it
        raises :class:`~channels.exceptions.ChannelFull`, ``group_send()``
        silently skips that member. The local channels behind one
        process-specific prefix (``reader!a``, ``reader!b``) share one
        capacity, as the specification asks.
    :param channel_capacity: per-channel capacities (see
        :class:`~channels.layers.BaseChannelLayer`), matched against the
        full channel name.

    :attr:`channels` and :attr:`groups` may be inspected by tests: a channel
    appears there while it holds messages or receivers, a group while it has
    members. ``channels`` maps a channel name to its queue, which answers
    ``qsize()``, ``empty()``, ``full()`` and ``maxsize`` like an
    ``asyncio.Queue``; ``groups`` maps a group name to ``{channel name: time
    of the last group_add}`` (a ``time.monotonic()`` value).

    ``receive()`` on a process-specific name (one with ``!``) whose part up to
    the ``!`` was not made by this layer's :meth:`new_channel` raises
    :class:`~channels.exceptions.ForeignChannelError` at once: nothing could
    ever arrive there.
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
        self.group_expiry = require_positive_seconds("group_expiry", group_expiry)
        if unused:
            # Settings written for another backend ("hosts", ...) are harmless
            # here; say so once rather than fail a development setup.
            logger.warning("InMemoryChannelLayer ignores the options %s", ", ".join(sorted(unused)))
        self.channels: dict[str, _Channel] = {}
        #: group name -> {channel name: time of the last group_add}
        self.groups: dict[str, dict[str, float]] = {}
        # The reverse index, so an expired channel leaves its groups quickly.
        self._memberships: dict[str, set[str]] = {}
        # Shared backlogs of process-specific channels, by non-local part.
        self._backlogs: dict[str, _Backlog] = {}
        # Held only between awaits, never across one: see the module docstring.
        self._lock = threading.Lock()
        self._next_sweep = 0.0
        self._sweep_interval = min(1.0, self.expiry / 4)
        # Signs the names new_channel() makes, so that receive() can tell
        # them from names it never made without remembering each one.
        self._name_key = secrets.token_bytes(16)
        # Non-local parts already checked by _made_here(), and the answer.
        self._checked_remotes: BoundedCache[str, bool] = BoundedCache(_CHECKED_REMOTES_KEPT)

    # -- channels --------------------------------------------------------------

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Put *message* on *channel*; raise ``ChannelFull`` at capacity."""
        if not isinstance(message, dict):
            raise TypeError(f"message must be a dict, not {type(message).__name__}")
        if not isinstance(channel, str) or channel not in self.channels:
            # A name already in self.channels was checked when it got there.
            self.require_valid_channel_name(channel)
        message = copy_message(message)
        with self._lock:
            now = time.monotonic()
            if now >= self._next_sweep:
                self._sweep(now)
            if self._put(channel, message, now):
                return
        capacity = self.get_capacity(channel)
        if "!" in channel:
            raise ChannelFull(
                f"Channel {channel!r} is full: the channels behind "
                f"{names.non_local_name(channel)!r} share a capacity of {capacity} messages"
            )
        raise ChannelFull(f"Channel {channel!r} is full: its capacity is {capacity} messages")

    async def receive(self, channel: str) -> dict[str, Any]:
        """Wait for and return the next message on *channel*.

        Cancelling a waiting ``receive()`` never loses a message: a message is
        only taken off the queue by a receiver that goes on to return it.
        """
        known = self.channels.get(channel) if isinstance(channel, str) else None
        if known is None:
            self.require_valid_channel_name(channel)
            foreign = "!" in channel and not self._made_here(channel)
        else:
            # A channel that holds messages is checked too (a send() to
            # another process's channel must not be read here), through its
            # backlog, which checked its non-local part once.
            foreign = known.backlog is not None and not known.backlog.made_here
        if foreign:
            raise ForeignChannelError(
                f"Cannot receive on {channel!r}: it is a process-specific channel that "
                "this layer did not make with new_channel(), so nothing can arrive on it "
                "here (messages on it go to the process that made it)"
            )
        # The queue this receiver waits on. It is kept even if it leaves
        # self.channels meanwhile (a test may delete it), so that a message
        # that was put there while the receiver waited is still delivered.
        held: _Channel | None = None
        while True:
            with self._lock:
                now = time.monotonic()
                if now >= self._next_sweep:
                    self._sweep(now)
                queue = self.channels.get(channel)
                if held is not None and held is not queue and held.messages:
                    message = self._take(channel, held, now)
                    if message is not None:
                        return message
                if queue is None:
                    queue = self._open(channel)
                elif queue.messages:
                    message = self._take(channel, queue, now)
                    if message is not None:
                        return message
                held = queue
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                queue.waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                with self._lock:
                    try:
                        queue.waiters.remove(waiter)
                    except ValueError:
                        pass  # already woken, so out of the line
                    if queue.messages:
                        # We may have been woken for a message we will now
                        # not take: hand the wake-up to the next receiver.
                        queue.wake_one()
                    elif not queue.waiters and self.channels.get(channel) is queue:
                        self._close(channel, queue)
                raise

    async def new_channel(self, prefix: str = "specific.") -> str:
        """A new process-specific channel name, unique in this layer.

        Each name has a non-local part of its own, so each gets the full
        capacity: in one process every receiver is its own reader. That part
        ends with a signature of the rest, which :meth:`receive` checks.
        """
        token = uuid.uuid4().hex
        remote = f"{prefix}inmemory.{token[:16]}"
        name = f"{remote}{self._signature(remote)}!{token[16:]}"
        # The default rules, whatever a subclass allows: this checks *prefix*.
        names.require_valid_channel_name(name)
        return name

    def _signature(self, remote: str) -> str:
        return hashlib.blake2b(
            remote.encode(), key=self._name_key, digest_size=_SIGNATURE_BYTES
        ).hexdigest()

    def _made_here(self, channel: str) -> bool:
        """Whether the part of *channel* up to its ``!`` came from :meth:`new_channel`."""
        remote = channel[: channel.index("!")]
        # A receiver calls receive() on its channel again and again: hashing
        # each time would cost a quarter of a send and receive. No bench/ row
        # reaches this yet (their receivers find messages waiting); timeit:
        # 0.6 us cached, 2.5 us hashed, per receive() that has to wait.
        known = self._checked_remotes.get(remote)
        if known is not None:
            return known
        body, signature = remote[:-_SIGNATURE_LENGTH], remote[-_SIGNATURE_LENGTH:]
        made_here = len(remote) > _SIGNATURE_LENGTH and self._signature(body) == signature
        return self._checked_remotes.put(remote, made_here)

    # -- groups ----------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        """Add *channel* to *group*, or renew its membership."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        with self._lock:
            self.groups.setdefault(group, {})[channel] = time.monotonic()
            self._memberships.setdefault(channel, set()).add(group)

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove *channel* from *group*; nothing happens if it is not in it."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        with self._lock:
            self._leave(group, channel)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Send *message* to every member of *group*; full members are skipped."""
        if not isinstance(message, dict):
            raise TypeError(f"message must be a dict, not {type(message).__name__}")
        if not isinstance(group, str) or group not in self.groups:
            # A name already in self.groups was checked by group_add().
            self.require_valid_group_name(group)
        with self._lock:
            now = time.monotonic()
            if now >= self._next_sweep:
                self._sweep(now)
            members = self.groups.get(group)
            if not members:
                return
            oldest = now - self.group_expiry
            # A copy of the members: a member may leave while we send.
            for channel, added in list(members.items()):
                if added < oldest:
                    self._leave(group, channel)
                else:
                    # A full member misses this message: group sends never
                    # raise ChannelFull (specification, "Capacity").
                    self._put(channel, copy_message(message), now)

    # -- flush extension -------------------------------------------------------

    async def flush(self) -> None:
        """Drop every message and group. Receivers already waiting keep waiting."""
        with self._lock:
            kept: dict[str, _Channel] = {}
            for name, queue in self.channels.items():
                queue.messages = _NO_MESSAGES
                if queue.backlog is not None:
                    queue.backlog.size = queue.backlog.channels = 0
                if queue.waiters:
                    kept[name] = queue
            backlogs: dict[str, _Backlog] = {}
            for queue in kept.values():
                if queue.shared_key is not None and queue.backlog is not None:
                    queue.backlog.channels += 1
                    backlogs[queue.shared_key] = queue.backlog
            self.channels = kept
            self._backlogs = backlogs
            self.groups = {}
            self._memberships = {}

    async def close(self) -> None:
        """The in-memory layer holds no connections; closing empties it."""
        await self.flush()

    # -- what Channels' layer has, for tests that call it --------------------------

    def _clean_expired(self) -> None:
        """Drop expired messages and group memberships now.

        A channel that had a message expire leaves every group it was in.
        The layer does this by itself as it is used (at most once a second);
        this is for tests that want it done at a given moment.
        """
        with self._lock:
            self._sweep(time.monotonic())

    def _remove_from_groups(self, channel: str) -> None:
        """Take *channel* out of every group it is in."""
        with self._lock:
            # Every group is looked at, not only the index: a test may have
            # put the channel in self.groups by hand.
            for group, members in list(self.groups.items()):
                if channel in members:
                    self._leave(group, channel)

    # -- internals (called with the lock held) ---------------------------------

    def _open(self, channel: str) -> _Channel:
        bang = channel.find("!")
        if bang < 0:
            queue = _Channel(self.get_capacity(channel), None, None)
        else:
            key = channel[: bang + 1]
            backlog = self._backlogs.get(key)
            if backlog is None:
                backlog = self._backlogs[key] = _Backlog(self._made_here(channel))
            backlog.channels += 1
            queue = _Channel(self.get_capacity(channel), key, backlog)
        self.channels[channel] = queue
        return queue

    def _take(self, channel: str, queue: _Channel, now: float) -> dict[str, Any] | None:
        """The first unexpired message of *queue*, taken off it; None if there is none."""
        self._drop_expired(channel, queue, now)
        if not queue.messages:
            return None
        message = queue.messages.popleft()[1]
        if queue.backlog is not None:
            queue.backlog.size -= 1
        if queue.messages:
            if queue.waiters:
                queue.wake_one()
        elif not queue.waiters and self.channels.get(channel) is queue:
            # Read empty: forget it, so that channels used once (a request's
            # reply channel) do not pile up.
            self._close(channel, queue)
        return message

    def _close(self, channel: str, queue: _Channel) -> None:
        del self.channels[channel]
        if queue.backlog is not None:
            # An unused backlog is dropped by the next sweep, not here: a
            # channel read empty and written again would otherwise make and
            # drop one per message.
            queue.backlog.channels -= 1

    def _put(self, channel: str, message: dict[str, Any], now: float) -> bool:
        """Queue *message*; False (and nothing queued) when the channel is full."""
        queue = self.channels.get(channel)
        if queue is None:
            queue = self._open(channel)
        elif queue.messages:
            self._drop_expired(channel, queue, now)
        backlog = queue.backlog
        if (len(queue.messages) if backlog is None else backlog.size) >= queue.capacity:
            # Only a shared backlog can be full for a channel that holds
            # nothing; expired messages on its siblings are dropped by the
            # next sweep, at most a sweep interval late.
            if not queue.messages and not queue.waiters:
                self._close(channel, queue)
            return False
        if queue.messages is _NO_MESSAGES:
            queue.messages = deque()
        queue.messages.append((now + self.expiry, message))
        if backlog is not None:
            backlog.size += 1
        if queue.waiters:
            queue.wake_one()
        return True

    def _drop_expired(self, channel: str, queue: _Channel, now: float) -> None:
        messages = queue.messages
        if not messages or messages[0][0] > now:
            return
        # Deadlines on one channel only grow, so expired messages are in front.
        dropped = 0
        while messages and messages[0][0] <= now:
            messages.popleft()
            dropped += 1
        if queue.backlog is not None:
            queue.backlog.size -= dropped
        # The specification ("Persistence") lets a layer drop the group
        # memberships of a channel that let a message expire: its reader is
        # likely gone, and its groups would otherwise keep filling it.
        groups = self._memberships.get(channel)
        if groups:
            for group in list(groups):
                self._leave(group, channel)

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

    def _sweep(self, now: float) -> None:
        """Expire messages and memberships nobody touched.

        Runs at most once per sweep interval (a second at most). The checks on
        each send and receive keep every answer right; the sweep keeps unread
        channels and stale groups from piling up.
        """
        self._next_sweep = now + self._sweep_interval
        for channel, queue in list(self.channels.items()):
            self._drop_expired(channel, queue, now)
            if not queue.messages:
                queue.drop_abandoned_waiters()
                if not queue.waiters:
                    self._close(channel, queue)
        if self._backlogs:
            self._backlogs = {
                key: backlog for key, backlog in self._backlogs.items() if backlog.channels > 0
            }
        oldest = now - self.group_expiry
        for group, members in list(self.groups.items()):
            for channel, added in list(members.items()):
                if added < oldest:
                    self._leave(group, channel)
