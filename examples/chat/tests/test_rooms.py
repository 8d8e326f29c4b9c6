"""The room name rule and the group names derived from room names."""

from __future__ import annotations

import pytest
from channels.layers import require_valid_group_name
from hypothesis import given
from hypothesis import strategies as st

from chat.rooms import MAX_ROOM_NAME_LENGTH, InvalidRoomName, clean_room_name, group_name_for


def _usable(name: str) -> bool:
    try:
        clean_room_name(name)
    except InvalidRoomName:
        return False
    return True


room_names = st.text(min_size=1, max_size=MAX_ROOM_NAME_LENGTH).filter(_usable)


@given(room_names)
def test_every_usable_room_name_maps_to_a_valid_group_name(name: str) -> None:
    group = group_name_for(clean_room_name(name))

    assert require_valid_group_name(group) == group
    assert group.startswith("chat.")


@given(room_names, room_names)
def test_different_room_names_never_share_a_group(first: str, second: str) -> None:
    first, second = clean_room_name(first), clean_room_name(second)
    if first != second:
        assert group_name_for(first) != group_name_for(second)


def test_group_names_are_the_same_in_every_process() -> None:
    # A fixed value: a salted or per-process hash would split a room in two
    # across servers sharing a Redis layer.
    assert group_name_for("Lobby") == "chat.lobby.1e3c04ae89b4c7afa736"


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("café au lait", "chat.cafe-au-lait."),
        ("🎉 Party!", "chat.party."),
        ("общий чат", "chat."),
        ("x" * 100, "chat." + "x" * 40 + "."),
    ],
)
def test_group_names_stay_readable(name: str, group: str) -> None:
    assert group_name_for(name).startswith(group)


def test_names_are_compared_in_nfc() -> None:
    assert clean_room_name("cafe\u0301") == "caf\u00e9"


def test_length_is_counted_after_nfc() -> None:
    # 100 decomposed "é" are 200 code points but 100 characters once composed.
    assert clean_room_name("e\u0301" * 100) == "\u00e9" * 100


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("", "empty"),
        (None, "empty"),
        ("x" * 101, "too_long"),
        ("a/b", "slash"),
        (".", "dot_segment"),
        ("..", "dot_segment"),
        ("line\nbreak", "control_character"),
        ("\x7f", "control_character"),
        ("\ud800", "control_character"),
    ],
)
def test_unusable_names_are_refused_with_a_code(name: object, code: str) -> None:
    with pytest.raises(InvalidRoomName) as refused:
        clean_room_name(name)

    assert refused.value.code == code
    assert len(str(refused.value).encode()) <= 123  # fits a WebSocket close reason


@pytest.mark.parametrize("name", ["...", ".hidden", "a.b", " ", "\u200d", "%2F", "?", "#"])
def test_odd_but_harmless_names_are_allowed(name: str) -> None:
    assert clean_room_name(name) == name
