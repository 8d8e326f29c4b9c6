"""Checks of the options both Redis layers take, and of names, in one place."""

from __future__ import annotations

from collections.abc import Callable

from channels.layers import BaseChannelLayer
from channels.layers.names import require_valid_channel_name, require_valid_group_name

from .errors import InvalidConfiguration

__all__ = ["check_shared_options", "name_checks"]

#: What a subclass changes to accept other names (as Channels' layers allow).
_NAME_RULES = (
    "MAX_NAME_LENGTH",
    "channel_name_regex",
    "group_name_regex",
    "match_type_and_length",
    "require_valid_channel_name",
    "require_valid_group_name",
)


def name_checks(
    layer: BaseChannelLayer,
) -> tuple[Callable[[str], object], Callable[[str], object]]:
    """How *layer* checks channel and group names: Channels' rules, or the
    layer's own methods when its class changes any of the rules (a longer
    ``MAX_NAME_LENGTH``, say). Each raises ``TypeError`` for a bad name."""
    layer_class = type(layer)
    if all(getattr(layer_class, rule) is getattr(BaseChannelLayer, rule) for rule in _NAME_RULES):
        # The plain functions: the checks run on every operation.
        return require_valid_channel_name, require_valid_group_name
    return layer.require_valid_channel_name, layer.require_valid_group_name


def check_shared_options(
    prefix: object, random_prefix_length: object, max_message_size: object
) -> None:
    """Raise ``InvalidConfiguration`` for a bad ``prefix``, ``random_prefix_length``
    or ``max_message_size``, naming the value and the rule."""
    if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
        raise InvalidConfiguration(
            f"prefix must be a non-empty string without braces (Redis Cluster hash tags), "
            f"not {prefix!r}"
        )
    if isinstance(random_prefix_length, bool) or not isinstance(random_prefix_length, int):
        raise InvalidConfiguration(
            f"random_prefix_length must be an integer, not {random_prefix_length!r}"
        )
    if not 4 <= random_prefix_length <= 40:
        raise InvalidConfiguration(
            f"random_prefix_length must be between 4 and 40, not {random_prefix_length}"
        )
    if max_message_size is not None and (
        isinstance(max_message_size, bool)
        or not isinstance(max_message_size, int)
        or max_message_size < 1
    ):
        raise InvalidConfiguration(
            f"max_message_size must be a positive integer or None, not {max_message_size!r}"
        )
