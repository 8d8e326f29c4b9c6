"""``HttpCommunicator`` (from channels-testing, :mod:`channels_testing.http`)."""

from __future__ import annotations

from channels_testing.http import HttpCommunicator

__all__ = ["HttpCommunicator"]
