"""Exceptions raised by Channels.

Every exception that Channels raises for a condition of its own derives from
:class:`ChannelsError`, so ``except ChannelsError`` catches them all. Some also
derive from a built-in exception where callers have always caught that one
(``InvalidChannelLayerError`` is a ``ValueError``).

The tree::

    ChannelsError
    ├── InvalidChannelLayerError (also ValueError)
    ├── ForeignChannelError (also ValueError)
    ├── ChannelFull
    ├── MessageTooLarge
    ├── RequestAborted
    ├── RequestTimeout (also RequestAborted)
    └── ConsumerControl            (control flow, not errors)
        ├── StopConsumer
        ├── AcceptConnection
        └── DenyConnection

One exception stands outside the tree: ``MixedInstallationError`` (an
``ImportError``, defined in ``channels._installation`` and re-exported here),
raised on import when another distribution (Django Channels, channels_redis,
Daphne) has written its files into our package folders.

Invalid channel and group names raise the built-in ``TypeError`` (the
Channel Layer Specification treats a bad name as a programming error), with a
message that names the value and the rule it broke.
"""

from __future__ import annotations

from channels._installation import MixedInstallationError

__all__ = [
    "AcceptConnection",
    "ChannelFull",
    "ChannelsError",
    "ConsumerControl",
    "DenyConnection",
    "ForeignChannelError",
    "InvalidChannelLayerError",
    "MessageTooLarge",
    "MixedInstallationError",
    "RequestAborted",
    "RequestTimeout",
    "StopConsumer",
]


class ChannelsError(Exception):
    """Base class of every exception Channels defines."""


class InvalidChannelLayerError(ChannelsError, ValueError):
    """The channel layer is not configured, cannot be imported, or lacks a
    feature the caller needs (such as groups)."""


class ForeignChannelError(ChannelsError, ValueError):
    """``receive()`` on a process-specific channel name (one holding ``!``) that
    the layer did not make with ``new_channel()``.

    Messages on such a channel go to the process (or layer) that made it, so
    this receive would wait forever; the layer says so at once instead.
    """


class ChannelFull(ChannelsError):
    """``send()`` could not add a message: the channel is at capacity."""


class MessageTooLarge(ChannelsError):
    """``send()`` or ``group_send()`` refused a message over the layer's size limit."""


class RequestAborted(ChannelsError):
    """The client went away before the request body was fully received."""


class RequestTimeout(RequestAborted):
    """Reading the request body took longer than the configured timeout."""


class ConsumerControl(ChannelsError):
    """Base of the exceptions consumers raise to steer their own lifecycle."""


class StopConsumer(ConsumerControl):
    """Raised by a handler to end the consumer instance cleanly."""


class AcceptConnection(ConsumerControl):
    """Raised inside ``connect()`` to accept the WebSocket."""


class DenyConnection(ConsumerControl):
    """Raised inside ``connect()`` to reject the WebSocket (close before accept)."""
