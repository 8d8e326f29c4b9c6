"""Channels: Django beyond HTTP.

WebSockets, long-poll and server-sent events, background workers and
messaging between processes, on ASGI.
"""

from __future__ import annotations

from . import _installation  # noqa: F401  (refuses a folder mixed with another distribution)

__all__ = ["DEFAULT_CHANNEL_LAYER", "__version__"]

__version__ = "0.2.0"

#: The alias in ``CHANNEL_LAYERS`` that consumers and ``get_channel_layer()``
#: use unless told otherwise.
DEFAULT_CHANNEL_LAYER = "default"
