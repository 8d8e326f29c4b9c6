"""Test helpers for ASGI applications and Channels consumers.

Communicators drive an application in the test's own event loop, with no
server and no sockets: ``ApplicationCommunicator`` for any ASGI application,
``HttpCommunicator`` and ``WebsocketCommunicator`` with shortcuts for HTTP
and WebSocket. Also importable as ``channels.testing``.
"""

from __future__ import annotations

from asgiref.testing import ApplicationCommunicator

from .http import HttpCommunicator
from .websocket import WebsocketCommunicator

__all__ = [
    "ApplicationCommunicator",
    "HttpCommunicator",
    "WebsocketCommunicator",
    "__version__",
]

__version__ = "0.1.0"
