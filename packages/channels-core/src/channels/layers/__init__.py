"""Channel layers: messaging between consumers, processes and machines.

``channels.layers`` is the import path users configure
(``"channels.layers.InMemoryChannelLayer"``) and call
(``get_channel_layer()``); the parts live in submodules.
"""

from __future__ import annotations

# First: when Channels was installed over channels-core, this is the first
# module of ours that runs (see channels._installation).
from .. import _installation  # noqa: F401
from .base import BaseChannelLayer, CapacityPattern
from .in_memory import InMemoryChannelLayer
from .names import (
    MAX_NAME_LENGTH,
    non_local_name,
    require_valid_channel_name,
    require_valid_group_name,
)
from .registry import ChannelLayerManager, channel_layers, get_channel_layer

__all__ = [
    "MAX_NAME_LENGTH",
    "BaseChannelLayer",
    "CapacityPattern",
    "ChannelLayerManager",
    "InMemoryChannelLayer",
    "channel_layers",
    "get_channel_layer",
    "non_local_name",
    "require_valid_channel_name",
    "require_valid_group_name",
]
