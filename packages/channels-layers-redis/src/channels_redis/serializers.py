"""How messages become bytes: msgpack (the default), JSON, or your own format,
optionally encrypted with Fernet.

A serializer turns a message dict into bytes (:meth:`~BaseMessageSerializer.as_bytes`)
and back (:meth:`~BaseMessageSerializer.from_bytes`). Encryption wraps those
bytes; with several ``symmetric_encryption_keys`` the first encrypts and every
key decrypts, so keys can be rotated without losing messages in flight.

A custom format is registered under a name that the layers'
``serializer_format`` option then selects. It is either a subclass of
:class:`BaseMessageSerializer` that implements ``as_bytes`` and
``from_bytes`` (encryption comes with the base class)::

    from channels_redis.serializers import BaseMessageSerializer, registry

    class CBORSerializer(BaseMessageSerializer):
        def as_bytes(self, message):
            return cbor2.dumps(message)

        def from_bytes(self, data):
            return cbor2.loads(data)

    registry.register_serializer("cbor", CBORSerializer)

or any class with ``serialize(message) -> bytes`` and ``deserialize(data) ->
dict`` whose constructor takes keyword arguments: it is built with those of
``symmetric_encryption_keys``, ``random_prefix_length`` and ``expiry`` that
its signature names (all of them if it takes ``**kwargs``), and encrypting
with the keys is then its own job. A class that cannot take the keys is
refused when a layer is given some, rather than storing messages in clear.

An unknown ``serializer_format`` raises :class:`SerializerDoesNotExist`,
which is both a ``KeyError`` (as in channels_redis) and an
:class:`~channels_redis.errors.InvalidConfiguration`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import inspect
import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import msgpack  # type: ignore[import-untyped]

from .errors import InvalidConfiguration, MessageTooLarge, UndecryptableMessage

__all__ = [
    "BaseMessageSerializer",
    "JSONSerializer",
    "MessageSerializer",
    "MsgPackSerializer",
    "PayloadDecoder",
    "SerializerDoesNotExist",
    "SerializersRegistry",
    "describe_unserializable",
    "overriding_method",
    "payload_decoder",
    "registry",
    "serialize_message",
]

_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1


@runtime_checkable
class MessageSerializer(Protocol):
    """What a layer needs of a serializer: ``serialize`` and ``deserialize``.

    :class:`BaseMessageSerializer` and its subclasses are such serializers;
    so is any class registered with only these two methods.
    """

    def serialize(self, message: dict[str, Any]) -> bytes: ...

    def deserialize(self, data: bytes) -> dict[str, Any]: ...


class SerializerDoesNotExist(InvalidConfiguration, KeyError):
    """No serializer is registered under the requested format.

    A ``KeyError`` whose first argument is the format, as channels_redis
    raises it, and an :class:`~channels_redis.errors.InvalidConfiguration`
    (so a ``ValueError``) like every other bad option of the layers.
    """

    def __init__(self, format: object, known: Iterable[str] = ()) -> None:
        super().__init__(format)
        self.format = format
        self.known = sorted(known)

    def __str__(self) -> str:
        # KeyError would show only the quoted key.
        return (
            f"Unknown serializer_format {self.format!r}; registered formats: "
            f"{', '.join(self.known) or 'none'}"
        )


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
    serializer: MessageSerializer, message: dict[str, Any], limit: int | None
) -> bytes:
    """What a layer stores for *message*: encoded, size-checked, then encrypted.

    A :class:`BaseMessageSerializer` whose ``serialize`` is the base class's
    is taken step by step, so that *limit* applies to the encoded message
    before encryption; any other serializer's ``serialize`` is called and
    *limit* applies to what it returns.

    Raises ``TypeError`` for a message that is not a dict (or holds values
    the format cannot, or a serializer that returns no bytes),
    :class:`~channels_redis.errors.MessageTooLarge` when the message is over
    *limit* bytes.
    """
    if not isinstance(message, dict):
        raise TypeError(f"message must be a dict, not {type(message).__name__}")
    if type(serializer).serialize is BaseMessageSerializer.serialize:
        base: BaseMessageSerializer = serializer  # type: ignore[assignment]
        plain = base.as_bytes(message)
        if limit is not None and len(plain) > limit:
            raise MessageTooLarge(len(plain), limit)
        return base.encrypt(plain)
    data = serializer.serialize(message)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"{type(serializer).__qualname__}.serialize() returned {type(data).__name__}, not bytes"
        )
    if limit is not None and len(data) > limit:
        raise MessageTooLarge(len(data), limit)
    return bytes(data)


class PayloadDecoder:
    """How a receive loop turns a stored payload back into messages.

    ``open(payload)`` does what is done once per payload (decryption, for a
    :class:`BaseMessageSerializer` taken step by step) and may raise
    :class:`~channels_redis.errors.UndecryptableMessage`; ``decode(opened)``
    makes one message of it, and is called again for each further local
    channel the payload is for when the message holds mutable values (each
    receiver gets a message of its own).
    """

    __slots__ = ("decode", "open")

    def __init__(
        self,
        open: Callable[[bytes], bytes],
        decode: Callable[[bytes], dict[str, Any]],
    ) -> None:
        self.open = open
        self.decode = decode


def overriding_method(instance: object, base: type, name: str) -> Any:
    """*instance*'s method *name* when it is not *base*'s own (``None`` if it is).

    The layers ask this of ``deserialize``: a subclass (or an instance)
    that replaces it must see every payload.
    """
    if name in vars(instance) or getattr(type(instance), name) is not getattr(base, name):
        return getattr(instance, name)
    return None


def _unchanged(data: bytes) -> bytes:
    return data


def payload_decoder(
    serializer: MessageSerializer, deserialize: Callable[[bytes], dict[str, Any]] | None
) -> PayloadDecoder:
    """The decoder of a layer whose serializer is *serializer*.

    *deserialize* is the layer's own ``deserialize`` when a subclass
    overrides it (``None`` otherwise): every payload then goes through it,
    so that the override decides the wire format.
    """
    if deserialize is None and type(serializer).deserialize is BaseMessageSerializer.deserialize:
        base: BaseMessageSerializer = serializer  # type: ignore[assignment]
        # Decrypt once, decode once per receiver.
        return PayloadDecoder(base.decrypt, base.from_bytes)
    return PayloadDecoder(_unchanged, deserialize or serializer.deserialize)


class MsgPackSerializer(BaseMessageSerializer):
    """msgpack: compact and fast; ``bytes`` and ``str`` stay distinct."""

    format = "msgpack"

    @functools.cached_property
    def _pack(self) -> Callable[[Any], bytes]:
        # One Packer per serializer, made on first use and kept.
        pack: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True, autoreset=True).pack
        return pack

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
    if isinstance(value, str):
        return _BOX + "s" + value if value.startswith(_BOX) else value
    if isinstance(value, dict):
        boxed = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"dict key {key!r} is not a str")
            boxed[key] = _box(item)
        return boxed
    if isinstance(value, (list, tuple)):
        return [_box(item) for item in value]
    if isinstance(value, bytes):
        return _BOX + "b" + base64.b64encode(value).decode("ascii")
    return value


def _unbox(value: Any) -> Any:
    if isinstance(value, str):
        if value.startswith(_BOX):
            tag, rest = value[1:2], value[2:]
            if tag == "b":
                return base64.b64decode(rest)
            return rest
        return value
    if isinstance(value, dict):
        return {key: _unbox(item) for key, item in value.items()}
    if isinstance(value, list):
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
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return path or "", f"a dict key of type {type(key).__name__} ({key!r})"
            child = f"{path}.{key}" if path else key
            found = _find_unserializable(item, child, format_name)
            if found is not None:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _find_unserializable(item, f"{path}[{index}]", format_name)
            if found is not None:
                return found
        return None
    if isinstance(value, int):  # bool too: always in range
        if not _INT64_MIN <= value <= _UINT64_MAX:
            return path, f"the integer {value}, outside the 64-bit range"
        return None
    if isinstance(value, float):
        if format_name == "json" and not math.isfinite(value):
            return path, f"the float {value}, which JSON cannot represent"
        return None
    if value is None or isinstance(value, (str, bytes)):
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


SerializerFactory = Callable[..., MessageSerializer]


class SerializersRegistry:
    """Serializer classes by format name (``"msgpack"``, ``"json"``, yours)."""

    def __init__(self) -> None:
        self._registry: dict[str, SerializerFactory] = {}

    def register_serializer(self, format: str, serializer_class: SerializerFactory) -> None:
        """Make *serializer_class* the serializer of ``serializer_format=format``.

        *serializer_class* is a subclass of :class:`BaseMessageSerializer`,
        or any class with ``serialize`` and ``deserialize`` methods. A format
        registered again (a built-in one too) is replaced.
        """
        if not isinstance(format, str) or not format:
            raise InvalidConfiguration(f"A serializer format must be a non-empty str: {format!r}")
        if not isinstance(serializer_class, type) or not (
            issubclass(serializer_class, BaseMessageSerializer)
            or (
                callable(getattr(serializer_class, "serialize", None))
                and callable(getattr(serializer_class, "deserialize", None))
            )
        ):
            raise InvalidConfiguration(
                f"The serializer for {format!r} must be a subclass of BaseMessageSerializer "
                f"or a class with serialize() and deserialize() methods, not {serializer_class!r}"
            )
        self._registry[format] = serializer_class

    def get_serializer(self, format: str, *args: Any, **kwargs: Any) -> MessageSerializer:
        """A new serializer of *format*, built with *args* and *kwargs*.

        Keyword arguments its constructor does not name are left out (all
        are passed to one that takes ``**kwargs``); leaving out
        ``symmetric_encryption_keys`` that were given raises
        :class:`~channels_redis.errors.InvalidConfiguration`. Raises
        :class:`SerializerDoesNotExist` for a format nobody registered.
        """
        try:
            factory = self._registry[format]
        except (KeyError, TypeError):
            raise SerializerDoesNotExist(format, self._registry) from None
        accepted = _accepted_keywords(factory, kwargs)
        if kwargs.get("symmetric_encryption_keys") and "symmetric_encryption_keys" not in accepted:
            raise InvalidConfiguration(
                f"The {format!r} serializer ({getattr(factory, '__qualname__', factory)}) "
                "does not take symmetric_encryption_keys, so it cannot encrypt; give its "
                "constructor a symmetric_encryption_keys argument (or **kwargs), or "
                "subclass BaseMessageSerializer"
            )
        return factory(*args, **accepted)

    def formats(self) -> list[str]:
        """The registered format names, sorted."""
        return sorted(self._registry)


def _accepted_keywords(factory: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Those of *kwargs* that *factory*'s signature takes."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return kwargs  # no signature to read: pass everything, as channels_redis does
    names = set()
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            return kwargs
        if parameter.kind in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY,
        ):
            names.add(parameter.name)
    return {name: value for name, value in kwargs.items() if name in names}


registry = SerializersRegistry()
registry.register_serializer("msgpack", MsgPackSerializer)
registry.register_serializer("json", JSONSerializer)

# binascii.Error is what a corrupt boxed base64 string raises on decode.
DecodeErrors = (ValueError, TypeError, binascii.Error, msgpack.ExtraData)
