"""``ChannelsLiveServerTestCase`` (from channels-testing, :mod:`channels_testing.live`).

This module imports without channels-server; a live-server test that runs
without it fails in ``setUpClass`` with an ``ImportError`` that says what to
install.
"""

from __future__ import annotations

from channels_testing.live import (
    ChannelsLiveServerTestCase,
    ChannelsServerProcess,
    make_application,
    set_database_connection,
)

__all__ = [
    "ChannelsLiveServerTestCase",
    "ChannelsServerProcess",
    "make_application",
    "set_database_connection",
]
