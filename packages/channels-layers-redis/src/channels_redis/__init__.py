"""Redis channel layers for Channels.

Configure one in ``CHANNEL_LAYERS`` by its import path:

* ``"channels_redis.core.RedisChannelLayer"``: queues in Redis lists, with
  expiry, capacities, groups, sharding over several servers, Sentinel and
  Redis Cluster;
* ``"channels_redis.pubsub.RedisPubSubChannelLayer"``: Redis Pub/Sub, for
  lower latency when messages need not wait for a receiver.
"""

from __future__ import annotations

from channels import _installation  # noqa: F401  (refuses mixed folders)

from .core import RedisChannelLayer
from .errors import (
    InvalidConfiguration,
    MessageTooLarge,
    RedisCommandError,
    RedisConnectionError,
    RedisLayerError,
    SendOutcomeUnknown,
    UndecryptableMessage,
    UnknownProcessChannel,
)
from .pubsub import RedisPubSubChannelLayer

__all__ = [
    "InvalidConfiguration",
    "MessageTooLarge",
    "RedisChannelLayer",
    "RedisCommandError",
    "RedisConnectionError",
    "RedisLayerError",
    "RedisPubSubChannelLayer",
    "SendOutcomeUnknown",
    "UndecryptableMessage",
    "UnknownProcessChannel",
    "__version__",
]

__version__ = "0.2.0"
