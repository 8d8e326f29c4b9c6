"""How messages become bytes: msgpack (the default), JSON, or your own format,
optionally encrypted with Fernet.

A serializer turns a message dict into bytes (:meth:`~BaseMessageSerializer.as_bytes`)
and back (:meth:`~BaseMessageSerializer.from_bytes`). Encryption wraps those
bytes; with several ``symmetric_encryption_keys`` the first encrypts and every
key decrypts, so keys can be rotated without losing messages in flight.

A custom format subclasses :class:`BaseMessageSerializer` and registers
itself under a name that the layers' ``serializer_format`` option then
selects::

    from channels_redis.serializers import BaseMessageSerializer, registry

    class CBORSerializer(BaseMessageSerializer):
        def as_bytes(self, message):
            return cbor2.dumps(message)

        def from_bytes(self, data):
            return cbor2.loads(data)

    registry.register_serializer("cbor", CBORSerializer)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import msgpack  # type: ignore[import-untyped]

from .errors import InvalidConfiguration, MessageTooLarge, UndecryptableMessage

__all__ = [
    "BaseMessageSerializer",
    "JSONSerializer",
    "MsgPackSerializer",
    "SerializersRegistry",
    "describe_unserializable",
    "registry",
    "serialize_message",
]

_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1


class BaseMessageSerializer:
    """Converts messages to bytes and back, encrypting when given keys.

    :param symmetric_encryption_keys: a list of secrets (``str`` or
        ``bytes``, any length); each is stretched into a Fernet key with
        SHA-256. The first one encrypts, all of them decrypt. Needs the
        ``cryptography`` package (``pip install channels-layers-redis[cryptography]``).
    :param random_prefix_length: accepted for compatibility with custom
        serializers written for channels_redis; this layer's storage needs no
        random bytes in messages, so it is not used.
    :param expiry: accepted for compatibility, not used.
    """

    #: The name under which the built-in subclasses are registered.
    format: ClassVar[str] = ""

    def __init__(
        self,
        symmetric_encryption_keys: Sequence[str | bytes] | None = None,
        random_prefix_length: int = 0,
        expiry: float | None = None,
    ) -> None:
        self.random_prefix_length = random_prefix_length
        self.expiry = expiry
        self.crypter: Any = None
        if symmetric_encryption_keys:
            self.crypter = _make_crypter(symmetric_encryption_keys)

    # -- the format: override these two ------------------------------------------

    def as_bytes(self, message: dict[str, Any]) -> bytes:
        """Encode *message*; raise ``TypeError`` for values the format cannot hold."""
        raise NotImplementedError(f"{type(self).__name__} must implement as_bytes()")

    def from_bytes(self, data: bytes) -> dict[str, Any]:
        """Decode what :meth:`as_bytes` produced."""
        raise NotImplementedError(f"{type(self).__name__} must implement from_bytes()")

    # -- encryption ----------------------------------------------------------------

    def encrypt(self, data: bytes) -> bytes:
        """*data* encrypted with the first key, or unchanged without keys."""
        if self.crypter is None:
            return data
        token: bytes = self.crypter.encrypt(data)
        return token

    def decrypt(self, data: bytes) -> bytes:
        """*data* decrypted with whichever key fits.

        Raises :class:`~channels_redis.errors.UndecryptableMessage` when no
        key fits (or the data was tampered with).
        """
        if self.crypter is None:
            return data
        from cryptography.fernet import InvalidToken

        try:
            plain: bytes = self.crypter.decrypt(bytes(data))
        except InvalidToken:
            raise UndecryptableMessage(
                "The message cannot be decrypted with any of the layer's "
                "symmetric_encryption_keys (sent with another key, or altered)"
            ) from None
        return plain

    # -- what the layers call --------------------------------------------------------

    def serialize(self, message: dict[str, Any]) -> bytes:
        """*message* as the bytes stored in Redis (encoded, then encrypted)."""
        return self.encrypt(self.as_bytes(message))

    def deserialize(self, data: bytes) -> dict[str, Any]:
        """The message stored as *data* (decrypted, then decoded)."""
        return self.from_bytes(self.decrypt(data))


def serialize_message(
    serializer: BaseMessageSerializer, message: dict[str, Any], limit: int | None
) -> bytes:
    """What a layer stores for *message*: encoded, size-checked, then encrypted.

    Raises ``TypeError`` for a message that is not a dict (or holds values
    the format cannot), :class:`~channels_redis.errors.MessageTooLarge` when
    the encoded message is over *limit* bytes.
    """
    if not isinstance(message, dict):
        raise TypeError(f"message must be a dict, not {type(message).__name__}")
    plain = serializer.as_bytes(message)
    if limit is not None and len(plain) > limit:
        raise MessageTooLarge(len(plain), limit)
    return serializer.encrypt(plain)


class MsgPackSerializer(BaseMessageSerializer):
    """msgpack: compact and fast; ``bytes`` and ``str`` stay distinct."""

    format = "msgpack"

    def __init__(
        self,
        symmetric_encryption_keys: Sequence[str | bytes] | None = None,
        random_prefix_length: int = 0,
        expiry: float | None = None,
    ) -> None:
        super().__init__(symmetric_encryption_keys, random_prefix_length, expiry)
        self._pack = msgpack.Packer(use_bin_type=True, autoreset=True).pack

    def as_bytes(self, message: dict[str, Any]) -> bytes:
        try:
            packed: bytes = self._pack(message)
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(describe_unserializable(message, "msgpack", exc)) from None
        return packed

    def from_bytes(self, data: bytes) -> dict[str, Any]:
        # strict_map_key=False: a message that could be sent can be received.
        message: dict[str, Any] = msgpack.unpackb(data, raw=False, strict_map_key=False)
        return message


#: Marks a JSON string that stands for something else; the character after it
#: says what: "b" bytes (base64 follows), "s" a string that began with the mark.
_BOX = "\uffff"


class JSONSerializer(BaseMessageSerializer):
    """JSON: readable in ``redis-cli``; ``bytes`` values travel as boxed base64.

    The Channel Layer Specification asks JSON layers to box byte strings as
    unicode strings behind a special character: here ``U+FFFF`` and ``b``
    followed by the base64 of the bytes. A string that itself starts with
    ``U+FFFF`` is boxed too (``U+FFFF`` and ``s``), so every message
    round-trips exactly.
    """

    format = "json"

    def as_bytes(self, message: dict[str, Any]) -> bytes:
        try:
            boxed = _box(message)
            return json.dumps(
                boxed, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise TypeError(describe_unserializable(message, "json", exc)) from None

    def from_bytes(self, data: bytes) -> dict[str, Any]:
        message: dict[str, Any] = _unbox(json.loads(data))
        return message


def _box(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return _BOX + "s" + value if value.startswith(_BOX) else value
    if kind is dict:
        boxed = {}
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"dict key {key!r} is not a str")
            boxed[key] = _box(item)
        return boxed
    if kind is list or kind is tuple:
        return [_box(item) for item in value]
    if kind is bytes:
        return _BOX + "b" + base64.b64encode(value).decode("ascii")
    return value


def _unbox(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        if value.startswith(_BOX):
            tag, rest = value[1:2], value[2:]
            if tag == "b":
                return base64.b64decode(rest)
            return rest
        return value
    if kind is dict:
        return {key: _unbox(item) for key, item in value.items()}
    if kind is list:
        return [_unbox(item) for item in value]
    return value


def describe_unserializable(message: Any, format_name: str, error: Exception) -> str:
    """Explain which key of *message* holds what the *format_name* serializer refused.

    Called only after serializing failed, so the walk costs nothing on the
    normal path.
    """
    found = _find_unserializable(message, "", format_name)
    if found is None:
        return f"The message cannot be serialized with {format_name}: {error}"
    path, problem = found
    where = f"key {path!r}" if path else "the message itself"
    return (
        f"The message cannot be serialized with {format_name}: {where} holds {problem}; "
        "messages may hold only str, bytes, int, float, bool, None, and lists and "
        "dicts (with str keys) of those"
    )


def _find_unserializable(value: Any, path: str, format_name: str) -> tuple[str, str] | None:
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return path or "", f"a dict key of type {type(key).__name__} ({key!r})"
            child = f"{path}.{key}" if path else key
            found = _find_unserializable(item, child, format_name)
            if found is not None:
                return found
        return None
    if kind is list or kind is tuple:
        for index, item in enumerate(value):
            found = _find_unserializable(item, f"{path}[{index}]", format_name)
            if found is not None:
                return found
        return None
    if kind is int:
        if not _INT64_MIN <= value <= _UINT64_MAX:
            return path, f"the integer {value}, outside the 64-bit range"
        return None
    if kind is float:
        if format_name == "json" and not math.isfinite(value):
            return path, f"the float {value}, which JSON cannot represent"
        return None
    if kind in (str, bytes, bool, type(None)):
        return None
    return path, f"a value of type {kind.__module__}.{kind.__qualname__} ({value!r:.60})"


def _make_crypter(keys: Iterable[str | bytes]) -> Any:
    if isinstance(keys, (str, bytes)):
        raise InvalidConfiguration(
            "symmetric_encryption_keys must be a list of keys, not a single key: wrap it in a list"
        )
    try:
        from cryptography.fernet import Fernet, MultiFernet
    except ImportError:
        raise InvalidConfiguration(
            "symmetric_encryption_keys needs the cryptography package: "
            "pip install 'channels-layers-redis[cryptography]'"
        ) from None
    fernets = []
    for position, key in enumerate(keys):
        if isinstance(key, str):
            secret = key.encode("utf-8")
        elif isinstance(key, bytes):
            secret = key
        else:
            raise InvalidConfiguration(
                f"symmetric_encryption_keys[{position}] must be a str or bytes, "
                f"not {type(key).__name__}"
            )
        if not secret:
            raise InvalidConfiguration(f"symmetric_encryption_keys[{position}] is empty")
        # Any secret (a Django SECRET_KEY, say) becomes a 32-byte Fernet key.
        fernets.append(Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret).digest())))
    if not fernets:
        raise InvalidConfiguration("symmetric_encryption_keys is empty")
    return MultiFernet(fernets)


SerializerFactory = Callable[..., BaseMessageSerializer]


class SerializersRegistry:
    """Serializer classes by format name (``"msgpack"``, ``"json"``, yours)."""

    def __init__(self) -> None:
        self._registry: dict[str, SerializerFactory] = {}

    def register_serializer(self, format: str, serializer_class: SerializerFactory) -> None:
        """Make *serializer_class* the serializer of ``serializer_format=format``."""
        if not isinstance(format, str) or not format:
            raise InvalidConfiguration(f"A serializer format must be a non-empty str: {format!r}")
        if not callable(serializer_class):
            raise InvalidConfiguration(
                f"The serializer for {format!r} must be a class, not {serializer_class!r}"
            )
        self._registry[format] = serializer_class

    def get_serializer(self, format: str, *args: Any, **kwargs: Any) -> BaseMessageSerializer:
        """A new serializer of *format*, built with *args* and *kwargs*."""
        try:
            factory = self._registry[format]
        except KeyError:
            known = ", ".join(sorted(self._registry))
            raise InvalidConfiguration(
                f"Unknown serializer_format {format!r}; registered formats: {known}"
            ) from None
        return factory(*args, **kwargs)

    def formats(self) -> list[str]:
        return sorted(self._registry)


registry = SerializersRegistry()
registry.register_serializer("msgpack", MsgPackSerializer)
registry.register_serializer("json", JSONSerializer)

# binascii.Error is what a corrupt boxed base64 string raises on decode.
DecodeErrors = (ValueError, TypeError, binascii.Error, msgpack.ExtraData)
