"""Channel and group name rules (channels.layers.names), as properties."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from channels.layers import names

ALLOWED = string.ascii_letters + string.digits + "-_."

plain_names = st.text(alphabet=ALLOWED, min_size=1, max_size=names.MAX_NAME_LENGTH - 1)
# Any character at all except the allowed ones (and, for channels, the type
# characters, which are tested on their own).
foreign_characters = st.characters(
    blacklist_characters=ALLOWED + "!?", blacklist_categories=("Cs",)
)


@st.composite
def names_with_a_foreign_character(draw: st.DrawFn) -> str:
    before = draw(st.text(alphabet=ALLOWED, max_size=40))
    after = draw(st.text(alphabet=ALLOWED, max_size=40))
    return before + draw(foreign_characters) + after


@given(plain_names)
def test_allowed_characters_under_the_limit_pass(name: str) -> None:
    assert names.require_valid_channel_name(name) == name
    assert names.require_valid_group_name(name) == name


@given(names_with_a_foreign_character())
@example("tab\there")
@example("caf\u00e9")
@example(" leading-space")
def test_any_foreign_character_fails(name: str) -> None:
    with pytest.raises(TypeError) as caught:
        names.require_valid_channel_name(name)
    assert repr(name) in str(caught.value)
    with pytest.raises(TypeError) as caught:
        names.require_valid_group_name(name)
    assert repr(name) in str(caught.value)


@given(st.text(alphabet=ALLOWED, min_size=names.MAX_NAME_LENGTH, max_size=300))
def test_names_of_100_characters_or_more_fail(name: str) -> None:
    with pytest.raises(TypeError, match=f"is {len(name)} characters long"):
        names.require_valid_channel_name(name)
    with pytest.raises(TypeError, match=f"is {len(name)} characters long"):
        names.require_valid_group_name(name)


def test_the_length_limit_is_exact() -> None:
    assert names.MAX_NAME_LENGTH == 100
    names.require_valid_channel_name("c" * 99)
    names.require_valid_group_name("g" * 99)
    names.require_valid_channel_name("reader!" + "l" * 92)
    with pytest.raises(TypeError, match="100 characters long"):
        names.require_valid_channel_name("reader!" + "l" * 93)
    with pytest.raises(TypeError, match="'ggggg"):
        names.require_valid_group_name("g" * 100)


@given(
    plain_names,
    st.sampled_from("!?"),
    st.text(alphabet=ALLOWED, max_size=40),
)
def test_one_type_character_after_a_prefix_passes(prefix: str, mark: str, local: str) -> None:
    name = prefix + mark + local
    assume(len(name) < names.MAX_NAME_LENGTH)
    assert names.require_valid_channel_name(name) == name
    with pytest.raises(TypeError, match="group names may contain only"):
        names.require_valid_group_name(name)


@given(
    st.text(alphabet=ALLOWED, max_size=20),
    st.lists(st.sampled_from("!?"), min_size=2, max_size=3),
    st.lists(st.text(alphabet=ALLOWED, max_size=10), min_size=3, max_size=3),
)
def test_two_type_characters_fail(prefix: str, marks: list[str], parts: list[str]) -> None:
    name = prefix + "".join(mark + part for mark, part in zip(marks, parts, strict=False))
    with pytest.raises(TypeError, match="at most one '!'"):
        names.require_valid_channel_name(name)


@pytest.mark.parametrize("name", ["!local", "?local", "!", "?", ""])
def test_type_character_needs_a_prefix(name: str) -> None:
    with pytest.raises(TypeError, match=re.escape(f"Channel name {name!r} is invalid")):
        names.require_valid_channel_name(name)


@pytest.mark.parametrize("name", [b"bytes", None, 5, 1.5, ["a"], ("a",)])
def test_non_strings_fail_naming_the_type(name: object) -> None:
    expected = f"must be a str, not {type(name).__name__}: {name!r}"
    with pytest.raises(TypeError) as caught:
        names.require_valid_channel_name(name)
    assert expected in str(caught.value)
    with pytest.raises(TypeError) as caught:
        names.require_valid_group_name(name)
    assert expected in str(caught.value)


def test_receive_names_of_process_specific_channels_end_at_the_bang() -> None:
    assert names.require_valid_channel_name("reader!", receive=True) == "reader!"
    assert names.require_valid_channel_name("plain", receive=True) == "plain"
    assert names.require_valid_channel_name("single?local", receive=True) == "single?local"
    with pytest.raises(TypeError, match="'reader!local' is invalid for receive"):
        names.require_valid_channel_name("reader!local", receive=True)


@given(plain_names, st.text(alphabet=ALLOWED, max_size=40))
def test_non_local_name_is_the_part_up_to_the_bang(remote: str, local: str) -> None:
    assert names.non_local_name(f"{remote}!{local}") == f"{remote}!"
    assert names.non_local_name(remote) == remote
    assert names.non_local_name(f"{remote}?{local}") == f"{remote}?{local}"
