"""``ApplicationCommunicator``: drive any ASGI application (from channels-testing)."""

from __future__ import annotations

from channels_testing import ApplicationCommunicator

__all__ = ["ApplicationCommunicator"]
