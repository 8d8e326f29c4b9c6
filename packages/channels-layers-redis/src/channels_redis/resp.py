"""RESP, the Redis protocol (versions 2 and 3), without any I/O.

:func:`pack_command` turns a command into bytes; a :class:`ReplyParser` is fed
the bytes a connection receives and hands back whole replies, in order. The
socket side lives in :mod:`channels_redis.link`.

Replies come out as redis-py gives them undecoded, so that code can use
either: simple, bulk and verbatim strings as ``bytes``, integers and big
numbers as ``int``, doubles as ``float``, booleans as ``bool``, arrays and
sets as ``list``, maps as ``dict``, a null as ``None``; an error reply as an
*instance* of the matching ``redis.exceptions`` class (``NoScriptError``,
``ReadOnlyError``, ... or ``ResponseError``), for the caller to raise. The
RESP3 types matter because redis-py may greet the server with ``HELLO 3``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ExecAbortError,
    NoPermissionError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)

__all__ = ["NOTHING", "ProtocolError", "Push", "ReplyParser", "pack_command"]


def pack_command(args: Sequence[Any]) -> bytes:
    """One command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    append = parts.append
    for arg in args:
        # fast path: bench/redis_layer.py "serial" packs two commands a round
        # trip; exact types first, isinstance() only for subclasses and floats.
        kind = type(arg)
        if kind is str:
            data = arg.encode("utf-8")
        elif kind is bytes:
            data = arg
        elif kind is int:
            data = b"%d" % arg
        elif isinstance(arg, bytes):
            data = bytes(arg)
        elif isinstance(arg, str):
            data = arg.encode("utf-8")
        elif isinstance(arg, int):
            data = b"%d" % arg
        elif isinstance(arg, float):
            data = repr(arg).encode("ascii")
        else:
            raise TypeError(f"cannot send {type(arg).__name__} to Redis: {arg!r}")
        append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class Push(list[Any]):
    """An out-of-band RESP3 push message: not the reply to any command."""


class ProtocolError(Exception):
    """The server sent bytes that are not RESP."""


#: What :meth:`ReplyParser.next` returns while no whole reply has arrived.
NOTHING: Any = object()

# Error replies by their first word; anything else is a plain ResponseError.
_ERRORS: dict[bytes, type[RedisError]] = {
    b"NOSCRIPT": NoScriptError,
    b"READONLY": ReadOnlyError,
    b"LOADING": BusyLoadingError,
    b"EXECABORT": ExecAbortError,
    b"NOPERM": NoPermissionError,
    b"NOAUTH": AuthenticationError,
    b"WRONGPASS": AuthenticationError,
}


def _error(line: bytes) -> RedisError:
    word, _, rest = line.partition(b" ")
    kind = _ERRORS.get(word)
    text = line.decode("utf-8", "replace")
    if kind is None:
        # redis-py drops the generic "ERR " prefix; so do we.
        return ResponseError(rest.decode("utf-8", "replace") if word == b"ERR" else text)
    return kind(rest.decode("utf-8", "replace"))


class _Incomplete(Exception):
    """The buffer ends inside a reply; *needed* is the length it must reach."""

    def __init__(self, needed: int) -> None:
        self.needed = needed


class ReplyParser:
    """Splits the byte stream of one connection into replies.

    ``feed(data)`` as bytes arrive; ``next()`` returns the next whole reply
    or :data:`NOTHING`. A reply that arrives in many pieces is not parsed
    again for every piece: the parser remembers how many bytes it needs.
    """

    __slots__ = ("_buffer", "_needed", "_position")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._position = 0
        self._needed = 0

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next(self) -> Any:
        buffer = self._buffer
        if len(buffer) < self._needed or self._position >= len(buffer):
            return NOTHING
        try:
            reply, end = self._parse(self._position)
        except _Incomplete as incomplete:
            self._needed = incomplete.needed
            return NOTHING
        except ValueError as exc:  # a length or an integer that is not one
            raise ProtocolError(f"malformed reply from Redis: {exc}") from None
        self._needed = 0
        if end == len(buffer):
            buffer.clear()
            self._position = 0
        elif end > 65536:
            del buffer[:end]
            self._position = 0
        else:
            self._position = end
        return reply

    def _line(self, start: int) -> tuple[bytes, int]:
        end = self._buffer.find(b"\r\n", start)
        if end < 0:
            raise _Incomplete(len(self._buffer) + 1)
        return bytes(self._buffer[start:end]), end + 2

    def _parse(self, start: int) -> tuple[Any, int]:
        # The common replies (bulk strings, integers, arrays of them) are read
        # here without the helpers: bench/redis_layer.py "serial" parses two
        # replies a round trip.
        buffer = self._buffer
        if start >= len(buffer):
            raise _Incomplete(start + 1)
        kind = buffer[start]
        end = buffer.find(b"\r\n", start + 1)
        if end < 0:
            raise _Incomplete(len(buffer) + 1)
        if kind == 0x24:  # $ bulk string
            length = int(buffer[start + 1 : end])
            if length < 0:
                return None, end + 2
            at = end + 2
            stop = at + length
            if len(buffer) < stop + 2:
                raise _Incomplete(stop + 2)
            return bytes(buffer[at:stop]), stop + 2
        if kind == 0x3A:  # : integer
            return int(buffer[start + 1 : end]), end + 2
        if kind == 0x2A:  # * array
            count = int(buffer[start + 1 : end])
            at = end + 2
            if count < 0:
                return None, at
            items = []
            for _ in range(count):
                item, at = self._parse(at)
                items.append(item)
            return items, at
        if kind == 0x2B:  # + simple string
            return bytes(buffer[start + 1 : end]), end + 2
        if kind == 0x2D:  # - error
            return _error(bytes(buffer[start + 1 : end])), end + 2
        return self._parse_resp3(kind, start)

    def _bulk(self, start: int) -> tuple[bytes | None, int]:
        line, at = self._line(start + 1)
        length = int(line)
        if length < 0:
            return None, at
        end = at + length
        if len(self._buffer) < end + 2:
            raise _Incomplete(end + 2)
        return bytes(self._buffer[at:end]), end + 2

    def _parse_resp3(self, kind: int, start: int) -> tuple[Any, int]:
        if kind == 0x5F:  # _ null
            return None, self._line(start + 1)[1]
        if kind == 0x23:  # # boolean
            line, at = self._line(start + 1)
            return line == b"t", at
        if kind == 0x2C:  # , double
            line, at = self._line(start + 1)
            return float(line), at
        if kind == 0x28:  # ( big number
            line, at = self._line(start + 1)
            return int(line), at
        if kind in (0x3D, 0x21):  # = verbatim string, ! bulk error
            text, at = self._bulk(start)
            if text is None:
                return None, at
            if kind == 0x21:
                return _error(text), at
            return text[4:], at  # without its "txt:" format
        if kind in (0x7E, 0x3E, 0x25, 0x7C):  # ~ set, > push, % map, | attribute
            line, at = self._line(start + 1)
            count = int(line) * (2 if kind in (0x25, 0x7C) else 1)
            items = []
            for _ in range(count):
                item, at = self._parse(at)
                items.append(item)
            if kind == 0x7C:  # attributes describe the reply that follows
                return self._parse(at)
            if kind == 0x25:
                return dict(zip(items[::2], items[1::2], strict=True)), at
            if kind == 0x3E:
                return Push(items), at
            return items, at
        raise ProtocolError(f"unexpected byte {bytes([kind])!r} from Redis at the start of a reply")
