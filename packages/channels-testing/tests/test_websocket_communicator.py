"""WebsocketCommunicator against small raw ASGI applications (no Django, no Channels)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from channels_testing import WebsocketCommunicator


class EchoServer:
    """A raw ASGI WebSocket app.

    On connect it sends *handshake* (an accept by default). Then it echoes
    frames; the text frames "json", "close", "bad-frame", "wrong-type" and
    "silence" make it send JSON, close, send a malformed frame, send an event
    of another type, or nothing. It records the scope and what it received.
    """

    def __init__(self, *handshake: dict[str, Any]) -> None:
        self.handshake = handshake or ({"type": "websocket.accept"},)
        self.scope: dict[str, Any] | None = None
        self.received: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scope = scope
        while True:
            message = await receive()
            self.received.append(message)
            kind = message["type"]
            if kind == "websocket.connect":
                for event in self.handshake:
                    await send(event)
            elif kind == "websocket.disconnect":
                return
            elif kind == "websocket.receive":
                text = message.get("text")
                if text == "json":
                    await send({"type": "websocket.send", "text": json.dumps({"a": [1, None]})})
                elif text == "close":
                    await send({"type": "websocket.close", "code": 4000})
                elif text == "bad-frame":
                    await send({"type": "websocket.send", "text": "x", "bytes": b"y"})
                elif text == "wrong-type":
                    await send({"type": "websocket.accept"})
                elif text == "silence":
                    pass
                else:
                    frame = {k: v for k, v in message.items() if k in ("text", "bytes")}
                    await send({"type": "websocket.send", **frame})


@pytest.mark.asyncio
async def test_scope() -> None:
    app = EchoServer()
    communicator = WebsocketCommunicator(
        app,
        "/chat/café/?room=1&x=é",
        headers=[(b"Origin", b"http://example.com")],
        subprotocols=["v1", "v2"],
    )
    await communicator.connect()
    await communicator.disconnect()
    assert app.scope == {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": "/chat/café/",
        "raw_path": b"/chat/caf%C3%A9/",
        "root_path": "",
        "query_string": b"room=1&x=%C3%A9",
        "headers": [(b"origin", b"http://example.com")],
        "subprotocols": ["v1", "v2"],
    }


@pytest.mark.asyncio
async def test_spec_version_is_announced() -> None:
    app = EchoServer()
    communicator = WebsocketCommunicator(app, "/", spec_version="2.3")
    await communicator.connect()
    await communicator.disconnect()
    assert app.scope is not None
    assert app.scope["asgi"]["spec_version"] == "2.3"
    assert app.scope["spec_version"] == "2.3"


@pytest.mark.parametrize(
    ("handshake", "result", "headers"),
    [
        (({"type": "websocket.accept"},), (True, None), []),
        (({"type": "websocket.accept", "subprotocol": "v2"},), (True, "v2"), []),
        (
            ({"type": "websocket.accept", "headers": [(b"x-a", b"1")]},),
            (True, None),
            [(b"x-a", b"1")],
        ),
        (({"type": "websocket.close"},), (False, 1000), None),
        (({"type": "websocket.close", "code": 4403},), (False, 4403), None),
        (
            (
                {"type": "websocket.http.response.start", "status": 401, "headers": []},
                {"type": "websocket.http.response.body", "body": b"no"},
            ),
            (False, 401),
            None,
        ),
    ],
    ids=["accept", "subprotocol", "headers", "close", "close-code", "denial-response"],
)
@pytest.mark.asyncio
async def test_connect_result(
    handshake: tuple[dict[str, Any], ...], result: tuple[bool, Any], headers: Any
) -> None:
    communicator = WebsocketCommunicator(EchoServer(*handshake), "/")
    assert await communicator.connect() == result
    assert communicator.response_headers == headers
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_connect_with_an_unexpected_event_is_reported() -> None:
    communicator = WebsocketCommunicator(EchoServer({"type": "websocket.send", "text": "x"}), "/")
    with pytest.raises(AssertionError, match=r"expected websocket\.accept or websocket\.close"):
        await communicator.connect()
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_connect_timeout() -> None:
    async def never_answers(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await asyncio.sleep(10)

    communicator = WebsocketCommunicator(never_answers, "/")
    with pytest.raises(asyncio.TimeoutError):
        await communicator.connect(timeout=0.05)


@pytest.mark.asyncio
async def test_text_and_binary_frames_round_trip() -> None:
    app = EchoServer()
    communicator = WebsocketCommunicator(app, "/")
    await communicator.connect()
    await communicator.send_to(text_data="héllo")
    assert await communicator.receive_from() == "héllo"
    await communicator.send_to(bytes_data=b"\x00\x01")
    assert await communicator.receive_from() == b"\x00\x01"
    await communicator.send_to(bytes_data=bytearray(b"ba"))
    assert await communicator.receive_from() == b"ba"
    # Empty frames are frames too.
    await communicator.send_to(text_data="")
    assert await communicator.receive_from() == ""
    await communicator.send_to(bytes_data=b"")
    assert await communicator.receive_from() == b""
    await communicator.disconnect()
    assert app.received[1:6] == [
        {"type": "websocket.receive", "text": "héllo"},
        {"type": "websocket.receive", "bytes": b"\x00\x01"},
        {"type": "websocket.receive", "bytes": b"ba"},
        {"type": "websocket.receive", "text": ""},
        {"type": "websocket.receive", "bytes": b""},
    ]


@pytest.mark.asyncio
async def test_json_helpers() -> None:
    app = EchoServer()
    communicator = WebsocketCommunicator(app, "/")
    await communicator.connect()
    await communicator.send_json_to({"é": [1, 2.5, None, True]})
    assert await communicator.receive_json_from() == {"é": [1, 2.5, None, True]}
    # It went as a text frame.
    assert json.loads(app.received[-1]["text"]) == {"é": [1, 2.5, None, True]}
    await communicator.send_to(text_data="json")
    assert await communicator.receive_json_from() == {"a": [1, None]}
    await communicator.send_to(bytes_data=b"{}")
    with pytest.raises(AssertionError, match="expected a text frame holding JSON"):
        await communicator.receive_json_from()
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("close", "expected a 'websocket.send' event"),
        ("wrong-type", "expected a 'websocket.send' event"),
        ("bad-frame", "exactly one of 'text' or 'bytes'"),
    ],
)
@pytest.mark.asyncio
async def test_receive_from_reports_events_that_are_not_frames(command: str, message: str) -> None:
    communicator = WebsocketCommunicator(EchoServer(), "/")
    await communicator.connect()
    await communicator.send_to(text_data=command)
    with pytest.raises(AssertionError, match=message):
        await communicator.receive_from()
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_receive_nothing() -> None:
    communicator = WebsocketCommunicator(EchoServer(), "/")
    await communicator.connect()
    assert await communicator.receive_nothing() is True
    await communicator.send_to(text_data="silence")
    assert await communicator.receive_nothing(timeout=0.02) is True
    await communicator.send_to(text_data="echo")
    assert await communicator.receive_nothing(timeout=0.05) is False
    assert await communicator.receive_from() == "echo"
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_disconnect_sends_the_code_and_waits_for_the_app() -> None:
    app = EchoServer()
    communicator = WebsocketCommunicator(app, "/")
    await communicator.connect()
    await communicator.disconnect(code=4001)
    assert app.received[-1] == {"type": "websocket.disconnect", "code": 4001}
    assert communicator.future.done()
    default = EchoServer()
    communicator = WebsocketCommunicator(default, "/")
    await communicator.connect()
    await communicator.disconnect()
    assert default.received[-1] == {"type": "websocket.disconnect", "code": 1000}


@pytest.mark.asyncio
async def test_an_application_error_surfaces_on_disconnect() -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        raise LookupError("app failed")

    communicator = WebsocketCommunicator(failing, "/")
    await communicator.connect()
    with pytest.raises(LookupError, match="app failed"):
        await communicator.disconnect()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text_data": "a", "bytes_data": b"b"}, "exactly one of text_data or bytes_data"),
        ({}, "exactly one of text_data or bytes_data"),
        ({"text_data": b"bytes"}, "text_data must be a str, not bytes"),
        ({"bytes_data": "text"}, "bytes_data must be bytes, not str"),
        ({"text_data": 5}, "text_data must be a str, not int"),
    ],
)
@pytest.mark.asyncio
async def test_send_to_argument_errors(kwargs: dict[str, Any], message: str) -> None:
    communicator = WebsocketCommunicator(EchoServer(), "/")
    await communicator.connect()
    with pytest.raises(TypeError, match=message):
        await communicator.send_to(**kwargs)
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_disconnect_code_must_be_an_int() -> None:
    communicator = WebsocketCommunicator(EchoServer(), "/")
    await communicator.connect()
    with pytest.raises(TypeError, match="code must be an int, not str"):
        await communicator.disconnect(code="1000")  # type: ignore[arg-type]
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": b"/"}, "path must be a str"),
        ({"subprotocols": "v1"}, "subprotocols must be a list of str"),
        ({"subprotocols": [b"v1"]}, "subprotocols must be a list of str"),
        ({"spec_version": 2.3}, "spec_version must be a str"),
        ({"headers": {b"a": b"b"}}, "headers must be a list"),
        ({"headers": [(b"a", "b")]}, "each header must be a \\(bytes, bytes\\) pair"),
        ({"application": 42}, "application must be an ASGI application"),
    ],
)
def test_constructor_argument_errors(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"application": EchoServer(), "path": "/"}
    arguments.update(kwargs)
    with pytest.raises(TypeError, match=message):
        WebsocketCommunicator(**arguments)
