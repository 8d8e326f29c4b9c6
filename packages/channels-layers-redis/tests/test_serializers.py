"""Serializers, the registry, and Fernet encryption (no Redis needed)."""

from __future__ import annotations

import collections
import datetime
import decimal
from typing import Any

import pytest

from channels_redis.errors import InvalidConfiguration, UndecryptableMessage
from channels_redis.serializers import (
    BaseMessageSerializer,
    JSONSerializer,
    MsgPackSerializer,
    SerializersRegistry,
    registry,
)

MESSAGE: dict[str, Any] = {
    "type": "test.message",
    "bytes": b"\x00\xff",
    "text": "caf\u00e9",
    "boxed_lookalike": "\uffffb not bytes",
    "int": -(2**63),
    "float": 0.5,
    "list": [1, (2, 3), None, True],
    "dict": {"nested": b"x"},
}
EXPECTED = {**MESSAGE, "list": [1, [2, 3], None, True]}


@pytest.mark.parametrize("serializer_class", [MsgPackSerializer, JSONSerializer])
def test_round_trip(serializer_class: type[BaseMessageSerializer]) -> None:
    serializer = serializer_class()
    data = serializer.serialize(MESSAGE)
    assert isinstance(data, bytes)
    assert serializer.deserialize(data) == EXPECTED


def test_json_boxes_bytes_readably() -> None:
    data = JSONSerializer().serialize({"type": "t", "b": b"hi", "s": "\uffffs"})
    assert b'"type":"t"' in data
    assert "\uffffbaGk=".encode() in data


@pytest.mark.parametrize("serializer_class", [MsgPackSerializer, JSONSerializer])
def test_subclasses_of_dict_list_and_str_travel_as_their_base(
    serializer_class: type[BaseMessageSerializer],
) -> None:
    class Names(list[Any]):
        pass

    class Text(str):
        pass

    serializer = serializer_class()
    message = {
        "type": "t",
        "ordered": collections.OrderedDict(raw=b"\x00"),
        "names": Names([b"a"]),
        "text": Text("\uffffb not bytes"),
    }
    assert serializer.deserialize(serializer.serialize(message)) == {
        "type": "t",
        "ordered": {"raw": b"\x00"},
        "names": [b"a"],
        "text": "\uffffb not bytes",
    }


BOTH = (MsgPackSerializer, JSONSerializer)


@pytest.mark.parametrize(
    ("serializer_class", "message", "key", "problem"),
    [
        *[
            (serializer_class, message, key, problem)
            for serializer_class in BOTH
            for message, key, problem in [
                ({"type": "t", "when": datetime.date(2024, 1, 1)}, "'when'", "datetime.date"),
                (
                    {"type": "t", "deep": {"list": [1, decimal.Decimal(1)]}},
                    "'deep.list[1]'",
                    "Decimal",
                ),
                ({"type": "t", "items": {object()}}, "'items'", "builtins.set"),
            ]
        ],
        # msgpack has no integers beyond 64 bits; JSON has no integer keys.
        (MsgPackSerializer, {"type": "t", "big": 2**70}, "'big'", "outside the 64-bit range"),
        (JSONSerializer, {"type": "t", "keys": {1: "one"}}, "'keys'", "dict key of type int"),
    ],
)
def test_unserializable_values_name_the_key(
    serializer_class: type[BaseMessageSerializer], message: dict[str, Any], key: str, problem: str
) -> None:
    with pytest.raises(TypeError) as raised:
        serializer_class().serialize(message)
    assert f"key {key}" in str(raised.value)
    assert problem in str(raised.value)


def test_msgpack_keeps_integer_keys() -> None:
    serializer = MsgPackSerializer()
    assert serializer.deserialize(serializer.serialize({"type": "t", "k": {1: 2}})) == {
        "type": "t",
        "k": {1: 2},
    }


def test_json_refuses_nan() -> None:
    with pytest.raises(TypeError, match=r"key 'x'.*float nan"):
        JSONSerializer().serialize({"type": "t", "x": float("nan")})


def test_encryption_with_key_rotation() -> None:
    old = MsgPackSerializer(symmetric_encryption_keys=["old-secret"])
    rotated = MsgPackSerializer(symmetric_encryption_keys=["new-secret", "old-secret"])
    new_only = MsgPackSerializer(symmetric_encryption_keys=["new-secret"])
    plain = MsgPackSerializer()

    from_old = old.serialize(MESSAGE)
    assert b"test.message" not in from_old
    assert plain.serialize(MESSAGE) != from_old
    # Every key decrypts ...
    assert rotated.deserialize(from_old) == EXPECTED
    # ... and the first one encrypts.
    from_rotated = rotated.serialize(MESSAGE)
    assert new_only.deserialize(from_rotated) == EXPECTED
    with pytest.raises(UndecryptableMessage):
        old.deserialize(from_rotated)


def test_bytes_keys_and_str_keys_are_the_same_key() -> None:
    one = JSONSerializer(symmetric_encryption_keys=[b"k"])
    other = JSONSerializer(symmetric_encryption_keys=["k"])
    assert other.deserialize(one.serialize(MESSAGE)) == EXPECTED


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("single-key", "a list of keys, not a single key"),
        ([""], r"symmetric_encryption_keys\[0\] is empty"),
        ([3], r"symmetric_encryption_keys\[0\] must be a str or bytes"),
    ],
)
def test_bad_keys(keys: Any, message: str) -> None:
    with pytest.raises(InvalidConfiguration, match=message):
        MsgPackSerializer(symmetric_encryption_keys=keys)


def test_registry_of_custom_formats() -> None:
    class Reversed(BaseMessageSerializer):
        def as_bytes(self, message: dict[str, Any]) -> bytes:
            return str(message["type"]).encode()[::-1]

        def from_bytes(self, data: bytes) -> dict[str, Any]:
            return {"type": data[::-1].decode()}

    formats = SerializersRegistry()
    formats.register_serializer("reversed", Reversed)
    serializer = formats.get_serializer("reversed", symmetric_encryption_keys=["k"])
    assert isinstance(serializer, Reversed)
    assert serializer.deserialize(serializer.serialize({"type": "abc"})) == {"type": "abc"}
    assert serializer.as_bytes({"type": "abc"}) == b"cba"
    with pytest.raises(InvalidConfiguration, match=r"Unknown serializer_format 'nope'.*reversed"):
        formats.get_serializer("nope")
    with pytest.raises(InvalidConfiguration):
        formats.register_serializer("", Reversed)


def test_global_registry_has_the_builtin_formats() -> None:
    assert {"msgpack", "json"} <= set(registry.formats())
    assert isinstance(registry.get_serializer("json"), JSONSerializer)


def test_base_serializer_must_be_subclassed() -> None:
    with pytest.raises(NotImplementedError):
        BaseMessageSerializer().serialize({"type": "t"})
