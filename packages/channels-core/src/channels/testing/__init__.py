"""Test helpers, from the channels-testing package.

``from channels.testing import WebsocketCommunicator`` keeps working as it
always has; the helpers themselves ship separately so that production
installs do not carry them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

try:
    import channels_testing as _channels_testing

    # "X as X": re-exported names (the list itself comes from channels_testing).
    from channels_testing import ApplicationCommunicator as ApplicationCommunicator
    from channels_testing import HttpCommunicator as HttpCommunicator
    from channels_testing import WebsocketCommunicator as WebsocketCommunicator
except ImportError as exc:  # pragma: no cover - exercised in a separate virtualenv
    if exc.name != "channels_testing":
        raise
    raise ImportError(
        "channels.testing needs the channels-testing package: pip install channels-testing"
    ) from exc

__all__ = list(_channels_testing.__all__)


def __getattr__(name: str) -> object:
    # Names channels_testing provides lazily (ChannelsLiveServerTestCase needs
    # channels-server, which the communicators do not).
    if name in __all__:
        return getattr(_channels_testing, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
    from channels_testing import ChannelsLiveServerTestCase  # noqa: F401
