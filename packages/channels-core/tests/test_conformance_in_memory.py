"""The channel-layer conformance suite, run against the in-memory layer."""

from __future__ import annotations

from typing import Any

import pytest

from channels.layers import InMemoryChannelLayer
from channels_testing.conformance import ChannelLayerConformance, LayerFactory


class TestInMemoryConformance(ChannelLayerConformance):
    # The in-memory layer keeps time with time.monotonic(), to the
    # microsecond: a message made with expiry=1 is gone a second later.
    expiry_wait = 1.3

    @pytest.fixture
    def make_channel_layer(self) -> LayerFactory:
        def make(**options: Any) -> InMemoryChannelLayer:
            return InMemoryChannelLayer(**options)

        return make
