"""BaseChannelLayer: configuration, capacities and the name-check methods."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from channels.exceptions import ChannelFull, MessageTooLarge
from channels.layers import BaseChannelLayer, InMemoryChannelLayer


def test_defaults() -> None:
    layer = BaseChannelLayer()
    assert layer.expiry == 60
    assert layer.capacity == 100
    assert layer.channel_capacity == []
    assert layer.extensions == []
    assert layer.get_capacity("any.channel") == 100


def test_exceptions_are_attributes_of_every_layer() -> None:
    # The specification lists them among the attributes of a layer.
    assert BaseChannelLayer.ChannelFull is ChannelFull
    assert BaseChannelLayer.MessageTooLarge is MessageTooLarge
    assert InMemoryChannelLayer().ChannelFull is ChannelFull


def test_in_memory_extensions() -> None:
    assert InMemoryChannelLayer.extensions == ["groups", "flush"]


def test_glob_capacities() -> None:
    layer = BaseChannelLayer(
        capacity=10, channel_capacity={"http.request": 2, "websocket.send!*": 3, "chat.*": 4}
    )
    assert layer.get_capacity("http.request") == 2
    # A glob matches the whole name, not a prefix of it.
    assert layer.get_capacity("http.request.more") == 10
    assert layer.get_capacity("xhttp.request") == 10
    assert layer.get_capacity("websocket.send!abc") == 3
    assert layer.get_capacity("websocket.send!") == 3
    assert layer.get_capacity("chat.room-1") == 4
    assert layer.get_capacity("chat") == 10
    assert layer.get_capacity("other") == 10


def test_glob_characters_are_not_regular_expressions() -> None:
    layer = BaseChannelLayer(capacity=10, channel_capacity={"a.b?": 1})
    assert layer.get_capacity("a.bc") == 1  # "?" is one character
    assert layer.get_capacity("axbc") == 10  # "." is a period
    assert layer.get_capacity("a.b") == 10


def test_regex_capacities_match_from_the_start() -> None:
    layer = BaseChannelLayer(capacity=10, channel_capacity={re.compile(r"websocket\.send!.+"): 5})
    assert layer.get_capacity("websocket.send!abc") == 5
    assert layer.get_capacity("websocket.send!") == 10
    assert layer.get_capacity("my.websocket.send!abc") == 10


def test_first_matching_pattern_wins() -> None:
    broad_first = BaseChannelLayer(channel_capacity={"chat.*": 1, "chat.vip.*": 2})
    assert broad_first.get_capacity("chat.vip.room") == 1
    narrow_first = BaseChannelLayer(channel_capacity={"chat.vip.*": 2, "chat.*": 1})
    assert narrow_first.get_capacity("chat.vip.room") == 2
    assert narrow_first.get_capacity("chat.room") == 1
    mixed = BaseChannelLayer(channel_capacity={re.compile("chat"): 3, "chat.*": 1})
    assert mixed.get_capacity("chat.room") == 3


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"capacity": 0}, ValueError, "capacity must be at least 1, not 0"),
        ({"capacity": -5}, ValueError, "capacity must be at least 1, not -5"),
        ({"capacity": "10"}, TypeError, "capacity must be an integer, not str: '10'"),
        ({"capacity": 2.5}, TypeError, "capacity must be an integer, not float: 2.5"),
        ({"capacity": True}, TypeError, "capacity must be an integer, not bool: True"),
        ({"capacity": None}, TypeError, "capacity must be an integer, not NoneType: None"),
        ({"expiry": 0}, ValueError, "expiry must be a positive number of seconds, not 0"),
        ({"expiry": -1.5}, ValueError, "expiry must be a positive number of seconds, not -1.5"),
        ({"expiry": math.nan}, ValueError, "expiry must be a positive number of seconds, not nan"),
        ({"expiry": "60"}, TypeError, "expiry must be a number of seconds, not str: '60'"),
        ({"expiry": False}, TypeError, "expiry must be a number of seconds, not bool: False"),
        (
            {"channel_capacity": {"http.*": 0}},
            ValueError,
            "channel_capacity['http.*'] must be at least 1, not 0",
        ),
        (
            {"channel_capacity": {"http.*": "5"}},
            TypeError,
            "channel_capacity['http.*'] must be an integer, not str: '5'",
        ),
        (
            {"channel_capacity": {re.compile("x"): None}},
            TypeError,
            "channel_capacity[re.compile('x')] must be an integer, not NoneType",
        ),
        (
            {"channel_capacity": {5: 10}},
            TypeError,
            "channel_capacity keys must be glob strings or compiled regular expressions, "
            "not int: 5",
        ),
        (
            {"channel_capacity": [("http.*", 5)]},
            TypeError,
            "channel_capacity must be a mapping of patterns to capacities, not list",
        ),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error) as caught:
        BaseChannelLayer(**options)
    assert message in str(caught.value)
    # The in-memory layer checks them the same way.
    with pytest.raises(error):
        InMemoryChannelLayer(**options)


@pytest.mark.parametrize(
    ("group_expiry", "error"), [(0, ValueError), (-1, ValueError), ("1", TypeError)]
)
def test_bad_group_expiry_is_refused(group_expiry: Any, error: type) -> None:
    with pytest.raises(error, match=f"group_expiry must be .*{group_expiry!r}"):
        InMemoryChannelLayer(group_expiry=group_expiry)


def test_fractional_and_integer_timings_are_accepted() -> None:
    layer = InMemoryChannelLayer(expiry=0.5, group_expiry=2)
    assert (layer.expiry, layer.group_expiry) == (0.5, 2)


def test_require_valid_names_return_true_or_raise() -> None:
    layer = BaseChannelLayer()
    assert layer.require_valid_channel_name("chat.room!abc") is True
    assert layer.require_valid_group_name("chat-room") is True
    with pytest.raises(TypeError, match="'bad name'"):
        layer.require_valid_channel_name("bad name")
    with pytest.raises(TypeError, match="'bad!group'"):
        layer.require_valid_group_name("bad!group")
    assert layer.require_valid_channel_name("reader!", receive=True) is True
    with pytest.raises(TypeError, match="must end at its '!'"):
        layer.require_valid_channel_name("reader!local", receive=True)


def test_valid_channel_names_takes_a_list() -> None:
    layer = BaseChannelLayer()
    assert layer.valid_channel_names(["a", "b!c"]) is True
    with pytest.raises(TypeError, match="'no space'"):
        layer.valid_channel_names(["ok", "no space"])
    with pytest.raises(TypeError, match="must be a list of names, not 'single'"):
        layer.valid_channel_names("single")  # type: ignore[arg-type]


def test_match_type_and_length() -> None:
    layer = BaseChannelLayer()
    assert layer.match_type_and_length("x" * 99)
    assert not layer.match_type_and_length("x" * 100)
    assert not layer.match_type_and_length(b"bytes")


def test_non_local_name() -> None:
    layer = BaseChannelLayer()
    assert layer.non_local_name("reader!local") == "reader!"
    assert layer.non_local_name("reader!") == "reader!"
    assert layer.non_local_name("plain.name") == "plain.name"


@pytest.mark.parametrize(
    ("method", "replacement", "good", "bad"),
    [
        ("valid_channel_name", "require_valid_channel_name", "fine.name", "bad name"),
        ("valid_group_name", "require_valid_group_name", "fine-group", "bad group"),
    ],
    ids=["channel", "group"],
)
def test_deprecated_name_checks_warn_and_still_check(
    method: str, replacement: str, good: str, bad: str
) -> None:
    check = getattr(BaseChannelLayer(), method)
    with pytest.warns(DeprecationWarning, match=replacement):
        assert check(good) is True
    with (
        pytest.warns(DeprecationWarning, match="deprecated"),
        pytest.raises(TypeError, match=repr(bad)),
    ):
        check(bad)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("call", "extension"),
    [
        (lambda layer: layer.send("a", {}), None),
        (lambda layer: layer.receive("a"), None),
        (lambda layer: layer.new_channel(), None),
        (lambda layer: layer.flush(), "flush extension"),
        (lambda layer: layer.group_add("g", "a"), "groups extension"),
        (lambda layer: layer.group_discard("g", "a"), "groups extension"),
        (lambda layer: layer.group_send("g", {}), "groups extension"),
    ],
)
async def test_base_coroutines_say_what_is_missing(call: Any, extension: str | None) -> None:
    class PartialLayer(BaseChannelLayer):
        pass

    with pytest.raises(NotImplementedError, match="PartialLayer does not implement") as caught:
        await call(PartialLayer())
    if extension:
        assert extension in str(caught.value)


@pytest.mark.asyncio
async def test_base_close_does_nothing() -> None:
    assert await BaseChannelLayer().close() is None


class ThirdPartyLayer(BaseChannelLayer):
    """A layer with rules of its own, as a third-party layer may have."""

    channel_name_regex = re.compile(r"^[a-z:]+$")
    group_name_regex = re.compile(r"^grp:[a-z]+$")
    invalid_name_error = "{} names here are lower-case letters and colons, under {} long"
    MAX_NAME_LENGTH = 12


def test_a_subclass_s_regexes_and_length_are_used() -> None:
    layer = ThirdPartyLayer()
    assert layer.require_valid_channel_name("urn:chat") is True
    assert layer.require_valid_group_name("grp:room") is True
    # Valid by the default rules, not by this layer's.
    with pytest.raises(TypeError, match=r"'chat\.room'"):
        layer.require_valid_channel_name("chat.room")
    with pytest.raises(TypeError, match="'room'"):
        layer.require_valid_group_name("room")
    with pytest.raises(TypeError, match="is 13 characters long"):
        layer.require_valid_channel_name("a" * 13)
    assert not layer.match_type_and_length("a" * 12)
    assert layer.match_type_and_length("a" * 11)
    assert layer.valid_channel_names(["urn:a", "urn:b"]) is True


def test_a_subclass_s_message_format_is_used() -> None:
    layer = ThirdPartyLayer()
    with pytest.raises(TypeError) as caught:
        layer.require_valid_group_name("Room!")
    assert str(caught.value) == (
        "Group names here are lower-case letters and colons, under 12 long; 'Room!' is not one"
    )


def test_an_overridden_match_type_and_length_is_used() -> None:
    class LongNames(BaseChannelLayer):
        def match_type_and_length(self, name: object) -> bool:
            return isinstance(name, str) and len(name) < 1000

    long_name = "x" * 500
    assert LongNames().require_valid_channel_name(long_name) is True
    assert LongNames().require_valid_group_name(long_name) is True
    with pytest.raises(TypeError, match="500 characters long"):
        BaseChannelLayer().require_valid_channel_name(long_name)


def test_the_default_rules_are_channels_rules() -> None:
    layer = BaseChannelLayer()
    assert layer.MAX_NAME_LENGTH == 100
    assert layer.channel_name_regex.match("room.1-a_b!local") is not None
    assert layer.group_name_regex.match("room!") is None
    # Anchored at the very end: no trailing newline slips through.
    with pytest.raises(TypeError, match=r"'room\\n' is not one"):
        layer.require_valid_channel_name("room\n")
    with pytest.raises(TypeError, match="must be a str, not bytes"):
        layer.require_valid_group_name(b"room")
    assert "{}" in layer.invalid_name_error
