"""The channel layers a project configures in ``CHANNEL_LAYERS``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from .. import DEFAULT_CHANNEL_LAYER
from ..exceptions import InvalidChannelLayerError
from .base import BaseChannelLayer

__all__ = ["ChannelLayerManager", "channel_layers", "get_channel_layer"]


class ChannelLayerManager:
    """Builds each configured layer once, on first use, and keeps it.

    ``CHANNEL_LAYERS`` maps an alias to ``{"BACKEND": "dotted.path",
    "CONFIG": {...}, "TEST_CONFIG": {...}}``. The built layers are dropped
    whenever Django reports that ``CHANNEL_LAYERS`` changed (as
    ``override_settings`` does in tests), so the next use sees the new
    setting.
    """

    def __init__(self) -> None:
        self.backends: dict[str, Any] = {}
        setting_changed.connect(self._reset_backends)

    def _reset_backends(self, setting: str, **kwargs: Any) -> None:
        if setting == "CHANNEL_LAYERS":
            self.backends = {}

    @property
    def configs(self) -> dict[str, Any]:
        configs = getattr(settings, "CHANNEL_LAYERS", None) or {}
        if not isinstance(configs, dict):
            raise InvalidChannelLayerError(
                f"CHANNEL_LAYERS must be a dict of aliases, not {type(configs).__name__}"
            )
        return configs

    def make_backend(self, name: str) -> Any:
        """Build the layer configured under *name* from its ``CONFIG``."""
        config = self._config(name).get("CONFIG", {})
        return self._make_backend(name, config)

    def make_test_backend(self, name: str) -> Any:
        """Build the layer configured under *name* from its ``TEST_CONFIG``."""
        config = self._config(name)
        if "TEST_CONFIG" not in config:
            raise InvalidChannelLayerError(f"No TEST_CONFIG is set for the channel layer {name!r}")
        return self._make_backend(name, config["TEST_CONFIG"])

    def _config(self, name: str) -> dict[str, Any]:
        config = self.configs[name]
        if not isinstance(config, dict):
            raise InvalidChannelLayerError(
                f"CHANNEL_LAYERS[{name!r}] must be a dict with a BACKEND, not {config!r}"
            )
        return config

    def _make_backend(self, name: str, config: Any) -> Any:
        backend = self._config(name).get("BACKEND")
        if not backend:
            raise InvalidChannelLayerError(f"No BACKEND is set for the channel layer {name!r}")
        if not isinstance(config, dict):
            raise InvalidChannelLayerError(
                f"The CONFIG of the channel layer {name!r} must be a dict, not {config!r}"
            )
        try:
            backend_class = import_string(backend)
        except ImportError as exc:
            raise InvalidChannelLayerError(
                f"Cannot import BACKEND {backend!r} of the channel layer {name!r}: {exc}"
            ) from exc
        return backend_class(**config)

    def __getitem__(self, key: str) -> Any:
        if key not in self.backends:
            self.backends[key] = self.make_backend(key)
        return self.backends[key]

    def __contains__(self, key: object) -> bool:
        return key in self.configs

    def set(self, key: str, layer: Any) -> Any:
        """Put *layer* in place of the one under *key*; return the old one (tests)."""
        old = self.backends.get(key)
        self.backends[key] = layer
        return old


#: The process's layers, built from ``CHANNEL_LAYERS``.
channel_layers = ChannelLayerManager()


def get_channel_layer(alias: str = DEFAULT_CHANNEL_LAYER) -> BaseChannelLayer | None:
    """The channel layer configured under *alias*, or ``None`` if there is none."""
    if alias not in channel_layers:
        return None
    return channel_layers[alias]  # type: ignore[no-any-return]
