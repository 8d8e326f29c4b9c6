"""WebSocket frames as a client sends them, for tests that write raw bytes."""

from __future__ import annotations

import struct

__all__ = ["client_frame"]


def client_frame(first: int, payload: bytes) -> bytes:
    """A masked client frame whose first byte (FIN, RSV bits, opcode) is *first*.

    The masking key is all zeros (any key will do, RFC 6455 §5.3), so the
    payload goes as is: large payloads cost no per-byte work to build.
    """
    length = len(payload)
    if length < 126:
        head = bytes((first, 0x80 | length))
    elif length < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, length)
    return head + b"\x00\x00\x00\x00" + payload
