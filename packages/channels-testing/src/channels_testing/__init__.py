"""Test helpers for ASGI applications and Channels consumers.

Communicators drive an application in the test's own event loop, with no
server and no sockets: ``ApplicationCommunicator`` for any ASGI application,
``HttpCommunicator`` and ``WebsocketCommunicator`` with shortcuts for HTTP
and WebSocket. Also importable as ``channels.testing``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asgiref.testing import ApplicationCommunicator

from .http import HttpCommunicator
from .websocket import WebsocketCommunicator

if TYPE_CHECKING:
    from .live import ChannelsLiveServerTestCase

__all__ = [
    "ApplicationCommunicator",
    "ChannelsLiveServerTestCase",
    "HttpCommunicator",
    "WebsocketCommunicator",
    "__version__",
]


def __getattr__(name: str) -> object:
    # Imported on first use: it needs Django and channels-server, which the
    # communicators do not.
    if name == "ChannelsLiveServerTestCase":
        from .live import ChannelsLiveServerTestCase

        return ChannelsLiveServerTestCase
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__version__ = "0.2.0"
