"""The helpers channels_redis 4 has in ``channels_redis.utils``, for code that imports them.

* :func:`_consistent_hash` gives the shard index channels_redis gives a
  name: CRC-32 of the name, its low twelve bits (0-4095) cut into
  ``ring_size`` equal ranges. Applications use it to spread keys of their
  own over the servers of ``hosts`` (with :func:`create_pool` or a layer's
  ``connection()``); the layers themselves place their keys by another
  hash (see :mod:`channels_redis.sharding`), which moves fewer keys when
  servers are added.
* :func:`decode_hosts` turns a ``hosts`` setting into one dict per server,
  the form :func:`create_pool` takes.
* :func:`create_pool` makes a redis-py connection pool for one such entry,
  with exactly the options the entry gives (none of the layers' defaults).
* :func:`_close_redis` closes a redis-py client and its pool.
* :func:`_wrap_close` makes an event loop's ``close()`` first flush and
  forget the layer a proxy keeps for that loop.
"""

from __future__ import annotations

import asyncio
import binascii
import types
from collections.abc import Mapping
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

__all__ = ["_close_redis", "_consistent_hash", "_wrap_close", "create_pool", "decode_hosts"]

#: The host of an empty ``hosts``, as channels_redis decodes it.
DEFAULT_ADDRESS = "redis://localhost:6379"


def _consistent_hash(value: str | bytes, ring_size: int) -> int:
    """The shard (``0 <= index < ring_size``) channels_redis 4 gives *value*.

    The same name gets the same index here as in channels_redis, for every
    ring size: the low twelve bits of its CRC-32 (of UTF-8 for a ``str``)
    fall into one of ``ring_size`` equal slices of 0-4095.
    """
    if ring_size == 1:
        return 0
    if isinstance(value, str):
        value = value.encode("utf-8")
    position = binascii.crc32(value) & 0xFFF
    # The division in floating point, as channels_redis does it: an integer
    # formula would differ for some positions at slice boundaries.
    return int(position / (4096 / float(ring_size)))


def decode_hosts(hosts: Any) -> list[dict[str, Any]]:
    """One dict of connection arguments per entry of a ``hosts`` setting.

    Empty or ``None``: ``[{"address": "redis://localhost:6379"}]``; a dict
    is taken as it is; a ``(host, port)`` pair becomes ``{"host": ...,
    "port": ...}``; anything else (a URL) becomes ``{"address": entry}``.
    A single string instead of a list raises ``ValueError``.
    """
    if not hosts:
        return [{"address": DEFAULT_ADDRESS}]
    if isinstance(hosts, (str, bytes)):
        raise ValueError(
            f"hosts must be a list of Redis hosts, even for one: wrap it in a list, "
            f"hosts=[{hosts!r}]"
        )
    decoded: list[dict[str, Any]] = []
    for entry in hosts:
        if isinstance(entry, dict):
            decoded.append(entry)
        elif isinstance(entry, (tuple, list)):
            decoded.append({"host": entry[0], "port": entry[1]})
        else:
            decoded.append({"address": entry})
    return decoded


def create_pool(host: Mapping[str, Any]) -> ConnectionPool:
    """A redis-py asyncio connection pool for one entry of :func:`decode_hosts`.

    ``{"address": url, **options}`` opens the URL (a ``(host, port)`` pair
    is taken too); ``{"sentinels": [...], "master_name": name,
    "sentinel_kwargs": {...}, **options}`` follows the master that the
    Sentinels name; any other dict is the keyword arguments of
    ``ConnectionPool``. *host* itself is not modified.
    """
    options = dict(host)
    if "address" in options:
        address = options.pop("address")
        if isinstance(address, (tuple, list)):
            options.setdefault("host", address[0])
            options.setdefault("port", address[1])
            return ConnectionPool(**options)
        pool: ConnectionPool = ConnectionPool.from_url(address, **options)
        return pool
    master_name = options.pop("master_name", None)
    if master_name is not None:
        sentinels = options.pop("sentinels")
        sentinel_kwargs = options.pop("sentinel_kwargs", None)
        return SentinelConnectionPool(
            master_name,
            Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs),  # type: ignore[no-untyped-call]
            **options,
        )
    return ConnectionPool(**options)


async def _close_redis(connection: Redis) -> None:
    """Close a redis-py client and the connection pool it uses."""
    await connection.aclose(close_connection_pool=True)


def _wrap_close(proxy: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Before *loop* closes, flush and forget ``proxy._layers[loop]``.

    The pattern of channels_redis 4, whose layers keep one inner layer per
    event loop in ``_layers``: code that builds its own such proxy calls
    this once per loop. The wrapper runs once, then ``close()`` is the
    loop's own again.
    """
    original_close = loop.close

    def close(self: asyncio.AbstractEventLoop, *args: Any, **kwargs: Any) -> Any:
        layers = getattr(proxy, "_layers", None)
        if layers is not None and loop in layers:
            layer = layers.pop(loop)
            loop.run_until_complete(layer.flush())
        self.close = original_close  # type: ignore[method-assign]
        return original_close(*args, **kwargs)

    loop.close = types.MethodType(close, loop)  # type: ignore[method-assign]
