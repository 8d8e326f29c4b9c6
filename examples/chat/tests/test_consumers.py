"""The chat socket, driven through the project's whole ASGI application.

Every socket goes through ``mysite.asgi.application``: the origin check,
sessions and authentication, the URL router and then ``ChatConsumer``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer, channel_layers
from channels.testing import WebsocketCommunicator

from chat.consumers import ANONYMOUS_NAME, CLOSE_INVALID_ROOM, MAX_MESSAGE_LENGTH
from chat.stats import STATS_CHANNEL

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def post(socket: WebsocketCommunicator, message: str) -> None:
    await socket.send_to(text_data=json.dumps({"message": message}))


async def test_message_reaches_everyone_in_the_room_and_no_one_else(open_socket: Any) -> None:
    alice = await open_socket("lobby")
    bob = await open_socket("lobby")
    elsewhere = await open_socket("kitchen")

    await post(alice, "hello")

    expected = {"type": "chat", "message": "hello", "user": ANONYMOUS_NAME}
    assert await alice.receive_json_from() == expected
    assert await bob.receive_json_from() == expected
    assert await elsewhere.receive_nothing(timeout=0.2)


async def test_a_socket_that_left_receives_nothing_more(open_socket: Any) -> None:
    staying = await open_socket("lobby")
    leaving = await open_socket("lobby")
    await leaving.disconnect()

    await post(staying, "still here?")

    assert (await staying.receive_json_from())["message"] == "still here?"
    assert leaving.future.done()


@pytest.mark.parametrize(
    "room_name",
    [
        "room with spaces",
        "café",
        "общий чат",
        "会议室",
        "🎉 party",
        "what? #1 & 100%",
        "  padded  ",
        "x" * 100,
        "é" * 100,
    ],
    ids=[
        "spaces",
        "accent",
        "cyrillic",
        "cjk",
        "emoji",
        "url-punctuation",
        "padded",
        "100-ascii",
        "100-accented",
    ],
)
async def test_room_names_that_are_not_group_names_work(open_socket: Any, room_name: str) -> None:
    first = await open_socket(room_name)
    second = await open_socket(room_name)

    await post(first, f"hi from {room_name}")

    assert (await second.receive_json_from())["message"] == f"hi from {room_name}"
    assert (await first.receive_json_from())["message"] == f"hi from {room_name}"


@pytest.mark.parametrize(
    ("room_a", "room_b"),
    [
        ("Lobby", "lobby"),  # same slug, different case
        ("café", "cafe"),  # same slug once the accent is dropped
        ("a b", "a-b"),
        ("общий", "чат"),  # no slug at all: the digest alone tells them apart
        ("x" * 99 + "a", "x" * 99 + "b"),  # differ after the slug's 40 characters
    ],
    ids=["case", "accent", "space-hyphen", "no-slug", "differ-at-the-end"],
)
async def test_rooms_whose_names_look_alike_stay_apart(
    open_socket: Any, room_a: str, room_b: str
) -> None:
    in_a = await open_socket(room_a)
    in_b = await open_socket(room_b)

    await post(in_a, "only for a")

    assert (await in_a.receive_json_from())["message"] == "only for a"
    assert await in_b.receive_nothing(timeout=0.2)


async def test_unicode_forms_of_one_name_are_one_room(open_socket: Any) -> None:
    composed = await open_socket("caf\u00e9")  # é as one code point
    decomposed = await open_socket("cafe\u0301")  # e + combining acute accent

    await post(decomposed, "same room")

    assert (await composed.receive_json_from())["message"] == "same room"


@pytest.mark.parametrize(
    ("room_name", "code", "reason"),
    [
        ("x" * 101, "too_long", "at most 100 characters long; this one has 101"),
        ("é" * 250, "too_long", "this one has 250"),
        ("a/b", "slash", "cannot contain '/'"),
        ("", "empty", "Enter a room name"),
        (".", "dot_segment", "'.' or '..'"),
        ("..", "dot_segment", "'.' or '..'"),
        ("tab\there", "control_character", "control characters"),
        ("nul\x00", "control_character", "control characters"),
    ],
    ids=["101-chars", "250-chars", "slash", "empty", "dot", "dot-dot", "tab", "nul"],
)
async def test_unusable_room_name_is_refused_with_a_reason(
    open_socket: Any, room_name: str, code: str, reason: str
) -> None:
    # Accepted, so that the page can be told why before the close.
    socket = await open_socket(room_name)

    error = await socket.receive_json_from()
    close = await socket.receive_output()

    assert error["type"] == "error"
    assert error["code"] == code
    assert reason in error["error"]
    assert close == {
        "type": "websocket.close",
        "code": CLOSE_INVALID_ROOM,
        "reason": error["error"],
    }
    # A close reason must fit in a control frame (RFC 6455 section 5.5).
    assert len(close["reason"].encode()) <= 123


async def test_frames_racing_a_refusal_are_ignored(open_socket: Any) -> None:
    socket = await open_socket("x" * 101)
    await post(socket, "sent before the close arrived")

    assert (await socket.receive_json_from())["type"] == "error"
    assert (await socket.receive_output())["type"] == "websocket.close"
    assert await socket.receive_nothing(timeout=0.1)


async def test_logged_in_users_name_is_on_their_messages(
    open_socket: Any, login_cookie: Any
) -> None:
    cookie = await asyncio.to_thread(login_cookie, "alice")
    alice = await open_socket("lobby", headers=[cookie])
    visitor = await open_socket("lobby")

    await post(alice, "hi, I am alice")
    await post(visitor, "hi, I am nobody")

    assert await visitor.receive_json_from() == {
        "type": "chat",
        "message": "hi, I am alice",
        "user": "alice",
    }
    assert await visitor.receive_json_from() == {
        "type": "chat",
        "message": "hi, I am nobody",
        "user": ANONYMOUS_NAME,
    }


async def test_forged_session_cookie_is_anonymous(open_socket: Any) -> None:
    socket = await open_socket("lobby", headers=[(b"cookie", b"sessionid=not-a-real-session")])

    await post(socket, "who am I?")

    assert (await socket.receive_json_from())["user"] == ANONYMOUS_NAME


@pytest.mark.parametrize(
    "origin",
    [b"http://evil.example", b"http://testserver.evil.example", b"null", None],
    ids=["other-site", "lookalike-host", "opaque", "missing"],
)
async def test_handshake_from_another_site_is_refused(
    application: Any, origin: bytes | None
) -> None:
    headers = [] if origin is None else [(b"origin", origin)]
    socket = WebsocketCommunicator(application, "/ws/chat/lobby/", headers=headers)

    connected, code = await socket.connect()

    # Closed before it was accepted, which a server answers with HTTP 403.
    assert (connected, code) == (False, 1000)
    await socket.wait()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_frame"),
        ('["message"]', "bad_frame"),
        ('{"text": "wrong key"}', "bad_frame"),
        ('{"message": 42}', "bad_frame"),
        ('{"message": "   "}', "empty_message"),
        (json.dumps({"message": "y" * (MAX_MESSAGE_LENGTH + 1)}), "message_too_long"),
    ],
    ids=["not-json", "not-object", "no-message", "not-text", "blank", "too-long"],
)
async def test_bad_frame_gets_an_error_and_the_socket_stays_usable(
    open_socket: Any, frame: str, code: str
) -> None:
    sender = await open_socket("lobby")
    listener = await open_socket("lobby")

    await sender.send_to(text_data=frame)
    error = await sender.receive_json_from()
    await post(sender, "still works")

    assert error["type"] == "error"
    assert error["code"] == code
    assert (await listener.receive_json_from())["message"] == "still works"


async def test_binary_frame_gets_an_error(open_socket: Any) -> None:
    socket = await open_socket("lobby")

    await socket.send_to(bytes_data=b"\x00\x01")

    assert (await socket.receive_json_from())["code"] == "bad_frame"


async def test_longest_message_is_delivered(open_socket: Any) -> None:
    socket = await open_socket("lobby")

    await post(socket, "z" * MAX_MESSAGE_LENGTH)

    assert (await socket.receive_json_from())["message"] == "z" * MAX_MESSAGE_LENGTH


async def test_each_message_is_reported_to_the_stats_channel(
    open_socket: Any, channel_layer: InMemoryChannelLayer
) -> None:
    socket = await open_socket("café")

    await post(socket, "count me")
    await socket.receive_json_from()

    event = await asyncio.wait_for(channel_layer.receive(STATS_CHANNEL), timeout=1)
    assert event == {"type": "room.message", "room": "café"}


async def test_chat_goes_on_when_no_worker_reads_the_stats_channel(
    open_socket: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # A small capacity, so the stats channel fills up after a few messages.
    channel_layers.set("default", InMemoryChannelLayer(channel_capacity={STATS_CHANNEL: 3}))
    sender = await open_socket("lobby")
    listener = await open_socket("lobby")

    with caplog.at_level(logging.DEBUG, logger="chat.stats"):
        for number in range(10):
            await post(sender, f"message {number}")
        received = [(await listener.receive_json_from())["message"] for _ in range(10)]

    assert received == [f"message {number}" for number in range(10)]
    full = [record for record in caplog.records if "is full" in record.getMessage()]
    assert len(full) == 7  # every dropped event is logged (only the first as a warning)
