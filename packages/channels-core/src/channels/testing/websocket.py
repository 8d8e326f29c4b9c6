"""``WebsocketCommunicator`` (from channels-testing, :mod:`channels_testing.websocket`)."""

from __future__ import annotations

from channels_testing.websocket import WebsocketCommunicator

__all__ = ["WebsocketCommunicator"]
