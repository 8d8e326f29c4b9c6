"""Test helpers, from the channels-testing package.

``from channels.testing import WebsocketCommunicator`` keeps working as it
always has; the helpers themselves ship separately so that production
installs do not carry them.
"""

from __future__ import annotations

try:
    from channels_testing import *  # noqa: F403
    from channels_testing import __all__  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a separate virtualenv
    if exc.name != "channels_testing":
        raise
    raise ImportError(
        "channels.testing needs the channels-testing package: pip install channels-testing"
    ) from exc
