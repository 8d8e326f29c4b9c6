"""How the Redis layers lay data out in Redis: every name comes from :class:`KeySpace`.

Keys (``prefix`` defaults to ``asgi``; ``{tag}`` appears only in a Cluster)::

    <prefix>:[{tag}:]ch:<queue>    a list: the queue of a channel, or of a process
    <prefix>:[{tag}:]cnt:<queue>   a hash: unreceived messages per channel of a process
    <prefix>:[{tag}:]gr:<group>    a sorted set: members of the group whose queue
                                   lives on this shard or bucket

:class:`~channels_redis.pubsub.RedisPubSubChannelLayer` uses the ``ch:`` and
``cnt:`` keys (as backlogs, and their counts) and publishes on two kinds of
Pub/Sub channel (names of their own: Pub/Sub channels are not keys)::

    <prefix>:pub:<queue>           the messages of a queue
    <prefix>:pubgr:<group>         the messages of a group

**Queues.** An ordinary channel (``chat``) has a list of its own, and its
capacity is the list's length. A process-specific channel
(``specific.<process>__<n>!<local>``, made by ``new_channel()``) has a
non-local part of its own, hence a capacity of its own as the specification
counts it, but its messages go to one list per *process*,
``ch:specific.<process>!``: one receive loop with one blocking pop serves
every consumer of a process, and ``group_send`` stores one element for all
the members a process has in a group. How many messages each channel has
waiting is counted in the process's ``cnt:`` hash, by non-local part: a send
adds one, and the receiving process subtracts what its consumers received
(batched with its next sends). A count at zero stays (the channel's next
message updates it rather than creating it) until the hash passes 4,096
fields, when every zero goes at once. :func:`queue_name` is the rule, the same in
Python and Lua; a process-specific name that does not have the shape of
``new_channel()`` names is its own queue.

**Elements.** Each list element is a header line, then the serialized
message::

    <deadline>:[!<channel>[,<channel>...]]\\n<payload>

``deadline`` is when the message expires, in integer milliseconds since the
Unix epoch; the Lua scripts read it to drop expired messages. An element on a
process queue lists the channels it is for. Names cannot hold ``:``, ``,`` or
a newline, so the header parses without escaping.

**Groups.** The score of a group member packs the time of its last
``group_add`` (whole seconds) and the member's capacity into one
exactly-representable number, ``seconds * 2**21 + capacity``: expired
members are a score range, and ``group_send`` learns each member's capacity
in the same read.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from functools import lru_cache

__all__ = [
    "CAPACITY_LIMIT",
    "KeySpace",
    "ProcessParts",
    "expired_score",
    "member_score",
    "non_local_part",
    "now_ms",
    "pack_element",
    "process_channel_name",
    "queue_name",
    "random_process_part",
    "unpack_element",
]

#: Capacities are stored in the low 21 bits of a group member's score; a
#: larger capacity is stored as this (two million messages is no limit).
CAPACITY_LIMIT = 2**21 - 1
_SCORE_SHIFT = 2**21

#: The non-local part of a name made by new_channel(): the process part,
#: "__", a counter, "!". The Lua twin is in scripts.py (_QUEUE_OF).
_PROCESS_CHANNEL = re.compile(r"(.*\.[0-9a-f]+)__[0-9]+!")


@lru_cache(maxsize=65536)
def queue_name(channel: str) -> str:
    """The name of the Redis list that holds *channel*'s messages.

    An ordinary channel is its own queue. A process-specific channel queues
    under its process (``specific.ab12__7!x`` under ``specific.ab12!``)
    when it has the shape of names made by ``new_channel()``, else under its
    non-local part.
    """
    bang = channel.find("!")
    if bang < 0:
        return channel
    remote = channel[: bang + 1]
    match = _PROCESS_CHANNEL.fullmatch(remote)
    return remote if match is None else match.group(1) + "!"


class ProcessParts:
    """The process parts of one layer's ``new_channel()`` names, and its process queues.

    Each event loop that uses the layer reads queues of its own, so it gets a
    process part of its own. A loop that closes gives its part back and the
    next loop takes it over, with the numbering where it stopped: a
    short-lived loop per ``async_to_sync`` call does not make the sets grow,
    and a name made in a loop that has closed since is received by the loop
    that now holds its part.
    """

    def __init__(self, first: str, length: int) -> None:
        self.length = length
        self.free: list[tuple[str, itertools.count[int]]] = [(first, itertools.count(1))]
        #: The queues of the names new_channel() made: a process-specific
        #: name may be received here only if its queue is one of them.
        self.queues: set[str] = set()

    def claim(self) -> tuple[str, itertools.count[int]]:
        """A part for a new event loop, and the numbers of its channels."""
        if self.free:
            return self.free.pop()
        return random_process_part(self.length), itertools.count(1)

    def release(self, part: str, numbers: itertools.count[int]) -> None:
        """The loop that held *part* has closed."""
        self.free.append((part, numbers))


def non_local_part(channel: str) -> str:
    """The part of a process-specific name up to and including its ``!``."""
    return channel[: channel.index("!") + 1]


class KeySpace:
    """The key names of one shard (or one Cluster bucket)."""

    __slots__ = (
        "base",
        "channel_prefix",
        "count_prefix",
        "group_prefix",
        "group_publish_prefix",
        "prefix",
        "publish_prefix",
    )

    def __init__(self, prefix: str, tag: str = "") -> None:
        self.prefix = prefix
        self.base = f"{prefix}:{{{tag}}}:" if tag else f"{prefix}:"
        self.channel_prefix = self.base + "ch:"
        self.count_prefix = self.base + "cnt:"
        self.group_prefix = self.base + "gr:"
        self.publish_prefix = self.base + "pub:"
        self.group_publish_prefix = self.base + "pubgr:"

    def channel_key(self, queue: str) -> str:
        return self.channel_prefix + queue

    def count_key(self, queue: str) -> str:
        return self.count_prefix + queue

    def group_key(self, group: str) -> str:
        return self.group_prefix + group

    def publish_name(self, queue: str) -> str:
        """The Pub/Sub channel of *queue* (the Pub/Sub layer)."""
        return self.publish_prefix + queue

    def group_publish_name(self, group: str) -> str:
        """The Pub/Sub channel of *group* (the Pub/Sub layer)."""
        return self.group_publish_prefix + group

    @property
    def scan_pattern(self) -> str:
        """The ``SCAN MATCH`` pattern of every key of the layer, in every shard."""
        return "".join("\\" + char if char in "*?[]\\" else char for char in self.prefix) + ":*"


def member_score(added_at: float, capacity: int) -> int:
    """The sorted-set score of a group member added at *added_at* (epoch seconds)."""
    return int(added_at) * _SCORE_SHIFT + min(capacity, CAPACITY_LIMIT)


def expired_score(now: float, group_expiry: float) -> int:
    """Members with a score below this were last added over *group_expiry* ago."""
    return int(now - group_expiry) * _SCORE_SHIFT


def pack_element(deadline_ms: int, channel: str | None, payload: bytes) -> bytes:
    """The list element for one message; *channel* is given on process queues."""
    if channel is None:
        return b"%d:\n%b" % (deadline_ms, payload)
    return b"%d:!%b\n%b" % (deadline_ms, channel.encode("ascii"), payload)


def unpack_element(element: bytes) -> tuple[int, list[str] | None, bytes]:
    """``(deadline_ms, channels or None, payload)`` of a list element.

    Raises ``ValueError`` when *element* does not have the layout.
    """
    newline = element.find(b"\n")
    colon = element.find(b":", 0, newline) if newline >= 0 else -1
    if colon < 0:
        raise ValueError("it has no '<deadline>:' header line, so it is not in this layer's format")
    deadline = int(element[:colon])
    if colon + 1 == newline:
        return deadline, None, element[newline + 1 :]
    if element[colon + 1] != 0x21:  # "!"
        raise ValueError("the header of a list element has no '!' before its channels")
    channels = element[colon + 2 : newline].decode("ascii").split(",")
    return deadline, channels, element[newline + 1 :]


def random_process_part(length: int) -> str:
    """A fresh random process part of ``new_channel()`` names (*length* hex digits)."""
    return os.urandom(20).hex()[:length]


def process_channel_name(prefix: str, process: str, number: int) -> str:
    """A ``new_channel()`` name: ``<prefix>.<process>__<number>!<random>``.

    No dot is added after a *prefix* that ends with one, or is empty.
    """
    separator = "" if prefix.endswith(".") or not prefix else "."
    return f"{prefix}{separator}{process}__{number}!{os.urandom(6).hex()}"


def now_ms() -> int:
    """The time as deadlines are written: integer milliseconds since the Unix epoch."""
    return int(time.time() * 1000)
