"""One bounded memo for the hot paths of every package.

Parsing a header line, hashing a channel name or looking up a capacity is
pure, and the same few keys come back again and again, so the answers are
worth keeping. The keys come from peers (clients, other processes), so what
is kept must be bounded: :class:`BoundedCache` holds at most ``size`` entries
and evicts the oldest when a new one comes, so a peer that sends endless
distinct keys costs ``size`` entries and a steady working set stays cached.

Private to the ``channels-*`` distributions (they pin each other's minor
version); not part of the Channels API.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

__all__ = ["BoundedCache"]

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(OrderedDict[K, V]):
    """A dict of at most *size* entries; :meth:`put` evicts the oldest one.

    Read it as a dict (``cache.get(key)``: a plain dict lookup, the fast
    path); store through :meth:`put`, which keeps the bound.
    """

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a BoundedCache holds at least one entry, not {size}")
        super().__init__()
        self.size = size

    def put(self, key: K, value: V) -> V:
        """Store *value* under *key*, evicting the oldest entry when full; return *value*."""
        if key not in self and len(self) >= self.size:
            self.popitem(last=False)
        self[key] = value
        return value
