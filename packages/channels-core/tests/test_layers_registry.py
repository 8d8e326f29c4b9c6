"""get_channel_layer() and the registry built from CHANNEL_LAYERS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from channels.exceptions import InvalidChannelLayerError
from channels.layers import (
    BaseChannelLayer,
    ChannelLayerManager,
    InMemoryChannelLayer,
    channel_layers,
    get_channel_layer,
)

IN_MEMORY = "channels.layers.InMemoryChannelLayer"


@pytest.fixture(autouse=True)
def _restore_registry() -> Iterator[None]:
    """Give the next test the layers this one found, whatever it replaced."""
    saved = dict(channel_layers.backends)
    yield
    channel_layers.backends = saved


def test_default_alias_is_the_configured_layer() -> None:
    layer = get_channel_layer()
    assert isinstance(layer, InMemoryChannelLayer)
    assert get_channel_layer("default") is layer
    assert get_channel_layer(alias="default") is layer


def test_a_layer_is_built_once_and_kept() -> None:
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": IN_MEMORY}}):
        assert get_channel_layer() is get_channel_layer()


def test_config_is_passed_to_the_backend() -> None:
    config = {"capacity": 7, "expiry": 5, "group_expiry": 30}
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": IN_MEMORY, "CONFIG": config}}):
        layer = get_channel_layer()
        assert isinstance(layer, InMemoryChannelLayer)
        assert (layer.capacity, layer.expiry, layer.group_expiry) == (7, 5, 30)


def test_layers_are_rebuilt_when_the_setting_changes() -> None:
    before = get_channel_layer()
    small = {"default": {"BACKEND": IN_MEMORY, "CONFIG": {"capacity": 3}}}
    with override_settings(CHANNEL_LAYERS=small):
        inside = get_channel_layer()
        assert inside is not before
        assert isinstance(inside, InMemoryChannelLayer)
        assert inside.capacity == 3
    after = get_channel_layer()
    assert isinstance(after, InMemoryChannelLayer)
    assert after is not inside
    assert after.capacity == 100


def test_each_alias_has_its_own_layer() -> None:
    configs = {
        "default": {"BACKEND": IN_MEMORY},
        "other": {"BACKEND": IN_MEMORY, "CONFIG": {"capacity": 2}},
    }
    with override_settings(CHANNEL_LAYERS=configs):
        default, other = get_channel_layer(), get_channel_layer("other")
        assert default is not other
        assert isinstance(other, InMemoryChannelLayer)
        assert other.capacity == 2
        assert "other" in channel_layers
        assert "missing" not in channel_layers


def test_missing_alias_is_none() -> None:
    assert get_channel_layer("no-such-alias") is None
    with override_settings(CHANNEL_LAYERS={}):
        assert get_channel_layer() is None


def test_unset_setting_is_none(settings: Any) -> None:
    del settings.CHANNEL_LAYERS
    assert get_channel_layer() is None


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param(
            {"BACKEND": "no.such.module.Layer"},
            "Cannot import BACKEND 'no.such.module.Layer' of the channel layer 'broken'",
            id="unimportable-module",
        ),
        pytest.param(
            {"BACKEND": "channels.layers.NoSuchLayer"},
            "Cannot import BACKEND 'channels.layers.NoSuchLayer' of the channel layer 'broken'",
            id="missing-class",
        ),
        pytest.param(
            {"BACKEND": "nodots"},
            "Cannot import BACKEND 'nodots' of the channel layer 'broken'",
            id="not-a-dotted-path",
        ),
        pytest.param(
            {"CONFIG": {}},
            "No BACKEND is set for the channel layer 'broken'",
            id="no-backend",
        ),
        pytest.param(
            {"BACKEND": ""},
            "No BACKEND is set for the channel layer 'broken'",
            id="empty-backend",
        ),
        pytest.param(
            {"BACKEND": IN_MEMORY, "CONFIG": [("capacity", 1)]},
            "The CONFIG of the channel layer 'broken' must be a dict",
            id="config-not-a-dict",
        ),
        pytest.param(
            "channels.layers.InMemoryChannelLayer",
            "CHANNEL_LAYERS['broken'] must be a dict with a BACKEND",
            id="alias-not-a-dict",
        ),
    ],
)
def test_bad_configuration_names_the_alias(config: Any, expected: str) -> None:
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": IN_MEMORY}, "broken": config}):
        with pytest.raises(InvalidChannelLayerError) as caught:
            get_channel_layer("broken")
        assert expected in str(caught.value)
        # The other aliases still work.
        assert isinstance(get_channel_layer(), InMemoryChannelLayer)


def test_invalid_channel_layer_error_is_a_value_error() -> None:
    assert issubclass(InvalidChannelLayerError, ValueError)


def test_setting_that_is_not_a_dict() -> None:
    with (
        override_settings(CHANNEL_LAYERS=["default"]),
        pytest.raises(InvalidChannelLayerError, match="CHANNEL_LAYERS must be a dict"),
    ):
        get_channel_layer()


def test_bad_option_in_config_is_reported_by_the_layer() -> None:
    config = {"default": {"BACKEND": IN_MEMORY, "CONFIG": {"capacity": 0}}}
    with (
        override_settings(CHANNEL_LAYERS=config),
        pytest.raises(ValueError, match="capacity must be at least 1, not 0"),
    ):
        get_channel_layer()


def test_make_test_backend_uses_test_config() -> None:
    configs = {
        "default": {
            "BACKEND": IN_MEMORY,
            "CONFIG": {"capacity": 50},
            "TEST_CONFIG": {"capacity": 5, "expiry": 2},
        }
    }
    with override_settings(CHANNEL_LAYERS=configs):
        test_layer = channel_layers.make_test_backend("default")
        assert isinstance(test_layer, InMemoryChannelLayer)
        assert (test_layer.capacity, test_layer.expiry) == (5, 2)
        # It is a new layer, not the one get_channel_layer() hands out.
        layer = get_channel_layer()
        assert isinstance(layer, InMemoryChannelLayer)
        assert layer is not test_layer
        assert layer.capacity == 50


def test_make_test_backend_without_test_config() -> None:
    with (
        override_settings(CHANNEL_LAYERS={"default": {"BACKEND": IN_MEMORY}}),
        pytest.raises(InvalidChannelLayerError, match=r"No TEST_CONFIG .* 'default'"),
    ):
        channel_layers.make_test_backend("default")


def test_make_test_backend_checks_test_config() -> None:
    configs = {"default": {"BACKEND": IN_MEMORY, "TEST_CONFIG": "capacity=5"}}
    with (
        override_settings(CHANNEL_LAYERS=configs),
        pytest.raises(InvalidChannelLayerError, match="channel layer 'default' must be"),
    ):
        channel_layers.make_test_backend("default")


def test_make_backend_builds_a_fresh_layer_each_time() -> None:
    first = channel_layers.make_backend("default")
    assert isinstance(first, InMemoryChannelLayer)
    assert channel_layers.make_backend("default") is not first


def test_set_replaces_a_layer_and_returns_the_old_one() -> None:
    original = get_channel_layer()
    replacement = InMemoryChannelLayer(capacity=9)
    assert channel_layers.set("default", replacement) is original
    assert get_channel_layer() is replacement
    assert channel_layers.set("default", original) is replacement
    assert get_channel_layer() is original


def test_set_before_first_use_returns_none() -> None:
    manager = ChannelLayerManager()
    layer = InMemoryChannelLayer()
    assert manager.set("default", layer) is None
    assert manager["default"] is layer


def test_a_custom_backend_class() -> None:
    configs = {"default": {"BACKEND": "channels.layers.BaseChannelLayer", "CONFIG": {"expiry": 9}}}
    with override_settings(CHANNEL_LAYERS=configs):
        layer = get_channel_layer()
        assert type(layer) is BaseChannelLayer
        assert layer.expiry == 9
