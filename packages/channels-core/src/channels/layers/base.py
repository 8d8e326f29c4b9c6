"""The base class every channel layer builds on."""

from __future__ import annotations

import fnmatch
import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Union

from .. import exceptions
from . import names

__all__ = [
    "BaseChannelLayer",
    "CapacityPattern",
    "require_positive_int",
    "require_positive_seconds",
]

#: A key of ``channel_capacity``: a glob string (``"http.request"``,
#: ``"websocket.send!*"``) or a compiled regular expression.
CapacityPattern = Union[str, "re.Pattern[str]"]


class BaseChannelLayer:
    """Common configuration and name checks for channel layers.

    Subclasses implement the coroutines of the Channel Layer Specification
    (``send``, ``receive``, ``new_channel`` and, with the matching entries in
    :attr:`extensions`, ``group_add``, ``group_discard``, ``group_send`` and
    ``flush``).

    :param expiry: seconds a message may wait unread before it is dropped.
    :param capacity: messages a channel may hold before ``send()`` raises
        :class:`~channels.exceptions.ChannelFull`.
    :param channel_capacity: per-channel capacities, a mapping of glob strings
        or compiled regular expressions to integers; the first pattern that
        matches a channel name wins, in the mapping's order.
    """

    MAX_NAME_LENGTH: ClassVar[int] = names.MAX_NAME_LENGTH
    #: The extensions of the specification this layer provides.
    extensions: ClassVar[list[str]] = []
    # The specification lists the two exceptions among a layer's attributes,
    # so callers can write ``except layer.ChannelFull`` for any layer.
    ChannelFull: ClassVar[type[exceptions.ChannelFull]] = exceptions.ChannelFull
    MessageTooLarge: ClassVar[type[exceptions.MessageTooLarge]] = exceptions.MessageTooLarge

    def __init__(
        self,
        expiry: float = 60,
        capacity: int = 100,
        channel_capacity: Mapping[CapacityPattern, int] | None = None,
    ) -> None:
        self.expiry = require_positive_seconds("expiry", expiry)
        self.capacity = require_positive_int("capacity", capacity)
        self.channel_capacity = self.compile_capacities(channel_capacity or {})

    # -- capacity --------------------------------------------------------------

    def compile_capacities(
        self, channel_capacity: Mapping[CapacityPattern, int]
    ) -> list[tuple[re.Pattern[str], int]]:
        """Turn the ``channel_capacity`` mapping into (regex, capacity) pairs."""
        if not isinstance(channel_capacity, Mapping):
            raise TypeError(
                "channel_capacity must be a mapping of patterns to capacities, not "
                f"{type(channel_capacity).__name__}: {channel_capacity!r}"
            )
        compiled: list[tuple[re.Pattern[str], int]] = []
        for pattern, value in channel_capacity.items():
            require_positive_int(f"channel_capacity[{pattern!r}]", value)
            if isinstance(pattern, re.Pattern):
                compiled.append((pattern, value))
            elif isinstance(pattern, str):
                compiled.append((re.compile(fnmatch.translate(pattern)), value))
            else:
                raise TypeError(
                    "channel_capacity keys must be glob strings or compiled regular "
                    f"expressions, not {type(pattern).__name__}: {pattern!r}"
                )
        return compiled

    def get_capacity(self, channel: str) -> int:
        """The capacity of *channel*: the first matching pattern, else the default."""
        for pattern, value in self.channel_capacity:
            if pattern.match(channel):
                return value
        return self.capacity

    # -- names -----------------------------------------------------------------
    #
    # Layers check names through these methods and attributes (as Channels'
    # do), so a layer that allows other names overrides the regexes or
    # MAX_NAME_LENGTH and every check follows.

    #: Channel names must match this (with ``match()``), once
    #: :meth:`match_type_and_length` has passed.
    channel_name_regex: ClassVar[re.Pattern[str]] = names.CHANNEL_NAME_REGEX
    #: Group names must match this (with ``match()``).
    group_name_regex: ClassVar[re.Pattern[str]] = names.GROUP_NAME_REGEX
    #: The message of the ``TypeError`` for a bad name, formatted with the kind
    #: of name (``"Channel"`` or ``"Group"``) and :attr:`MAX_NAME_LENGTH`; the
    #: bad value is added after it.
    invalid_name_error: ClassVar[str] = (
        "{} name must be a str shorter than {} characters made of ASCII letters, "
        "digits, hyphens, underscores and periods (a channel name may also hold one "
        "'!' or '?' after its first character)"
    )

    def match_type_and_length(self, name: object) -> bool:
        """True when *name* is a string shorter than :attr:`MAX_NAME_LENGTH`."""
        return isinstance(name, str) and len(name) < self.MAX_NAME_LENGTH

    def require_valid_channel_name(self, name: object, receive: bool = False) -> bool:
        """Raise ``TypeError`` unless *name* is a valid channel name; return True.

        With ``receive=True`` a process-specific name must end at its ``!``
        (a reader receives every local channel behind it).
        """
        if (
            not self.match_type_and_length(name)
            or not isinstance(name, str)
            or self.channel_name_regex.match(name) is None
        ):
            raise TypeError(self._invalid_name("Channel", name))
        if receive and "!" in name and not name.endswith("!"):
            raise TypeError(
                f"Channel name {name!r} is invalid for receive(): a process-specific "
                "name passed to receive() must end at its '!'"
            )
        return True

    def require_valid_group_name(self, name: object) -> bool:
        """Raise ``TypeError`` unless *name* is a valid group name; return True."""
        if (
            not self.match_type_and_length(name)
            or not isinstance(name, str)
            or self.group_name_regex.match(name) is None
        ):
            raise TypeError(self._invalid_name("Group", name))
        return True

    def _invalid_name(self, kind: str, name: object) -> str:
        if not isinstance(name, str):
            return f"{kind} name must be a str, not {type(name).__name__}: {name!r}"
        rule = self.invalid_name_error.format(kind, self.MAX_NAME_LENGTH)
        if len(name) >= self.MAX_NAME_LENGTH:
            return f"{rule}; {name[:20]!r}... is {len(name)} characters long"
        return f"{rule}; {name!r} is not one"

    def valid_channel_names(self, channel_names: Iterable[object], receive: bool = False) -> bool:
        """Check each of several channel names (a list, never a bare string)."""
        if isinstance(channel_names, (str, bytes)) or not isinstance(channel_names, Iterable):
            raise TypeError(f"channel_names must be a list of names, not {channel_names!r}")
        for name in channel_names:
            self.require_valid_channel_name(name, receive=receive)
        return True

    def non_local_name(self, name: str) -> str:
        """See :func:`channels.layers.names.non_local_name`."""
        return names.non_local_name(name)

    def valid_channel_name(self, channel_name: object, receive: bool = False) -> bool:
        """Deprecated spelling of :meth:`require_valid_channel_name`."""
        warnings.warn(
            "valid_channel_name() is deprecated; use require_valid_channel_name()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.require_valid_channel_name(channel_name, receive)

    def valid_group_name(self, group_name: object) -> bool:
        """Deprecated spelling of :meth:`require_valid_group_name`."""
        warnings.warn(
            "valid_group_name() is deprecated; use require_valid_group_name()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.require_valid_group_name(group_name)

    # -- the specification's coroutines ------------------------------------------

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement send()")

    async def receive(self, channel: str) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} does not implement receive()")

    async def new_channel(self, prefix: str = "specific.") -> str:
        raise NotImplementedError(f"{type(self).__name__} does not implement new_channel()")

    async def flush(self) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} does not implement flush() (the flush extension)"
        )

    async def group_add(self, group: str, channel: str) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} does not implement group_add() (the groups extension)"
        )

    async def group_discard(self, group: str, channel: str) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} does not implement group_discard() (the groups extension)"
        )

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} does not implement group_send() (the groups extension)"
        )

    async def close(self) -> None:
        """Release what the layer holds (connections, buffers). Optional."""


def require_positive_seconds(setting: str, value: object) -> float:
    """Return *value* if it is a positive number of seconds, else raise.

    ``TypeError`` for a value that is not a number (a bool is not one),
    ``ValueError`` for zero or a negative number.
    """
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(
            f"{setting} must be a number of seconds, not {type(value).__name__}: {value!r}"
        )
    if not value > 0:  # also refuses NaN
        raise ValueError(f"{setting} must be a positive number of seconds, not {value!r}")
    return value


def require_positive_int(setting: str, value: object) -> int:
    """Return *value* if it is an integer of at least 1, else raise.

    ``TypeError`` for a value that is not an int (a bool is not one),
    ``ValueError`` for zero or a negative number.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{setting} must be an integer, not {type(value).__name__}: {value!r}")
    if value < 1:
        raise ValueError(f"{setting} must be at least 1, not {value!r}")
    return value
