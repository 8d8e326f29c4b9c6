"""HttpCommunicator against small raw ASGI applications (no Django, no Channels)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from channels_testing import HttpCommunicator


class Recorder:
    """Answers every request with a fixed response; remembers scope and request events."""

    def __init__(self, *events: dict[str, Any]) -> None:
        self.events = events or (
            {"type": "http.response.start", "status": 200, "headers": []},
            {"type": "http.response.body", "body": b"ok"},
        )
        self.scope: dict[str, Any] | None = None
        self.received: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scope = scope
        while True:
            message = await receive()
            self.received.append(message)
            if not message.get("more_body", False):
                break
        for event in self.events:
            await send(event)


@pytest.mark.asyncio
async def test_scope_of_a_simple_request() -> None:
    app = Recorder()
    communicator = HttpCommunicator(
        app, "post", "/upload/", body=b"data", headers=[(b"Content-Type", b"text/plain")]
    )
    await communicator.get_response()
    await communicator.wait()
    assert app.scope == {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/upload/",
        "raw_path": b"/upload/",
        "root_path": "",
        "query_string": b"",
        # Header names are lower-cased, as the ASGI specification requires.
        "headers": [(b"content-type", b"text/plain")],
    }
    assert app.received == [{"type": "http.request", "body": b"data"}]


@pytest.mark.parametrize(
    ("path", "scope_path", "raw_path", "query_string"),
    [
        ("/search/?q=channels&page=2", "/search/", b"/search/", b"q=channels&page=2"),
        ("/caf%C3%A9/", "/café/", b"/caf%C3%A9/", b""),
        ("/café/menu", "/café/menu", b"/caf%C3%A9/menu", b""),
        ("/a b/?q=a b&x=ü", "/a b/", b"/a%20b/", b"q=a%20b&x=%C3%BC"),
        ("/files/a%2Fb", "/files/a/b", b"/files/a%2Fb", b""),
        ("/page/#section", "/page/", b"/page/", b""),
        ("", "/", b"/", b""),
        ("?only=query", "/", b"/", b"only=query"),
    ],
)
@pytest.mark.asyncio
async def test_path_query_string_and_raw_path(
    path: str, scope_path: str, raw_path: bytes, query_string: bytes
) -> None:
    app = Recorder()
    communicator = HttpCommunicator(app, "GET", path)
    await communicator.get_response()
    assert app.scope is not None
    assert app.scope["path"] == scope_path
    assert app.scope["raw_path"] == raw_path
    assert app.scope["query_string"] == query_string


@pytest.mark.asyncio
async def test_get_response_collects_a_chunked_body() -> None:
    app = Recorder(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"x-a", b"1")],
            "trailers": False,
        },
        {"type": "http.response.body", "body": b"one ", "more_body": True},
        {"type": "http.response.body", "more_body": True},
        {"type": "http.response.body", "body": b"two", "more_body": True},
        {"type": "http.response.body", "body": b""},
    )
    response = await HttpCommunicator(app, "GET", "/").get_response()
    assert response == {
        "status": 201,
        "headers": [(b"x-a", b"1")],
        "trailers": False,
        "body": b"one two",
    }


@pytest.mark.asyncio
async def test_missing_headers_in_the_response_are_an_empty_list() -> None:
    app = Recorder(
        {"type": "http.response.start", "status": 204},
        {"type": "http.response.body"},
    )
    assert await HttpCommunicator(app, "GET", "/").get_response() == {
        "status": 204,
        "headers": [],
        "body": b"",
    }


@pytest.mark.asyncio
async def test_the_request_is_sent_once() -> None:
    app = Recorder()
    communicator = HttpCommunicator(app, "GET", "/")
    await communicator.send_request()
    await communicator.send_request()
    await communicator.get_response()
    assert app.received == [{"type": "http.request", "body": b""}]


@pytest.mark.parametrize(
    ("events", "message"),
    [
        (({"type": "http.response.body", "body": b"x"},), "'http.response.start' event first"),
        (
            (
                {"type": "http.response.start", "status": 200},
                {"type": "http.response.start", "status": 200},
            ),
            "'http.response.body' event",
        ),
    ],
)
@pytest.mark.asyncio
async def test_a_response_out_of_order_is_reported(
    events: tuple[dict[str, Any], ...], message: str
) -> None:
    communicator = HttpCommunicator(Recorder(*events), "GET", "/")
    with pytest.raises(AssertionError, match=message):
        await communicator.get_response()


@pytest.mark.asyncio
async def test_an_application_error_surfaces() -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise LookupError("app failed")

    communicator = HttpCommunicator(failing, "GET", "/")
    with pytest.raises(LookupError, match="app failed"):
        await communicator.get_response()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": b"GET"}, "method must be a non-empty str"),
        ({"method": ""}, "method must be a non-empty str"),
        ({"path": b"/"}, "path must be a str"),
        ({"path": None}, "path must be a str"),
        ({"body": "text"}, "body must be bytes, not str"),
        ({"headers": {b"a": b"b"}}, "headers must be a list of \\(name, value\\) pairs"),
        ({"headers": "a: b"}, "headers must be a list"),
        ({"headers": [("a", "b")]}, "each header must be a \\(bytes, bytes\\) pair"),
        ({"headers": [(b"a", b"b", b"c")]}, "each header must be a \\(bytes, bytes\\) pair"),
        ({"headers": [b"a"]}, "each header must be a \\(bytes, bytes\\) pair"),
        ({"application": None}, "application must be an ASGI application"),
        ({"application": "myproject.asgi.application"}, "application must be an ASGI"),
    ],
)
def test_wrong_argument_types_are_type_errors(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"application": Recorder(), "method": "GET", "path": "/"}
    arguments.update(kwargs)
    with pytest.raises(TypeError, match=message):
        HttpCommunicator(**arguments)


@pytest.mark.asyncio
async def test_bytearray_body_and_list_headers_are_accepted() -> None:
    app = Recorder()
    communicator = HttpCommunicator(
        app, "PUT", "/", body=bytearray(b"xy"), headers=[[b"X-One", b"1"]]
    )
    await communicator.get_response()
    assert app.received == [{"type": "http.request", "body": b"xy"}]
    assert app.scope is not None
    assert app.scope["headers"] == [(b"x-one", b"1")]


async def failing_later(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await asyncio.sleep(0.01)
    raise LookupError("late failure")


async def returns(scope: Any, receive: Any, send: Any) -> None:
    await receive()


@pytest.mark.parametrize(
    ("app", "error", "match"),
    [
        # An application error is reported as it is.
        (failing_later, LookupError, "late failure"),
        (returns, asyncio.TimeoutError, "returned without sending"),
    ],
    ids=["error", "returns-without-answering"],
)
@pytest.mark.asyncio
async def test_an_application_that_ends_is_reported_without_waiting_for_the_timeout(
    app: Any, error: type[Exception], match: str
) -> None:
    communicator = HttpCommunicator(app, "GET", "/")
    started = time.monotonic()
    with pytest.raises(error, match=match):
        await communicator.get_response(timeout=5)
    assert time.monotonic() - started < 1


@pytest.mark.asyncio
async def test_no_response_times_out_and_stops_the_application() -> None:
    async def silent(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await asyncio.sleep(10)

    communicator = HttpCommunicator(silent, "GET", "/")
    with pytest.raises(asyncio.TimeoutError, match=r"within 0\.05 seconds"):
        await communicator.get_response(timeout=0.05)
    assert communicator.future.cancelled()


@pytest.mark.asyncio
async def test_output_sent_before_the_application_returned_is_still_received() -> None:
    async def answers_and_returns(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"done"})

    communicator = HttpCommunicator(answers_and_returns, "GET", "/")
    await communicator.send_request()
    await communicator.wait()
    assert await communicator.get_response() == {"status": 200, "headers": [], "body": b"done"}
