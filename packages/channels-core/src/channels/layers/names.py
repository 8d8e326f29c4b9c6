"""Channel and group name rules (Channel Layer Specification, "Channels" and
"Strings and Unicode").

A name is made of ASCII letters, digits, hyphens, underscores and periods and
is shorter than :data:`MAX_NAME_LENGTH` characters. A channel name may also
hold one type character that splits it in two:

* ``!`` marks a *process-specific* channel: ``remote!local``. The part up to
  and including the ``!`` names the process's reader; the local part is
  chosen by that process.
* ``?`` marks a *single-reader* channel: ``name?local``.

Group names never hold a type character. Every check raises ``TypeError``
with a message that names the bad value and the rule it broke.
"""

from __future__ import annotations

import re

__all__ = [
    "CHANNEL_NAME_REGEX",
    "GROUP_NAME_REGEX",
    "MAX_NAME_LENGTH",
    "non_local_name",
    "require_valid_channel_name",
    "require_valid_group_name",
]

#: Names must be strictly shorter than this (the specification asks layers
#: to support at least 100 bytes; Channels has always capped names there).
MAX_NAME_LENGTH = 100

_NAME_CHARS = r"[A-Za-z0-9._\-]"
#: What a channel name looks like (length aside). Anchored at both ends with
#: ``\Z``, so ``match()`` checks the whole name ("$" would let a trailing
#: newline through).
CHANNEL_NAME_REGEX = re.compile(rf"{_NAME_CHARS}+(?:[!?]{_NAME_CHARS}*)?\Z")
#: What a group name looks like (length aside), anchored the same way.
GROUP_NAME_REGEX = re.compile(rf"{_NAME_CHARS}+\Z")

_CHANNEL_RULE = (
    "channel names may contain only ASCII letters, digits, hyphens, underscores "
    "and periods, plus at most one '!' (process-specific) or '?' (single-reader) "
    "after a non-empty prefix, and must be shorter than "
    f"{MAX_NAME_LENGTH} characters"
)
_GROUP_RULE = (
    "group names may contain only ASCII letters, digits, hyphens, underscores "
    f"and periods, and must be shorter than {MAX_NAME_LENGTH} characters"
)


def _require_name(kind: str, name: object, pattern: re.Pattern[str], rule: str) -> str:
    """Return *name* if it is a str that *pattern* matches, shorter than the limit."""
    if not isinstance(name, str):
        raise TypeError(f"{kind} name must be a str, not {type(name).__name__}: {name!r}")
    if len(name) >= MAX_NAME_LENGTH:
        raise TypeError(f"{kind} name {name[:20]!r}... is {len(name)} characters long: {rule}")
    if pattern.match(name) is None:
        raise TypeError(f"{kind} name {name!r} is invalid: {rule}")
    return name


def require_valid_channel_name(name: object, *, receive: bool = False) -> str:
    """Return *name* if it is a valid channel name, else raise ``TypeError``.

    With ``receive=True`` the name is one a reader listens on, and a
    process-specific name must end at its ``!`` (the reader receives every
    local channel behind it).
    """
    text = _require_name("Channel", name, CHANNEL_NAME_REGEX, _CHANNEL_RULE)
    if receive and "!" in text and not text.endswith("!"):
        raise TypeError(
            f"Channel name {text!r} is invalid for receive(): a process-specific "
            "name passed to receive() must end at its '!'"
        )
    return text


def require_valid_group_name(name: object) -> str:
    """Return *name* if it is a valid group name, else raise ``TypeError``."""
    return _require_name("Group", name, GROUP_NAME_REGEX, _GROUP_RULE)


def non_local_name(name: str) -> str:
    """The part of a process-specific name up to and including its ``!``.

    Capacity of process-specific channels is counted on this part, so every
    local channel behind one reader shares it (specification, "Capacity").
    Other names are returned unchanged.
    """
    bang = name.find("!")
    return name if bang < 0 else name[: bang + 1]
