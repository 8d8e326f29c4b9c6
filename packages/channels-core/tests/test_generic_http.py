"""channels.generic.http.AsyncHttpConsumer, including the documentation's long-poll and
server-sent-events examples."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import pytest

from channels.generic.http import AsyncHttpConsumer
from channels.layers import InMemoryChannelLayer
from channels.testing import ApplicationCommunicator, HttpCommunicator

IN_MEMORY = {"BACKEND": "channels.layers.InMemoryChannelLayer"}
SCOPE = {
    "type": "http",
    "method": "POST",
    "path": "/upload/",
    "query_string": b"",
    "headers": [],
}


async def responding(app: Any, path: str) -> HttpCommunicator:
    """A GET of *path* from *app*, once the response's first two events (its start and a
    first body chunk) have been received."""
    communicator = HttpCommunicator(app, "GET", path)
    await communicator.send_request()
    await communicator.receive_output()
    await communicator.receive_output()
    return communicator


class Recording(AsyncHttpConsumer):
    """Base for the test consumers: records what handle() saw and disconnect() calls."""

    record: list[Any] = []

    async def disconnect(self) -> None:
        self.record.append("disconnect")


class EchoBody(Recording):
    """Answers with the body it got, upper-cased, using send_response()."""

    async def handle(self, body: bytes) -> None:
        self.record.append(("handle", body))
        await self.send_response(
            201, body.upper(), headers=[(b"content-type", b"text/plain"), (b"x-n", b"1")]
        )


@pytest.mark.asyncio
async def test_handle_gets_the_whole_body_sent_in_chunks(
    layer_setting: str, tasks_left: Any
) -> None:
    record: list[Any] = []
    before = asyncio.all_tasks()
    communicator = ApplicationCommunicator(EchoBody.as_asgi(record=record), SCOPE)
    for chunk in (b"one ", b"two ", b""):
        await communicator.send_input({"type": "http.request", "body": chunk, "more_body": True})
    # A chunk without a body key is allowed by the spec and counts as empty.
    await communicator.send_input({"type": "http.request", "more_body": True})
    await communicator.send_input({"type": "http.request", "body": b"three"})
    assert await communicator.receive_output() == {
        "type": "http.response.start",
        "status": 201,
        "headers": [(b"content-type", b"text/plain"), (b"x-n", b"1")],
    }
    assert await communicator.receive_output() == {
        "type": "http.response.body",
        "body": b"ONE TWO THREE",
        "more_body": False,
    }
    await communicator.wait()
    assert record == [("handle", b"one two three"), "disconnect"]
    assert tasks_left(before) == set()


@pytest.mark.asyncio
async def test_http_communicator_get_response(layer_setting: str) -> None:
    communicator = HttpCommunicator(EchoBody.as_asgi(record=[]), "POST", "/x/", body=b"hi")
    response = await communicator.get_response()
    assert response == {
        "status": 201,
        "headers": [(b"content-type", b"text/plain"), (b"x-n", b"1")],
        "body": b"HI",
    }
    await communicator.wait()


class Streaming(Recording):
    """send_headers() with a dict, then the body in pieces with send_body()."""

    async def handle(self, body: bytes) -> None:
        await self.send_headers(status=202, headers={b"content-type": b"text/csv"})
        await self.send_body(b"a,b\n", more_body=True)
        await self.send_body(bytearray(b"1,2\n"), more_body=True)
        await self.send_body(b"")


@pytest.mark.asyncio
async def test_send_headers_with_a_dict_and_chunked_send_body(layer_setting: str) -> None:
    record: list[Any] = []
    communicator = HttpCommunicator(Streaming.as_asgi(record=record), "GET", "/csv/")
    response = await communicator.get_response()
    assert response == {
        "status": 202,
        "headers": [(b"content-type", b"text/csv")],
        "body": b"a,b\n1,2\n",
    }
    await communicator.wait()
    assert record == ["disconnect"]


@pytest.mark.asyncio
async def test_send_headers_defaults_to_200_and_no_headers(layer_setting: str) -> None:
    class Defaults(Recording):
        async def handle(self, body: bytes) -> None:
            await self.send_headers()
            await self.send_body(b"ok")

    communicator = HttpCommunicator(Defaults.as_asgi(), "GET", "/")
    assert await communicator.get_response() == {"status": 200, "headers": [], "body": b"ok"}
    await communicator.wait()


@pytest.mark.asyncio
async def test_send_body_refuses_str(layer_setting: str) -> None:
    class Wrong(Recording):
        async def handle(self, body: bytes) -> None:
            await self.send_headers()
            await self.send_body("text")  # type: ignore[arg-type]

    record: list[Any] = []
    communicator = HttpCommunicator(Wrong.as_asgi(record=record), "GET", "/")
    await communicator.send_request()
    with pytest.raises(TypeError, match="send_body\\(\\) takes bytes, not str"):
        await communicator.wait()
    assert record == ["disconnect"]


@pytest.mark.asyncio
async def test_an_exception_in_handle_propagates_and_disconnect_runs(
    layer_setting: str, tasks_left: Any
) -> None:
    class Failing(Recording):
        async def handle(self, body: bytes) -> None:
            raise LookupError("no such thing")

    record: list[Any] = []
    before = asyncio.all_tasks()
    communicator = HttpCommunicator(Failing.as_asgi(record=record), "GET", "/")
    await communicator.send_request()
    with pytest.raises(LookupError, match="no such thing"):
        await communicator.wait()
    assert record == ["disconnect"]
    assert tasks_left(before) == set()


@pytest.mark.asyncio
async def test_handle_must_be_implemented(layer_setting: str) -> None:
    communicator = HttpCommunicator(AsyncHttpConsumer.as_asgi(), "GET", "/")
    await communicator.send_request()
    with pytest.raises(NotImplementedError, match=r"AsyncHttpConsumer must implement handle"):
        await communicator.wait()


@pytest.mark.asyncio
async def test_handle_returning_without_a_response_stops_the_instance(
    layer_setting: str,
) -> None:
    class Silent(Recording):
        async def handle(self, body: bytes) -> None:
            self.record.append("handled")

    record: list[Any] = []
    communicator = HttpCommunicator(Silent.as_asgi(record=record), "GET", "/")
    await communicator.send_request()
    await communicator.wait()
    assert record == ["handled", "disconnect"]


@pytest.mark.asyncio
async def test_http_disconnect_during_the_upload_stops_the_instance(
    layer_setting: str, tasks_left: Any
) -> None:
    record: list[Any] = []
    before = asyncio.all_tasks()
    communicator = ApplicationCommunicator(EchoBody.as_asgi(record=record), SCOPE)
    await communicator.send_input({"type": "http.request", "body": b"part", "more_body": True})
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait()
    # handle() never ran: the body never completed.
    assert record == ["disconnect"]
    assert tasks_left(before) == set()


# -- the documentation's long-poll example ------------------------------------------------


class LongPollConsumer(Recording):
    """Answers only when an event arrives over the channel layer."""

    channel_names: list[str] = []

    async def handle(self, body: bytes) -> None:
        self.channel_names.append(self.channel_name)
        await self.send_headers(headers=[(b"Content-Type", b"application/json")])
        # An empty chunk with more_body keeps the response open until an event.
        await self.send_body(b"", more_body=True)

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send_body(json.dumps(event).encode("utf-8"))


@pytest.mark.asyncio
async def test_long_poll_is_answered_by_a_channel_layer_event(
    layer: InMemoryChannelLayer,
    tasks_left: Any,
) -> None:
    record: list[Any] = []
    names: list[str] = []
    before = asyncio.all_tasks()
    communicator = HttpCommunicator(
        LongPollConsumer.as_asgi(record=record, channel_names=names), "GET", "/poll/"
    )
    await communicator.send_request()
    assert await communicator.receive_output() == {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"Content-Type", b"application/json")],
    }
    assert await communicator.receive_output() == {
        "type": "http.response.body",
        "body": b"",
        "more_body": True,
    }
    # The response stays open and the instance alive while nothing happens.
    assert await communicator.receive_nothing(timeout=0.05)
    assert not communicator.future.done()

    await layer.send(names[0], {"type": "chat.message", "text": "hello"})
    event = await communicator.receive_output()
    assert event["more_body"] is False
    assert json.loads(event["body"]) == {"type": "chat.message", "text": "hello"}
    await communicator.wait()
    assert record == ["disconnect"]
    assert tasks_left(before) == set()


@pytest.mark.asyncio
async def test_long_poll_client_going_away_stops_the_instance(
    layer: InMemoryChannelLayer,
    tasks_left: Any,
) -> None:
    record: list[Any] = []
    names: list[str] = []
    before = asyncio.all_tasks()
    communicator = await responding(
        LongPollConsumer.as_asgi(record=record, channel_names=names), "/poll/"
    )
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait()
    assert record == ["disconnect"]
    assert tasks_left(before) == set()
    # An event for the departed instance goes nowhere and breaks nothing.
    await layer.send(names[0], {"type": "chat.message"})


# -- the documentation's server-sent-events example ------------------------------------------


class ServerSentEventsConsumer(Recording):
    """Streams a timestamp forever, until the client goes away."""

    interval = 0.01

    async def handle(self, body: bytes) -> None:
        await self.send_headers(
            headers=[
                (b"Cache-Control", b"no-cache"),
                (b"Content-Type", b"text/event-stream"),
                (b"Transfer-Encoding", b"chunked"),
            ]
        )
        while True:
            payload = f"data: {datetime.now().isoformat()}\n\n"
            await self.send_body(payload.encode("utf-8"), more_body=True)
            await asyncio.sleep(self.interval)


@pytest.mark.parametrize("interval", [0.01, 3600], ids=["busy", "sleeping"])
@pytest.mark.asyncio
async def test_server_sent_events_stop_promptly_when_the_client_disconnects(
    layer_setting: str, interval: float, tasks_left: Any
) -> None:
    record: list[Any] = []
    before = asyncio.all_tasks()
    communicator = HttpCommunicator(
        ServerSentEventsConsumer.as_asgi(record=record, interval=interval), "GET", "/events/"
    )
    await communicator.send_request()
    start = await communicator.receive_output()
    assert start["status"] == 200
    assert (b"Content-Type", b"text/event-stream") in start["headers"]
    for _ in range(2 if interval < 1 else 1):
        chunk = await communicator.receive_output()
        assert chunk["more_body"] is True
        assert chunk["body"].startswith(b"data: ")
        assert chunk["body"].endswith(b"\n\n")

    began = time.monotonic()
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(timeout=1)
    assert time.monotonic() - began < 0.5
    assert communicator.future.exception() is None
    assert record == ["disconnect"]
    assert tasks_left(before) == set()


@pytest.mark.asyncio
async def test_disconnect_runs_once_when_the_app_is_cancelled(layer_setting: str) -> None:
    record: list[Any] = []
    communicator = await responding(
        ServerSentEventsConsumer.as_asgi(record=record, interval=3600), "/events/"
    )
    communicator.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await communicator.future
    assert record == ["disconnect"]


class EarlyEventLongPoll(LongPollConsumer):
    """An event reaches the consumer's channel while handle() is still working."""

    async def handle(self, body: bytes) -> None:
        assert self.channel_layer is not None
        await self.channel_layer.send(self.channel_name, {"type": "chat.message", "n": 1})
        await asyncio.sleep(0.02)  # some slow work, a database query say
        await super().handle(body)


@pytest.mark.asyncio
async def test_a_layer_event_waits_until_handle_has_returned(
    layer: InMemoryChannelLayer,
) -> None:
    record: list[Any] = []
    communicator = HttpCommunicator(
        EarlyEventLongPoll.as_asgi(record=record, channel_names=[]), "GET", "/poll/"
    )
    response = await communicator.get_response()
    # The event handler ran after handle(), so the response is well-formed.
    assert response["status"] == 200
    assert json.loads(response["body"]) == {"type": "chat.message", "n": 1}
    await communicator.wait()
    assert record == ["disconnect"]


class NotifyingEvents(ServerSentEventsConsumer):
    channel_names: list[str] = []

    async def handle(self, body: bytes) -> None:
        self.channel_names.append(self.channel_name)
        await super().handle(body)

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send_body(b"event: chat\n\n", more_body=True)


@pytest.mark.asyncio
async def test_events_waiting_behind_a_stream_are_dropped_when_the_client_leaves(
    layer: InMemoryChannelLayer,
    tasks_left: Any,
) -> None:
    record: list[Any] = []
    names: list[str] = []
    before = asyncio.all_tasks()
    communicator = await responding(
        NotifyingEvents.as_asgi(record=record, channel_names=names, interval=0.01), "/events/"
    )
    await layer.send(names[0], {"type": "chat.message"})
    await asyncio.sleep(0.03)
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait()
    assert record == ["disconnect"]
    sent = []
    while not communicator.output_queue.empty():
        sent.append(communicator.output_queue.get_nowait()["body"])
    # The stream went on (handle() holds the consumer), the event was never sent.
    assert sent
    assert all(body.startswith(b"data: ") for body in sent)
    assert tasks_left(before) == set()


def test_as_asgi_checks_its_keyword_arguments() -> None:
    with pytest.raises(TypeError, match=r"'colour'.*not an attribute of EchoBody"):
        EchoBody.as_asgi(colour="blue")
    app = EchoBody.as_asgi(record=[])
    assert app.consumer_initkwargs == {"record": []}  # type: ignore[attr-defined]


class ChunkWatcher(Recording):
    """Starts a task per body chunk (progress reporting, say) before the usual handling."""

    async def note(self, chunk: bytes) -> None:
        self.record.append(("task", chunk))

    async def http_request(self, message: dict[str, Any]) -> None:
        self.watchers = [
            *getattr(self, "watchers", []),
            asyncio.ensure_future(self.note(message["body"])),
        ]
        self.record.append(("chunk", message["body"]))
        await super().http_request(message)

    async def handle(self, body: bytes) -> None:
        self.record.append(("handle", body))
        await self.send_response(200, body)


@pytest.mark.asyncio
async def test_a_task_started_for_a_chunk_runs_before_the_next_queued_chunk(
    layer_setting: str,
) -> None:
    record: list[Any] = []
    communicator = ApplicationCommunicator(ChunkWatcher.as_asgi(record=record), SCOPE)
    # All three chunks are queued before the first is handled.
    for chunk, more in ((b"a", True), (b"b", True), (b"c", False)):
        await communicator.send_input({"type": "http.request", "body": chunk, "more_body": more})
    assert (await communicator.receive_output())["status"] == 200
    assert (await communicator.receive_output())["body"] == b"abc"
    await communicator.wait()
    assert record == [
        ("chunk", b"a"),
        ("task", b"a"),
        ("chunk", b"b"),
        ("task", b"b"),
        ("chunk", b"c"),
        ("task", b"c"),
        ("handle", b"abc"),
        "disconnect",
    ]


# -- after the client has gone ------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_response_for_a_client_that_has_gone_is_dropped_and_disconnect_runs(
    layer_setting: str,
    leaving_client: Any,
    tasks_left: Any,
) -> None:
    record: list[Any] = []
    before = asyncio.all_tasks()
    server = leaving_client(EchoBody.as_asgi(record=record))
    server.leave()
    communicator = ApplicationCommunicator(server, SCOPE)
    await communicator.send_input({"type": "http.request", "body": b"hello"})
    await communicator.wait()
    # send_response() returned (its body was not even tried): the response
    # counts as finished, so the instance stopped cleanly.
    assert record == [("handle", b"hello"), "disconnect"]
    assert [event["type"] for event in server.refused] == ["http.response.start"]
    assert tasks_left(before) == set()


@pytest.mark.asyncio
async def test_a_long_poll_answered_after_the_client_left_stops_cleanly(
    layer: InMemoryChannelLayer,
    leaving_client: Any,
) -> None:
    record: list[Any] = []
    names: list[str] = []
    server = leaving_client(LongPollConsumer.as_asgi(record=record, channel_names=names))
    communicator = await responding(server, "/poll/")
    server.leave()
    await layer.send(names[0], {"type": "chat.message", "text": "too late"})
    await communicator.wait()
    assert record == ["disconnect"]
    assert [(event["type"], event["more_body"]) for event in server.refused] == [
        ("http.response.body", False)
    ]


class TightStream(Recording):
    """Streams without ever waiting on anything but send_body(), a bounded number of times."""

    async def handle(self, body: bytes) -> None:
        await self.send_headers(headers=[(b"Content-Type", b"text/event-stream")])
        try:
            for _ in range(100_000):
                await self.send_body(b"data: x\n\n", more_body=True)
        except asyncio.CancelledError:
            self.record.append("cancelled")
            raise
        self.record.append("ran out")


@pytest.mark.asyncio
async def test_a_stream_sending_to_a_client_that_has_gone_lets_the_disconnect_in(
    layer_setting: str,
    leaving_client: Any,
) -> None:
    # Dropped sends still give the loop a turn: otherwise a stream that only
    # sends would hold the loop, and the http.disconnect that stops it would
    # never be read.
    record: list[Any] = []
    server = leaving_client(TightStream.as_asgi(record=record))
    communicator = HttpCommunicator(server, "GET", "/events/")
    server.leave()
    await communicator.send_request()
    await server.refused_one.wait()
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait()
    assert record == ["cancelled", "disconnect"]
    assert [event["type"] for event in server.refused] == ["http.response.start"]
