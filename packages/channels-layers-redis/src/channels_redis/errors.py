"""Exceptions raised by the Redis channel layers.

Every exception this package defines derives from :class:`RedisLayerError`,
itself a :class:`channels.exceptions.ChannelsError`. Errors of redis-py never
reach the caller: :func:`map_redis_errors` translates them where the layers
talk to Redis.

The tree::

    channels.exceptions.ChannelsError
    ├── channels.exceptions.ChannelFull        (raised as is by send())
    └── RedisLayerError
        ├── InvalidConfiguration               (also ValueError)
        ├── RedisConnectionError               (also ConnectionError)
        │   └── SendOutcomeUnknown
        ├── RedisCommandError
        ├── UndecryptableMessage
        ├── MessageTooLarge                    (also channels.exceptions.MessageTooLarge)
        └── UnknownProcessChannel              (also channels.exceptions.ForeignChannelError)

Invalid channel and group names raise the built-in ``TypeError`` (as every
channel layer does), and so do messages holding values that cannot be
serialized: the message names the key.

A ``send()`` or ``group_send()`` that raises :class:`SendOutcomeUnknown` may
have been applied: Redis stopped answering (a freeze past ``socket_timeout``,
a crash) after the command had left. Any other error from them means the
message was not queued, so retrying it cannot deliver it twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis.exceptions

from channels import exceptions as channels_exceptions

__all__ = [
    "InvalidConfiguration",
    "MessageTooLarge",
    "RedisCommandError",
    "RedisConnectionError",
    "RedisLayerError",
    "SendOutcomeUnknown",
    "UndecryptableMessage",
    "UnknownProcessChannel",
    "map_redis_errors",
    "translate_redis_error",
]


class RedisLayerError(channels_exceptions.ChannelsError):
    """Base class of every exception the Redis channel layers define."""


class InvalidConfiguration(RedisLayerError, ValueError):
    """An argument of the layer (``hosts``, ``serializer_format``, ...) is invalid."""


class RedisConnectionError(RedisLayerError, ConnectionError):
    """Redis cannot be reached, the connection broke, or Redis is not serving
    (loading, failing over, cluster down). Retrying later may succeed."""


class SendOutcomeUnknown(RedisConnectionError):
    """Redis stopped answering after a ``send()`` or ``group_send()`` had
    been written to it (it froze past ``socket_timeout``, or the connection
    broke): the message may have been queued, and delivered.

    Retrying may therefore deliver it twice; not retrying may lose it. Every
    other error from ``send()`` and ``group_send()`` means Redis did not
    queue the message.
    """


class RedisCommandError(RedisLayerError):
    """Redis refused a command for a reason that retrying will not fix
    (out of memory, permissions, a misconfigured server)."""


class UndecryptableMessage(RedisLayerError):
    """A message was encrypted with a key this layer does not have.

    Receive loops log and drop such messages; it is raised only by direct
    calls to a serializer's ``deserialize()``.
    """


class MessageTooLarge(RedisLayerError, channels_exceptions.MessageTooLarge):
    """A message is larger, serialized, than the layer's ``max_message_size``."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"The message is {size} bytes serialized, over the layer's limit of "
            f"{limit} bytes (max_message_size); send large data in several messages"
        )
        self.size = size
        self.limit = limit


class UnknownProcessChannel(RedisLayerError, channels_exceptions.ForeignChannelError):
    """``receive()`` was given a process-specific name (``prefix!local``) that
    this layer did not make with ``new_channel()`` (a ``ValueError``).

    Such a channel's messages go to the process that made the name; waiting
    here would wait forever (or take that process's messages), so the layer
    refuses at once.
    """

    def __init__(self, channel: str) -> None:
        super().__init__(
            f"Cannot receive on {channel!r}: it is a process-specific channel name "
            "(with '!') that this channel layer did not make with new_channel(); only "
            "the process (and layer) that made it can receive its messages"
        )
        self.channel = channel


# Conditions in which Redis did not (or could not) serve the command but may
# serve it shortly: these are connection trouble to the caller, not bugs.
_UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.RedisClusterException,
    OSError,
)


class Unanswered(Exception):
    """Marks a redis-py error raised for a command that had been written to
    Redis when its connection failed: Redis may have run it."""


class UnansweredLoss(Unanswered, redis.exceptions.ConnectionError):
    """The connection broke while a written command waited for its reply."""


class UnansweredTimeout(Unanswered, redis.exceptions.TimeoutError):
    """A written command's reply did not come within ``socket_timeout``."""


def unanswered(failure: Exception) -> Exception:
    """The error for a command in flight on a connection that failed with *failure*."""
    if isinstance(failure, redis.exceptions.TimeoutError):
        return UnansweredTimeout(str(failure))
    return UnansweredLoss(str(failure))


@contextlib.contextmanager
def map_redis_errors(action: str, sending: bool = False) -> Iterator[None]:
    """Translate redis-py exceptions raised inside the block into this package's.

    *action* completes the sentence "Redis failed while ..." in the message,
    e.g. ``"sending to 'chat'"``; *sending* says the block queues messages,
    whose failure after they were written is :class:`SendOutcomeUnknown`.
    """
    try:
        yield
    except (*_UNAVAILABLE, redis.exceptions.RedisError) as exc:
        raise translate_redis_error(exc, action, sending) from exc


def translate_redis_error(exc: BaseException, action: str, sending: bool = False) -> BaseException:
    """This package's exception for a redis-py one (*exc* itself for any other)."""
    if sending and isinstance(exc, Unanswered):
        return SendOutcomeUnknown(
            f"Redis stopped answering while {action}, after the command was sent ({exc}): "
            "the message may have been queued, so a retry may deliver it twice"
        )
    if isinstance(exc, _UNAVAILABLE):
        return RedisConnectionError(f"Redis is unavailable while {action}: {exc}")
    if isinstance(exc, redis.exceptions.RedisError):
        return RedisCommandError(f"Redis refused a command while {action}: {exc}")
    return exc
