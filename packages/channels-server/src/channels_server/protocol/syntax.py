"""HTTP field syntax, in one place for both HTTP engines and the WebSocket handshake.

RFC 9110 §5.6.2 defines the token that header names, methods and
WebSocket subprotocols are made of::

    token = 1*tchar
    tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
            "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA

and §5.5 the field value: visible characters, spaces and tabs, and obs-text
(bytes above 0x7f); CR, LF and NUL are never allowed, and a recipient may
refuse the other control characters.

The request side (:func:`find_control_in_request_value`) and the response
side (:func:`response_field`, for what an application sends) refuse a little
differently, as each function says. h11 and llhttp check request header
names themselves.
"""

from __future__ import annotations

import re
from typing import cast

from ..errors import ApplicationError

__all__ = [
    "find_control_in_request_value",
    "find_control_in_response_value",
    "is_token",
    "response_field",
]

#: The whole of *data* is an RFC 9110 §5.6.2 token (a match object, or None).
is_token = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+").fullmatch

#: The first control character RFC 9110 §5.5 lets a recipient reject, or
#: NEL (0x85), in a request field value (a match object, or None). NEL is a
#: line break for ``str.splitlines()`` once the value is decoded as Latin-1.
#: (h11 has already refused NUL, CR, LF, VT and FF; this catches the rest,
#: \x1c-\x1e included, in one search over all values.)
find_control_in_request_value = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f\x85]").search

#: The first control character in a response field value (a match object,
#: or None). CR and LF would split the header; the other CTLs are refused
#: too (RFC 9110 §5.5). Bytes above 0x7f are obs-text and pass, as h11 lets them.
find_control_in_response_value = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]").search


def response_field(item: object, what: str) -> tuple[bytes, bytes]:
    """One header (or trailer) an application wants to send, checked.

    :param item: what the application gave: a ``(name, value)`` pair of bytes.
    :param what: what it is, for the error message (``"response header"``).
    :returns: the name and the value, unchanged.
    :raises ~channels_server.errors.ApplicationError: *item* is not a pair
        of bytes, the name is not a token, or the value holds a control
        character.
    """
    try:
        # (A cast only for the checker: whatever it is, it is unpacked.)
        name, value = cast("tuple[object, object]", item)
    except (TypeError, ValueError):
        raise ApplicationError(f"Each {what} must be a (name, value) pair, not {item!r}") from None
    if not isinstance(name, bytes) or not isinstance(value, bytes):
        raise ApplicationError(f"The name and value of each {what} must be bytes, not {item!r}")
    if not is_token(name):
        raise ApplicationError(f"Invalid {what} name {name!r}")
    if find_control_in_response_value(value):
        raise ApplicationError(
            f"Invalid {what} {name!r}: a control character in its value {value!r}"
        )
    return name, value
