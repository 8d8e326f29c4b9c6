"""What every stream checks of a message an application sends."""

from __future__ import annotations

from typing import Any

from ..errors import ApplicationError

__all__ = ["message_type"]


def message_type(message: Any) -> str:
    """The ``type`` of an ASGI message; :class:`ApplicationError` if it has none."""
    try:
        kind: str = message["type"]
    except (KeyError, TypeError):
        raise ApplicationError(
            f"ASGI message must be a dict with a 'type', not {message!r}"
        ) from None
    return kind
