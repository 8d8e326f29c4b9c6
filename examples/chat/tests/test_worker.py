"""The stats worker: ``runworker chat-stats`` counting messages per room.

The worker runs in the test's own process and event loop (``Worker.handle()``
as a task), because the in-memory layer only carries events within one
process, exactly as ``runworker`` would run it against a shared layer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer
from channels.testing import HttpCommunicator, WebsocketCommunicator
from channels.worker import Worker
from django.core.management import CommandError, call_command
from django.db.backends.signals import connection_created

from chat.models import RoomStats
from chat.stats import STATS_CHANNEL

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async  # closes the thread's database connection afterwards
def counts() -> dict[str, int]:
    return dict(RoomStats.objects.values_list("room_name", "message_count"))


async def wait_for_counts(expected: dict[str, int], timeout: float = 5) -> None:
    """Poll the database until the counts are *expected* (the worker is asynchronous)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (found := await counts()) != expected:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"counts are {found}, expected {expected}")
        await asyncio.sleep(0.02)


@pytest_asyncio.fixture
async def start_worker(application: Any, channel_layer: InMemoryChannelLayer) -> AsyncIterator[Any]:
    """``start_worker()``: run the stats worker until the end of the test."""
    running: list[tuple[Worker, asyncio.Task[None]]] = []

    def start() -> Worker:
        worker = Worker(application, channels=[STATS_CHANNEL], channel_layer=channel_layer)
        running.append((worker, asyncio.ensure_future(worker.handle())))
        return worker

    yield start
    for worker, task in running:
        worker.stop()
        await asyncio.wait_for(task, timeout=5)


async def post(socket: WebsocketCommunicator, message: str) -> None:
    await socket.send_to(text_data=json.dumps({"message": message}))
    await socket.receive_json_from()  # our own copy: the message went out


async def get_page(application: Any, path: str) -> dict[str, Any]:
    """GET *path* and wait until Django's handler has finished with the request.

    The response arrives before the handler is done: it still closes the
    response afterwards, which sends ``request_finished`` and so closes the
    database connection the view opened in the request's own thread. Left
    to the communicator's garbage collection, the handler would be cancelled
    before that, and the connection left for the collector to find (Python
    3.13 reports an unclosed ``sqlite3.Connection`` as a ResourceWarning, in
    whichever test happens to be running then).
    """
    page = HttpCommunicator(application, "GET", path, headers=[(b"host", b"testserver")])
    response = await page.get_response()
    await page.wait()
    return response


def counts_on_index_page(html: str) -> dict[str, int]:
    rows = re.findall(
        r'<a class="room-link" href="[^"]*">([^<]*)</a></td>\s*'
        r'<td class="message-count">(\d+)</td>',
        html,
    )
    return {name: int(count) for name, count in rows}


@pytest.mark.asyncio
async def test_worker_counts_messages_per_room_and_index_shows_them(
    application: Any, open_socket: Any, start_worker: Any
) -> None:
    start_worker()
    lobby = await open_socket("lobby")
    cafe = await open_socket("café")

    for number in range(3):
        await post(lobby, f"lobby {number}")
    for number in range(2):
        await post(cafe, f"café {number}")
    await wait_for_counts({"lobby": 3, "café": 2})

    response = await get_page(application, "/chat/")
    html = response["body"].decode()
    assert response["status"] == 200
    assert counts_on_index_page(html) == {"lobby": 3, "café": 2}
    # Busiest first.
    assert html.index(">lobby<") < html.index(">café<")


@pytest.mark.asyncio
async def test_the_index_page_closes_the_database_connection_it_opened(application: Any) -> None:
    opened: list[Any] = []

    def record(sender: Any, connection: Any, **kwargs: Any) -> None:
        opened.append(connection)

    connection_created.connect(record)
    try:
        response = await get_page(application, "/chat/")
    finally:
        connection_created.disconnect(record)

    assert response["status"] == 200
    assert opened, "the page made no database query: this test checks nothing"
    assert [wrapper.connection for wrapper in opened] == [None] * len(opened)


@pytest.mark.asyncio
async def test_events_sent_while_no_worker_ran_are_counted_when_one_starts(
    open_socket: Any, start_worker: Any
) -> None:
    socket = await open_socket("lobby")
    await post(socket, "before the worker")
    await post(socket, "also before")
    assert await counts() == {}

    start_worker()

    await wait_for_counts({"lobby": 2})


@pytest.mark.asyncio
async def test_malformed_events_are_skipped_and_counting_goes_on(
    channel_layer: InMemoryChannelLayer, start_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    start_worker()

    with caplog.at_level(logging.WARNING, logger="chat.stats"):
        await channel_layer.send(STATS_CHANNEL, {"type": "room.message"})
        await channel_layer.send(STATS_CHANNEL, {"type": "room.message", "room": "a/b"})
        await channel_layer.send(STATS_CHANNEL, {"type": "room.message", "room": "x" * 101})
        await channel_layer.send(STATS_CHANNEL, {"type": "room.message", "room": "lobby"})
        await wait_for_counts({"lobby": 1})

    dropped = [r for r in caplog.records if "Dropped a room.message event" in r.getMessage()]
    assert len(dropped) == 3


def test_count_message_creates_then_increments() -> None:
    RoomStats.count_message("lobby")
    RoomStats.count_message("lobby")
    RoomStats.count_message("kitchen")

    lobby = RoomStats.objects.get(room_name="lobby")
    assert lobby.message_count == 2
    assert lobby.last_message_at is not None
    assert RoomStats.objects.get(room_name="kitchen").message_count == 1


def test_runworker_refuses_a_bad_channel_name() -> None:
    # The command the README tells people to run, given a typo.
    with pytest.raises(CommandError, match="invalid"):
        call_command("runworker", "chat stats")
