"""What code built on channels_redis 4 relies on, against both layers and a real Redis.

Custom serializers of both kinds the channels_redis README documents,
``serialize()``/``deserialize()`` overrides, channels_redis's helper methods,
``receive()`` on another process's channel, and ``flush()`` leaving no key
without an expiry.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest
import redis.asyncio
from cryptography.fernet import Fernet, MultiFernet

from channels.exceptions import ForeignChannelError
from channels_redis.batching import ShardWriter
from channels_redis.core import RedisChannelLayer
from channels_redis.errors import InvalidConfiguration, UnknownProcessChannel
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.serializers import (
    BaseMessageSerializer,
    SerializerDoesNotExist,
    SerializersRegistry,
    registry,
)

Layer = RedisChannelLayer | RedisPubSubChannelLayer
LayerMaker = Callable[..., Any]

LAYERS = [
    pytest.param(RedisChannelLayer, id="list"),
    pytest.param(RedisPubSubChannelLayer, id="pubsub"),
]


@pytest.fixture(params=LAYERS)
def layer_class(request: pytest.FixtureRequest) -> type[Layer]:
    layer: type[Layer] = request.param
    return layer


@pytest.fixture
def make_layer(made_layers: Any, layer_class: type[Layer]) -> LayerMaker:
    """Layers of the class under test (or *cls*), closed after the test."""

    def make(cls: type[Layer] | None = None, **options: Any) -> Any:
        return made_layers(cls or layer_class, **options)

    return make


@pytest.fixture
def make_list_layer(made_layers: Any) -> Callable[..., RedisChannelLayer]:
    return functools.partial(made_layers, RedisChannelLayer)


async def receive(layer: Layer, channel: str, timeout: float = 5) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def send_group_and_receive(
    sender: Layer, receiver: Layer, tag: str, message: dict[str, Any]
) -> list[dict[str, Any]]:
    """Send *message* to an ordinary channel, a new_channel() and a group of two;
    return what *receiver* received on each, in that order."""
    ordinary = f"compat.{tag}"
    first = await receiver.new_channel()
    second = await receiver.new_channel()
    group = f"compat-{tag}"
    await receiver.group_add(group, first)
    await receiver.group_add(group, second)
    waiting = asyncio.ensure_future(receive(receiver, ordinary))
    await asyncio.sleep(0)  # the Pub/Sub layer subscribes in receive()
    await sender.send(ordinary, message)
    await sender.send(first, message)
    await sender.group_send(group, message)
    return [
        await waiting,
        await receive(receiver, first),
        await receive(receiver, first),
        await receive(receiver, second),
    ]


MESSAGE: dict[str, Any] = {"type": "compat.message", "text": "attack at dawn", "n": [1, 2]}


def fernet_for(keys: list[str]) -> MultiFernet:
    return MultiFernet(
        [Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest())) for key in keys]
    )


# -- custom serializers, the two kinds the channels_redis README documents -----------------


class FullyCustomSerializer:
    """serialize()/deserialize() only, built with keyword arguments; it encrypts itself."""

    def __init__(self, **kwargs: Any) -> None:
        self.options = kwargs
        keys = kwargs.get("symmetric_encryption_keys")
        self.crypter = fernet_for(keys) if keys else None

    def serialize(self, message: dict[str, Any]) -> bytes:
        data = b"custom:" + json.dumps(message).encode()
        return self.crypter.encrypt(data) if self.crypter else data

    def deserialize(self, data: bytes) -> dict[str, Any]:
        if self.crypter:
            data = self.crypter.decrypt(data)
        if not data.startswith(b"custom:"):
            raise ValueError("not written by FullyCustomSerializer")
        message: dict[str, Any] = json.loads(data[len(b"custom:") :])
        return message


class SubclassSerializer(BaseMessageSerializer):
    """as_bytes()/from_bytes() only; the base class encrypts."""

    def as_bytes(self, message: dict[str, Any], *args: Any, **kwargs: Any) -> bytes:
        return b"sub:" + json.dumps(message).encode()

    def from_bytes(self, data: bytes, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if not data.startswith(b"sub:"):
            raise ValueError("not written by SubclassSerializer")
        message: dict[str, Any] = json.loads(data[len(b"sub:") :])
        return message


@pytest.fixture
def custom_formats() -> Iterator[None]:
    registry.register_serializer("compat-custom", FullyCustomSerializer)
    registry.register_serializer("compat-subclass", SubclassSerializer)
    yield
    for name in ("compat-custom", "compat-subclass"):
        registry._registry.pop(name, None)


async def stored_payloads(client: redis.asyncio.Redis) -> list[bytes]:
    """The payload of every message element the layers keep in Redis."""
    payloads = []
    async for key in client.scan_iter(match="asgi:*"):
        if await client.type(key) == b"list":
            for element in await client.lrange(key, 0, -1):
                payloads.append(element.split(b"\n", 1)[1])
    return payloads


@pytest.mark.asyncio
@pytest.mark.parametrize("format_name", ["compat-custom", "compat-subclass"])
@pytest.mark.parametrize("keys", [None, ["secret-one"]], ids=["clear", "encrypted"])
async def test_custom_serializers_carry_every_kind_of_message(
    make_layer: LayerMaker,
    redis_client: redis.asyncio.Redis,
    custom_formats: None,
    format_name: str,
    keys: list[str] | None,
) -> None:
    sender = make_layer(serializer_format=format_name, symmetric_encryption_keys=keys)
    receiver = make_layer(serializer_format=format_name, symmetric_encryption_keys=keys)
    assert await send_group_and_receive(sender, receiver, "custom", MESSAGE) == [MESSAGE] * 4

    # What is stored is the serializer's, encrypted when keys are given.
    await sender.send("compat.stored", MESSAGE)
    payloads = await stored_payloads(redis_client)
    assert payloads
    marker = b"custom:" if format_name == "compat-custom" else b"sub:"
    for payload in payloads:
        if keys:
            assert b"attack at dawn" not in payload
            assert fernet_for(keys).decrypt(payload).startswith(marker)
        else:
            assert payload.startswith(marker)


@pytest.mark.asyncio
async def test_fully_custom_serializer_is_built_with_keyword_arguments(
    make_layer: LayerMaker, custom_formats: None
) -> None:
    layer = make_layer(serializer_format="compat-custom", symmetric_encryption_keys=["k"])
    assert isinstance(layer.serializer, FullyCustomSerializer)
    assert layer.serializer.options["symmetric_encryption_keys"] == ["k"]


@pytest.mark.asyncio
async def test_serializer_without_constructor_arguments(make_layer: LayerMaker) -> None:
    # The README's own example has no __init__ at all.
    class Bare:
        def serialize(self, message: dict[str, Any]) -> bytes:
            packed: bytes = msgpack.packb(message)
            return packed

        def deserialize(self, data: bytes) -> dict[str, Any]:
            message: dict[str, Any] = msgpack.unpackb(data)
            return message

    registry.register_serializer("compat-bare", Bare)
    try:
        sender = make_layer(serializer_format="compat-bare")
        receiver = make_layer(serializer_format="compat-bare")
        assert await send_group_and_receive(sender, receiver, "bare", MESSAGE) == [MESSAGE] * 4
        # It cannot take keys, so it cannot encrypt: refused, not stored in clear.
        with pytest.raises(InvalidConfiguration, match="does not take symmetric_encryption_keys"):
            make_layer(serializer_format="compat-bare", symmetric_encryption_keys=["k"])
    finally:
        registry._registry.pop("compat-bare", None)


def test_unknown_format_raises_serializer_does_not_exist(layer_class: type[Layer]) -> None:
    with pytest.raises(SerializerDoesNotExist) as raised:
        layer_class(serializer_format="yaml")
    error = raised.value
    assert isinstance(error, KeyError)
    assert isinstance(error, InvalidConfiguration)
    assert error.args[0] == "yaml"
    assert "Unknown serializer_format 'yaml'" in str(error)
    assert "msgpack" in str(error)


def test_registry_refuses_what_cannot_serialize() -> None:
    formats = SerializersRegistry()
    with pytest.raises(InvalidConfiguration, match="serialize"):
        formats.register_serializer("x", object)
    with pytest.raises(InvalidConfiguration, match="serialize"):
        formats.register_serializer("x", lambda **kwargs: FullyCustomSerializer())  # type: ignore[arg-type]
    formats.register_serializer("x", FullyCustomSerializer)
    assert isinstance(formats.get_serializer("x", expiry=3), FullyCustomSerializer)


# -- serialize() and deserialize() overridden in a subclass -------------------------------


class Compressing:
    """What libraries do: change the wire format by overriding the layer's methods."""

    serialized = 0
    deserialized = 0

    def serialize(self, message: dict[str, Any]) -> bytes:
        type(self).serialized += 1
        return b"z" + zlib.compress(super().serialize(message))  # type: ignore[misc]

    def deserialize(self, data: bytes) -> dict[str, Any]:
        type(self).deserialized += 1
        if not data.startswith(b"z"):
            raise ValueError("not compressed by this subclass")
        message: dict[str, Any] = super().deserialize(zlib.decompress(data[1:]))  # type: ignore[misc]
        return message


class CompressingList(Compressing, RedisChannelLayer):
    pass


class CompressingPubSub(Compressing, RedisPubSubChannelLayer):
    pass


@pytest.mark.asyncio
@pytest.mark.parametrize("keys", [None, ["k"]], ids=["clear", "encrypted"])
async def test_overridden_serialize_and_deserialize_see_every_message(
    make_layer: LayerMaker,
    redis_client: redis.asyncio.Redis,
    layer_class: type[Layer],
    keys: list[str] | None,
) -> None:
    subclass = CompressingList if layer_class is RedisChannelLayer else CompressingPubSub
    subclass.serialized = subclass.deserialized = 0
    sender = make_layer(subclass, symmetric_encryption_keys=keys)
    receiver = make_layer(subclass, symmetric_encryption_keys=keys)
    nested = {**MESSAGE, "nested": {"list": [1, {"x": b"\x00"}]}}
    assert await send_group_and_receive(sender, receiver, "override", nested) == [nested] * 4
    assert subclass.serialized == 3
    assert subclass.deserialized >= 3
    await sender.send("compat.stored", nested)
    (payload,) = await stored_payloads(redis_client)
    assert payload.startswith(b"z")
    # A layer without the override cannot read it: the subclass owns the format.
    assert receiver.deserialize(payload) == nested
    plain = make_layer(symmetric_encryption_keys=keys)
    with pytest.raises(Exception):  # noqa: B017 - whatever the format raises
        plain.deserialize(payload)


# -- channels_redis's helper methods --------------------------------------------------------


@pytest.mark.asyncio
async def test_receive_single(make_list_layer: Callable[..., RedisChannelLayer]) -> None:
    layer = make_list_layer()
    channel = await layer.new_channel()
    await layer.send("compat.single", MESSAGE)
    await layer.send(channel, MESSAGE)
    assert await layer.receive_single("compat.single") == ("compat.single", MESSAGE)
    assert await layer.receive_single(channel) == (channel, MESSAGE)
    with pytest.raises(TypeError, match="whole channel name"):
        await layer.receive_single(channel.split("!")[0] + "!")


@pytest.mark.asyncio
async def test_wait_received_tells_redis_at_once(
    make_layer: LayerMaker, redis_client: redis.asyncio.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Acknowledgements would otherwise wait for a send to ride with.
    monkeypatch.setattr(ShardWriter, "ACK_DELAY", 30.0)
    layer = make_layer(capacity=1)
    channel = await layer.new_channel()
    await layer.send(channel, MESSAGE)
    assert await receive(layer, channel) == MESSAGE
    counters = [key async for key in redis_client.scan_iter(match="asgi:cnt:*")]
    assert counters
    field = channel.split("!")[0].encode() + b"!"
    assert [await redis_client.hget(key, field) for key in counters] == [b"1"]
    await layer.wait_received()
    assert [await redis_client.hget(key, field) for key in counters] == [b"0"]


@pytest.mark.asyncio
async def test_connection_for_keys_of_your_own(
    make_list_layer: Callable[..., RedisChannelLayer], shard_urls: list[str]
) -> None:
    layer = make_list_layer(hosts=shard_urls)
    index = layer.consistent_hash("my-own-key")
    client = layer.connection(index)
    assert layer.connection(index) is client
    await client.set("my-own-key", b"value")
    direct = redis.asyncio.Redis.from_url(shard_urls[index])
    try:
        assert await direct.get("my-own-key") == b"value"
    finally:
        await direct.aclose()
    with pytest.raises(ValueError, match="no index 2"):
        layer.connection(2)
    pool_connections = list(client.connection_pool._available_connections)
    await layer.close_pools()
    assert not any(connection.is_connected for connection in pool_connections)


# -- receive() on a process-specific channel this layer did not make -------------------------


@pytest.mark.asyncio
async def test_receive_on_another_process_channel_raises_at_once(
    make_layer: LayerMaker,
) -> None:
    layer = make_layer()
    other = make_layer()
    own = await layer.new_channel()
    elsewhere = await other.new_channel()
    for name in (
        "elsewhere.process!local",
        "elsewhere.abc123__1!x",  # the shape of new_channel() names
        elsewhere,  # another layer's (another process's) channel
        "other." + own,  # this process part under another prefix
    ):
        with pytest.raises(UnknownProcessChannel) as raised:
            await asyncio.wait_for(layer.receive(name), 1)
        assert isinstance(raised.value, ForeignChannelError)
        assert isinstance(raised.value, ValueError)
        assert name in str(raised.value)
    # The names this layer made, and other channels of the same queue, still work.
    await layer.send(own, MESSAGE)
    assert await receive(layer, own) == MESSAGE
    sibling = own.split("!")[0] + "!another-local-part"
    await layer.send(sibling, MESSAGE)
    assert await receive(layer, sibling) == MESSAGE


@pytest.mark.asyncio
async def test_one_layer_shared_by_many_consumers(make_layer: LayerMaker) -> None:
    layer = make_layer(capacity=5)
    channels = [await layer.new_channel() for _ in range(50)]
    custom = [await layer.new_channel(prefix="consumers.custom.") for _ in range(5)]
    everyone = channels + custom
    waiting = [asyncio.ensure_future(receive(layer, channel)) for channel in everyone]
    await asyncio.sleep(0)
    for index, channel in enumerate(everyone):
        await layer.send(channel, {"type": "each", "index": index})
    received = await asyncio.gather(*waiting)
    assert [message["index"] for message in received] == list(range(len(everyone)))


def test_a_name_made_in_a_loop_that_has_closed_is_received_later(
    layer_class: type[Layer], redis_url: str
) -> None:
    # Synchronous code does this through async_to_sync: each call runs in a
    # loop of its own, closed when it returns.
    layer = layer_class(hosts=[redis_url])
    channel = asyncio.run(layer.new_channel())

    async def send() -> None:
        await layer.send(channel, MESSAGE)

    async def take() -> dict[str, Any]:
        return await receive(layer, channel)

    asyncio.run(send())
    assert asyncio.run(take()) == MESSAGE
    for _ in range(20):
        asyncio.run(send())
        assert asyncio.run(take()) == MESSAGE
    # Twenty loops later the layer still knows one process part, its first.
    parts = layer._process_parts
    assert [part for part, _ in parts.free] == [layer.client_prefix]
    assert len(parts.queues) == 1


# -- flush() leaves no key without an expiry -------------------------------------------------


async def keys_without_expiry(client: redis.asyncio.Redis, prefix: str = "asgi") -> list[bytes]:
    return [
        key async for key in client.scan_iter(match=f"{prefix}:*") if await client.ttl(key) == -1
    ]


@pytest.mark.asyncio
async def test_no_key_without_expiry_before_or_after_flush(
    make_layer: LayerMaker, redis_client: redis.asyncio.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Acknowledgements leave only when wait_received() says: one reaches
    # Redis after the flush, for a counter the flush deleted.
    monkeypatch.setattr(ShardWriter, "ACK_DELAY", 30.0)
    layer = make_layer()
    flusher = make_layer()
    channels = [await layer.new_channel() for _ in range(3)]
    for channel in channels:
        await layer.group_add("compat-flush", channel)
        await layer.send(channel, MESSAGE)
    await layer.send("compat.ordinary", MESSAGE)
    await layer.group_send("compat-flush", MESSAGE)
    await layer.group_add("compat-flush", "compat.ordinary")
    assert await receive(layer, channels[0]) == MESSAGE
    assert await receive(layer, "compat.ordinary") == MESSAGE
    await layer.wait_received()
    assert await redis_client.keys("asgi:*")
    assert await keys_without_expiry(redis_client) == []

    # A message sent to the channel itself (a group message is not counted).
    assert await receive(layer, channels[1]) == MESSAGE
    await flusher.flush()
    await layer.wait_received()
    assert await keys_without_expiry(redis_client) == []
    await layer.flush()
    assert await keys_without_expiry(redis_client) == []


@pytest.mark.asyncio
async def test_messages_returned_at_close_do_not_recreate_a_flushed_list(
    make_list_layer: Callable[..., RedisChannelLayer], redis_client: redis.asyncio.Redis
) -> None:
    layer = make_list_layer()
    other = make_list_layer()
    state = await layer._state()
    waiting = asyncio.ensure_future(layer.receive("compat.returned"))
    for _ in range(500):
        if (await redis_client.info("clients"))["blocked_clients"]:
            break  # the receive loop's pop is out
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the layer never asked Redis for a message")
    waiting.cancel()
    # The receive loop's pop is still out: the message reaches this process
    # with nobody to take it, and would go back to Redis at close.
    await other.send("compat.returned", MESSAGE)
    for _ in range(500):
        box = state.buffer.mailboxes.get("compat.returned")
        if box is not None and box.messages:
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the message never reached the layer")
    await other.flush()
    await layer.close_pools()
    assert await redis_client.keys("asgi:*") == []


# -- name rules a subclass changes ---------------------------------------------------------


@pytest.mark.asyncio
async def test_a_subclass_that_allows_longer_names_is_followed(
    make_layer: LayerMaker, layer_class: type[Layer]
) -> None:
    long_name = "compat." + "x" * 140
    subclass = type("LongNames", (layer_class,), {"MAX_NAME_LENGTH": 200})
    layer = make_layer(subclass)
    channel = await layer.new_channel()
    await layer.group_add(long_name, channel)
    await layer.group_send(long_name, MESSAGE)
    assert await receive(layer, channel) == MESSAGE
    waiting = asyncio.ensure_future(receive(layer, long_name))
    await asyncio.sleep(0)
    await layer.send(long_name, MESSAGE)
    assert await waiting == MESSAGE
    # The class's rules, not only its length: still no spaces.
    with pytest.raises(TypeError):
        await layer.send("compat.with space", MESSAGE)
    # Channels' own rule for every other layer.
    with pytest.raises(TypeError, match="characters long"):
        await make_layer().send(long_name, MESSAGE)
