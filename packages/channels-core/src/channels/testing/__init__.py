"""Test helpers, from the channels-testing package.

``from channels.testing import WebsocketCommunicator`` keeps working as it
always has, and so do the module paths Channels has
(``channels.testing.websocket``, ``channels.testing.http``,
``channels.testing.application``, ``channels.testing.live``); the helpers
themselves ship separately so that production installs do not carry them.
Importing this package loads those modules, and :mod:`channels.routing`
through the live-server one, as in Channels.
"""

from __future__ import annotations

try:
    import channels_testing as _channels_testing
except ImportError as exc:  # pragma: no cover - exercised in a separate virtualenv
    if exc.name != "channels_testing":
        raise
    raise ImportError(
        "channels.testing needs the channels-testing package: pip install channels-testing"
    ) from exc

# "X as X": re-exported names (the list itself comes from channels_testing).
from .application import ApplicationCommunicator as ApplicationCommunicator
from .http import HttpCommunicator as HttpCommunicator
from .live import ChannelsLiveServerTestCase as ChannelsLiveServerTestCase
from .websocket import WebsocketCommunicator as WebsocketCommunicator

__version__ = _channels_testing.__version__

__all__ = list(_channels_testing.__all__)
