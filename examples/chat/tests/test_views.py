"""The pages: index, room, login and logout, and the room page's script."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from chat.models import RoomStats

pytestmark = pytest.mark.django_db


def test_index_has_the_room_form(client: Client) -> None:
    response = client.get("/chat/")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="room-name-input"' in html
    assert 'name="room"' in html
    assert 'id="room-name-submit"' in html
    assert 'id="room-stats-empty"' in html
    assert "runworker chat-stats" in html


def test_site_root_leads_to_the_index(client: Client) -> None:
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/chat/"


def test_index_lists_rooms_busiest_first(client: Client) -> None:
    RoomStats.objects.create(room_name="quiet", message_count=1)
    RoomStats.objects.create(room_name="busy", message_count=40)
    RoomStats.objects.create(room_name="café au lait", message_count=7)

    html = client.get("/chat/").content.decode()

    assert html.index(">busy<") < html.index(">café au lait<") < html.index(">quiet<")
    assert 'href="/chat/caf%C3%A9%20au%20lait/"' in html
    assert '<td class="message-count">40</td>' in html


@pytest.mark.parametrize(
    ("typed", "location"),
    [
        ("lobby", "/chat/lobby/"),
        ("  lobby  ", "/chat/lobby/"),
        ("room with spaces", "/chat/room%20with%20spaces/"),
        ("café", "/chat/caf%C3%A9/"),
        ("what? #1 & 100%", "/chat/what%3F%20%231%20&%20100%25/"),
    ],
)
def test_room_form_leads_to_the_room(client: Client, typed: str, location: str) -> None:
    response = client.get("/chat/", {"room": typed})

    assert response.status_code == 302
    assert response["Location"] == location


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter a room name."),
        ("   ", "Enter a room name."),
        ("x" * 101, "at most 100 characters long; this one has 101."),
        ("a/b", "cannot contain &#x27;/&#x27;."),
    ],
)
def test_room_form_explains_an_unusable_name(client: Client, typed: str, message: str) -> None:
    response = client.get("/chat/", {"room": typed})

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="room-name-error"' in html
    assert message in html


def test_room_page_opens_the_socket_with_the_static_script(client: Client) -> None:
    response = client.get("/chat/lobby/")

    html = response.content.decode()
    assert response.status_code == 200
    for element_id in ("chat-log", "chat-message-input", "chat-message-submit", "chat-status"):
        assert f'id="{element_id}"' in html
    assert '<script id="room-name" type="application/json">"lobby"</script>' in html
    assert '<script src="/static/chat/room.js" data-close-invalid-room="4400">' in html


@pytest.mark.parametrize(
    ("path", "room_name"),
    [
        ("/chat/caf%C3%A9/", "café"),
        ("/chat/cafe%CC%81/", "café"),  # decomposed: shown (and joined) as NFC
        ("/chat/room%20with%20spaces/", "room with spaces"),
        ("/chat/%3F%23%25/", "?#%"),
    ],
)
def test_room_page_for_names_that_are_not_group_names(
    client: Client, path: str, room_name: str
) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert response.context["room_name"] == room_name


def test_room_name_is_escaped_on_the_room_page(client: Client) -> None:
    name = "<img src=x onerror=alert(1)>"

    html = client.get(reverse("chat:room", args=[name])).content.decode()

    assert name not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    # json_script escapes "<" so the name cannot end the script element early.
    assert json.dumps(name).replace("<", "\\u003C").replace(">", "\\u003E") in html


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/chat/" + "x" * 101 + "/", "at most 100 characters long; this one has 101."),
        ("/chat/a/b/", "cannot contain &#x27;/&#x27;."),
        ("/chat/%2E%2E/", "cannot be called"),
        ("/chat/bell%07/", "control characters"),
    ],
)
def test_room_page_explains_an_unusable_name(client: Client, path: str, message: str) -> None:
    response = client.get(path)

    html = response.content.decode()
    assert response.status_code == 400
    assert 'data-state="refused"' in html
    assert message in html
    assert "room.js" not in html  # no socket to a room that cannot exist


def test_room_script_is_a_static_file() -> None:
    found = finders.find("chat/room.js")

    assert found is not None
    with open(found, encoding="utf-8") as script:
        source = script.read()
    assert '"/ws/chat/" + encodeURIComponent(roomName) + "/"' in source
    for element_id in ("chat-log", "chat-message-input", "chat-message-submit", "chat-status"):
        assert f'"{element_id}"' in source


def test_anonymous_visitor_is_offered_to_log_in(client: Client) -> None:
    html = client.get("/chat/lobby/").content.decode()

    assert 'href="/accounts/login/?next=/chat/lobby/"' in html
    assert "anonymous" in html


def test_login_and_logout(client: Client, django_user_model: Any) -> None:
    django_user_model.objects.create_user(username="alice", password="correct-horse-9")

    login_page = client.get("/accounts/login/?next=/chat/lobby/")
    refused = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    accepted = client.post(
        "/accounts/login/",
        {"username": "alice", "password": "correct-horse-9", "next": "/chat/lobby/"},
    )
    room = client.get("/chat/lobby/").content.decode()
    logged_out = client.post("/accounts/logout/")

    assert login_page.status_code == 200
    assert 'id="login-submit"' in login_page.content.decode()
    assert 'id="login-error"' in refused.content.decode()
    assert accepted.status_code == 302
    assert accepted["Location"] == "/chat/lobby/"
    assert '<strong id="current-user">alice</strong>' in room
    assert logged_out.status_code == 302
    assert logged_out["Location"] == "/chat/"
    assert 'id="current-user"' not in client.get("/chat/").content.decode()
