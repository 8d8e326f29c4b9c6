"""Room names: which ones are allowed, and the channel-layer group of each room.

People name rooms whatever they like ("Lobby", "café", "общий чат", "🎉 party"),
but channel-layer group names may only hold ASCII letters, digits, hyphens,
underscores and periods, and must be shorter than 100 characters. So a room's
group is never the room name itself; it is derived from it:

``chat.<slug>.<digest>``
    *slug* is a readable ASCII rendering of the name (at most 40 characters,
    for logs and ``redis-cli``), *digest* a BLAKE2b hash of the whole name.
    Two different room names always get different groups (the digest covers
    every character), and the same name always gets the same group, in every
    process.

A room name is any text that:

* is 1 to :data:`MAX_ROOM_NAME_LENGTH` characters long;
* has no ``/`` (it is a segment of the room's URL);
* is not ``.`` or ``..`` (browsers fold those URL segments away);
* has no control characters.

Names are compared in Unicode NFC form, so "café" typed with a combining
accent is the same room as "café" typed with a precomposed "é". Case and
spaces matter: "Lobby" and "lobby" are two rooms.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

__all__ = ["MAX_ROOM_NAME_LENGTH", "InvalidRoomName", "clean_room_name", "group_name_for"]

#: The longest room name, in characters (Unicode code points, after NFC).
MAX_ROOM_NAME_LENGTH = 100

# Long enough to recognise a room in logs, short enough that the group name
# stays far below the channel layers' 100-character limit.
_SLUG_LENGTH = 40
# 80 bits: a collision between two room names is not a practical concern.
_DIGEST_BYTES = 10
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


class InvalidRoomName(ValueError):
    """A room name that breaks the rule; ``str()`` is a message for the user.

    :attr:`code` names the broken rule for programs: ``empty``, ``too_long``,
    ``slash``, ``dot_segment`` or ``control_character``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def clean_room_name(name: object) -> str:
    """Return *name* in the form rooms are known by (NFC), or raise :class:`InvalidRoomName`.

    The messages are short enough to be a WebSocket close reason (at most 123
    bytes, RFC 6455 section 5.5).
    """
    if not isinstance(name, str):
        raise InvalidRoomName("empty", f"A room name must be text, not {type(name).__name__}.")
    name = unicodedata.normalize("NFC", name)
    if not name:
        raise InvalidRoomName("empty", "Enter a room name.")
    if len(name) > MAX_ROOM_NAME_LENGTH:
        raise InvalidRoomName(
            "too_long",
            f"Room names can be at most {MAX_ROOM_NAME_LENGTH} characters long; "
            f"this one has {len(name)}.",
        )
    if "/" in name:
        raise InvalidRoomName("slash", "Room names cannot contain '/'.")
    if name in {".", ".."}:
        raise InvalidRoomName("dot_segment", "A room cannot be called '.' or '..'.")
    # Cc: control characters (NUL, newlines, ...); Cs: lone surrogates, which
    # are not text and cannot be encoded as UTF-8.
    if any(unicodedata.category(char) in {"Cc", "Cs"} for char in name):
        raise InvalidRoomName("control_character", "Room names cannot contain control characters.")
    return name


def group_name_for(room_name: str) -> str:
    """The channel-layer group of the room *room_name* (which must be clean).

    >>> group_name_for("Lobby")
    'chat.lobby.1e3c04ae89b4c7afa736'
    """
    digest = hashlib.blake2b(room_name.encode("utf-8"), digest_size=_DIGEST_BYTES).hexdigest()
    # NFKD splits accented letters into letter + accent, so "café" reads "cafe".
    ascii_form = unicodedata.normalize("NFKD", room_name).encode("ascii", "ignore").decode()
    slug = _NOT_SLUG.sub("-", ascii_form.lower()).strip("-")[:_SLUG_LENGTH].rstrip("-")
    return f"chat.{slug}.{digest}" if slug else f"chat.{digest}"
