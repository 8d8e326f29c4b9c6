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
        ├── RedisCommandError
        ├── UndecryptableMessage
        ├── MessageTooLarge                    (also channels.exceptions.MessageTooLarge)
        └── UnknownProcessChannel              (also channels.exceptions.ForeignChannelError)

Invalid channel and group names raise the built-in ``TypeError`` (as every
channel layer does), and so do messages holding values that cannot be
serialized: the message names the key.
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


@contextlib.contextmanager
def map_redis_errors(action: str) -> Iterator[None]:
    """Translate redis-py exceptions raised inside the block into this package's.

    *action* completes the sentence "Redis failed while ..." in the message,
    e.g. ``"sending to 'chat'"``.
    """
    try:
        yield
    except (*_UNAVAILABLE, redis.exceptions.RedisError) as exc:
        raise translate_redis_error(exc, action) from exc


def translate_redis_error(exc: BaseException, action: str) -> BaseException:
    """This package's exception for a redis-py one (*exc* itself for any other)."""
    if isinstance(exc, _UNAVAILABLE):
        return RedisConnectionError(f"Redis is unavailable while {action}: {exc}")
    if isinstance(exc, redis.exceptions.RedisError):
        return RedisCommandError(f"Redis refused a command while {action}: {exc}")
    return exc
