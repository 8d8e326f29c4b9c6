"""channels.worker.Worker over the in-memory layer, serving consumers by channel name."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import async_to_sync

from channels.consumer import AsyncConsumer, SyncConsumer
from channels.exceptions import StopConsumer
from channels.layers import InMemoryChannelLayer
from channels.routing import ChannelNameRouter, ProtocolTypeRouter
from channels.worker import Worker

IN_MEMORY = {"BACKEND": "channels.layers.InMemoryChannelLayer"}


class Thumbnailer(AsyncConsumer):
    """Replies to ``reply_to`` with what it did and which instance did it."""

    async def thumbnail_make(self, message: dict[str, Any]) -> None:
        assert self.channel_layer is not None
        await self.channel_layer.send(
            message["reply_to"],
            {
                "type": "done",
                "size": message["size"] // 2,
                "instance": id(self),
                "scope": dict(self.scope),
            },
        )

    async def thumbnail_explode(self, message: dict[str, Any]) -> None:
        raise RuntimeError("cannot thumbnail that")

    async def thumbnail_stop(self, message: dict[str, Any]) -> None:
        raise StopConsumer()

    async def thumbnail_answer_client(self, message: dict[str, Any]) -> None:
        # A worker has no client: sending an ASGI event is an error.
        await self.send({"type": "websocket.send", "text": "to whom?"})


class Mailer(SyncConsumer):
    def email_send(self, message: dict[str, Any]) -> None:
        assert self.channel_layer is not None
        async_to_sync(self.channel_layer.send)(
            message["reply_to"],
            {"type": "sent", "to": message["to"], "thread": threading.get_ident()},
        )


APPLICATION = ProtocolTypeRouter(
    {"channel": ChannelNameRouter({"thumbnails": Thumbnailer.as_asgi(), "email": Mailer.as_asgi()})}
)


@pytest_asyncio.fixture
async def worker(layer: InMemoryChannelLayer) -> AsyncIterator[Worker]:
    """A worker on "thumbnails" and "email", running for the test; stopped after."""
    running = Worker(APPLICATION, ["thumbnails", "email"], layer)
    before = asyncio.all_tasks()
    task = asyncio.ensure_future(running.handle())
    yield running
    running.stop()
    await asyncio.wait_for(task, 1)
    # handle() returned and took every instance and listener with it.
    current = asyncio.current_task()  # the fixture's teardown runs in a task of its own
    assert {t for t in asyncio.all_tasks() if t not in before and t is not current} == set()


async def ask(layer: InMemoryChannelLayer, channel: str, message: dict[str, Any]) -> Any:
    reply_to = await layer.new_channel()
    await layer.send(channel, {**message, "reply_to": reply_to})
    return await asyncio.wait_for(layer.receive(reply_to), 1)


# -- construction -----------------------------------------------------------------


def test_worker_needs_a_layer() -> None:
    with pytest.raises(ValueError, match="needs a channel layer"):
        Worker(APPLICATION, ["thumbnails"], None)


def test_worker_needs_channels(layer: InMemoryChannelLayer) -> None:
    with pytest.raises(ValueError, match="at least one channel"):
        Worker(APPLICATION, [], layer)


@pytest.mark.parametrize("name", ["bad name", "x" * 100, "process!local", 7])
def test_worker_rejects_invalid_channel_names(layer: InMemoryChannelLayer, name: Any) -> None:
    with pytest.raises(TypeError, match=r"[Cc]hannel name"):
        Worker(APPLICATION, ["thumbnails", name], layer)


def test_worker_caps_channels_at_max_applications(layer: InMemoryChannelLayer) -> None:
    with pytest.raises(ValueError, match="max_applications=1"):
        Worker(APPLICATION, ["a", "b"], layer, max_applications=1)


# -- serving --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_worker_serves_async_and_sync_consumers(
    worker: Worker, layer: InMemoryChannelLayer
) -> None:
    reply = await ask(layer, "thumbnails", {"type": "thumbnail.make", "size": 640})
    assert reply["size"] == 320
    assert reply["scope"] == {"type": "channel", "channel": "thumbnails"}
    sent = await ask(layer, "email", {"type": "email.send", "to": "ada@example.com"})
    assert sent["to"] == "ada@example.com"
    assert sent["thread"] != threading.get_ident()


@pytest.mark.asyncio
async def test_events_on_one_channel_share_an_instance(
    worker: Worker, layer: InMemoryChannelLayer
) -> None:
    first = await ask(layer, "thumbnails", {"type": "thumbnail.make", "size": 2})
    second = await ask(layer, "thumbnails", {"type": "thumbnail.make", "size": 4})
    assert first["instance"] == second["instance"]


@pytest.mark.asyncio
async def test_events_are_served_in_order(worker: Worker, layer: InMemoryChannelLayer) -> None:
    reply_to = await layer.new_channel()
    for size in range(10):
        await layer.send(
            "thumbnails", {"type": "thumbnail.make", "size": size * 2, "reply_to": reply_to}
        )
    sizes = [(await asyncio.wait_for(layer.receive(reply_to), 1))["size"] for _ in range(10)]
    assert sizes == list(range(10))


@pytest.mark.asyncio
async def test_an_event_without_a_type_is_dropped_and_logged(
    worker: Worker, layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="channels.worker")
    await layer.send("thumbnails", {"size": 10})
    reply = await ask(layer, "thumbnails", {"type": "thumbnail.make", "size": 10})
    assert reply["size"] == 5
    (record,) = [r for r in caplog.records if r.name == "channels.worker"]
    assert "without a 'type'" in record.getMessage()
    assert "'thumbnails'" in record.getMessage()


@pytest.mark.parametrize(
    "bad_event",
    [{"type": "thumbnail.explode"}, {"type": "no.handler"}, {"type": "thumbnail.answer_client"}],
)
@pytest.mark.asyncio
async def test_an_app_that_raises_is_replaced(
    worker: Worker,
    layer: InMemoryChannelLayer,
    caplog: pytest.LogCaptureFixture,
    bad_event: dict[str, Any],
) -> None:
    caplog.set_level(logging.ERROR, logger="channels.worker")
    first = await ask(layer, "thumbnails", {"type": "thumbnail.make", "size": 2})
    await layer.send("thumbnails", bad_event)
    await asyncio.sleep(0.02)
    second = await ask(layer, "thumbnails", {"type": "thumbnail.make", "size": 2})
    assert second["instance"] != first["instance"]
    errors = [r for r in caplog.records if r.name == "channels.worker"]
    assert len(errors) == 1
    assert "'thumbnails'" in errors[0].getMessage()
    assert errors[0].exc_info is not None


@pytest.mark.parametrize(
    ("ending", "errors_logged"),
    [("thumbnail.explode", 1), ("thumbnail.stop", 0)],
    # A handler that raises is logged; StopConsumer is a normal end, not an error.
    ids=["failing", "stopping"],
)
@pytest.mark.asyncio
async def test_events_queued_behind_the_one_that_ends_the_app_are_still_served(
    worker: Worker,
    layer: InMemoryChannelLayer,
    caplog: pytest.LogCaptureFixture,
    ending: str,
    errors_logged: int,
) -> None:
    caplog.set_level(logging.ERROR, logger="channels.worker")
    reply_to = await layer.new_channel()
    # Both reach the instance's queue before it handles the first one; a new
    # instance serves the second.
    await layer.send("thumbnails", {"type": ending})
    await layer.send("thumbnails", {"type": "thumbnail.make", "size": 8, "reply_to": reply_to})
    assert (await asyncio.wait_for(layer.receive(reply_to), 1))["size"] == 4
    assert len([r for r in caplog.records if r.name == "channels.worker"]) == errors_logged


# -- stopping ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_stop_ends_handle_and_its_instances(layer: InMemoryChannelLayer) -> None:
    before = asyncio.all_tasks()
    worker = Worker(APPLICATION, ["thumbnails"], layer)
    task = asyncio.ensure_future(worker.handle())
    assert (await ask(layer, "thumbnails", {"type": "thumbnail.make", "size": 2}))["size"] == 1
    worker.stop()
    await asyncio.wait_for(task, 1)
    assert task.result() is None
    assert {t for t in asyncio.all_tasks() if t not in before and not t.done()} == set()
    # Events sent after the stop stay on the channel for the next worker.
    await layer.send("thumbnails", {"type": "thumbnail.make", "size": 2})
    assert (await layer.receive("thumbnails"))["size"] == 2


@pytest.mark.asyncio
async def test_stop_before_handle_gets_going_is_not_lost(layer: InMemoryChannelLayer) -> None:
    worker = Worker(APPLICATION, ["thumbnails"], layer)
    task = asyncio.ensure_future(worker.handle())
    worker.stop()  # handle() has not started running yet
    await asyncio.wait_for(task, 1)


@pytest.mark.asyncio
async def test_a_worker_can_handle_again_after_a_stop(layer: InMemoryChannelLayer) -> None:
    worker = Worker(APPLICATION, ["thumbnails"], layer)
    for size in (2, 4):
        task = asyncio.ensure_future(worker.handle())
        assert (await ask(layer, "thumbnails", {"type": "thumbnail.make", "size": size}))[
            "size"
        ] == size // 2
        worker.stop()
        await asyncio.wait_for(task, 1)


class BrokenLayer(InMemoryChannelLayer):
    async def receive(self, channel: str) -> dict[str, Any]:
        await asyncio.sleep(0)
        raise ConnectionError("lost the layer")


@pytest.mark.asyncio
async def test_a_failing_layer_ends_handle_with_the_error() -> None:
    before = asyncio.all_tasks()
    worker = Worker(APPLICATION, ["thumbnails", "email"], BrokenLayer())
    with pytest.raises(ConnectionError, match="lost the layer"):
        await asyncio.wait_for(worker.handle(), 1)
    assert {t for t in asyncio.all_tasks() if t not in before and not t.done()} == set()


@pytest.mark.asyncio
async def test_an_app_that_fails_before_reading_is_not_restarted_in_a_loop(
    layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="channels.worker")
    # "unrouted" is not in the ChannelNameRouter: the app fails on its scope.
    worker = Worker(APPLICATION, ["unrouted", "thumbnails"], layer)
    task = asyncio.ensure_future(worker.handle())
    for _ in range(3):
        await layer.send("unrouted", {"type": "anything"})
    await asyncio.sleep(0.05)
    # The worker goes on serving its other channels.
    assert (await ask(layer, "thumbnails", {"type": "thumbnail.make", "size": 2}))["size"] == 1
    worker.stop()
    await asyncio.wait_for(task, 1)
    messages = [r.getMessage() for r in caplog.records if r.name == "channels.worker"]
    # At most one failed start per event received, each logged.
    assert 1 <= len([m for m in messages if "raised" in m]) <= 3
    assert all("'unrouted'" in m for m in messages)
