"""Both layers over TLS (redis-server built with TLS, as Debian's is)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from channels_redis.core import RedisChannelLayer
from channels_redis.errors import RedisConnectionError
from channels_redis.pubsub import RedisPubSubChannelLayer


def tls_host(tls: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"address": tls["url"], "ssl_ca_certs": tls["ca"], **extra}


@pytest.mark.parametrize("layer_class", [RedisChannelLayer, RedisPubSubChannelLayer])
@pytest.mark.asyncio
async def test_channels_and_groups_over_tls(
    tls_redis: dict[str, Any],
    layer_class: type[Any],
    check_channels_and_groups: Callable[[Any, str], Awaitable[None]],
) -> None:
    layer = layer_class(hosts=[tls_host(tls_redis)], prefix=f"tls-{layer_class.__name__}")
    try:
        await check_channels_and_groups(layer, "tls")
        await layer.flush()
    finally:
        await layer.close_pools()


@pytest.mark.asyncio
async def test_client_certificate(tls_redis: dict[str, Any]) -> None:
    layer = RedisChannelLayer(
        hosts=[tls_host(tls_redis, ssl_certfile=tls_redis["cert"], ssl_keyfile=tls_redis["key"])]
    )
    try:
        await layer.send("tls.cert", {"type": "with.cert"})
        assert await asyncio.wait_for(layer.receive("tls.cert"), 5) == {"type": "with.cert"}
    finally:
        await layer.flush()
        await layer.close_pools()


@pytest.mark.asyncio
async def test_an_untrusted_server_is_refused(tls_redis: dict[str, Any]) -> None:
    # Without the test CA the server's certificate cannot be verified.
    layer = RedisChannelLayer(hosts=[tls_redis["url"]])
    with pytest.raises(RedisConnectionError, match=r"(?i)certificate"):
        await layer.send("tls.refused", {"type": "x"})
    await layer.close_pools()


@pytest.mark.asyncio
async def test_plain_connection_to_a_tls_port_fails_cleanly(tls_redis: dict[str, Any]) -> None:
    port = tls_redis["server"].port
    layer = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{port}/0"], prefix="plain")
    with pytest.raises(RedisConnectionError):
        await layer.send("tls.plain", {"type": "x"})
    await layer.close_pools()
