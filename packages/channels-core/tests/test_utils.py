"""channels.utils: name_that_thing and await_many_dispatch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from channels.consumer import AsyncConsumer
from channels.utils import await_many_dispatch, name_that_thing


def a_function() -> None:
    pass


def test_name_that_thing() -> None:
    assert name_that_thing(a_function) == f"{__name__}.a_function"
    assert name_that_thing(AsyncConsumer) == "channels.consumer.AsyncConsumer"
    consumer = AsyncConsumer()
    assert name_that_thing(consumer) == "channels.consumer.AsyncConsumer"
    assert name_that_thing(consumer.dispatch) == "channels.consumer.AsyncConsumer.dispatch"
    assert name_that_thing(len) == "builtins.len"


@pytest.mark.asyncio
async def test_await_many_dispatch_dispatches_from_every_source_in_arrival_order() -> None:
    first: asyncio.Queue[str] = asyncio.Queue()
    second: asyncio.Queue[str] = asyncio.Queue()
    seen: list[str] = []

    async def dispatch(message: str) -> None:
        seen.append(message)
        if message == "stop":
            raise LookupError("done")

    before = asyncio.all_tasks()
    runner = asyncio.ensure_future(await_many_dispatch([first.get, second.get], dispatch))
    await first.put("a")
    await asyncio.sleep(0.01)
    await second.put("b")
    await asyncio.sleep(0.01)
    await first.put("c")
    await asyncio.sleep(0.01)
    await second.put("stop")
    with pytest.raises(LookupError, match="done"):
        await asyncio.wait_for(runner, 1)
    assert seen == ["a", "b", "c", "stop"]
    # The pending get() calls were cancelled and awaited.
    assert {t for t in asyncio.all_tasks() if t not in before and not t.done()} == set()


@pytest.mark.asyncio
async def test_await_many_dispatch_cancels_its_calls_when_cancelled() -> None:
    cancelled: list[str] = []

    async def wait_forever() -> Any:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append("call")
            raise

    async def dispatch(message: Any) -> None:
        raise AssertionError("nothing to dispatch")

    runner = asyncio.ensure_future(await_many_dispatch([wait_forever, wait_forever], dispatch))
    await asyncio.sleep(0.01)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert cancelled == ["call", "call"]


@pytest.mark.asyncio
async def test_await_many_dispatch_leaves_the_next_message_where_it_was_on_error() -> None:
    """The next call starts only once the previous result is dispatched, so a
    dispatch that ends everything does not take (and lose) a message."""
    source: asyncio.Queue[str] = asyncio.Queue()

    async def dispatch(message: str) -> None:
        await asyncio.sleep(0)  # a handler that awaits something before it fails
        raise LookupError(message)

    source.put_nowait("first")
    source.put_nowait("second")
    with pytest.raises(LookupError, match="first"):
        await asyncio.wait_for(await_many_dispatch([source.get], dispatch), 1)
    assert source.get_nowait() == "second"


@pytest.mark.asyncio
async def test_await_many_dispatch_lets_a_scheduled_task_run_before_the_next_message() -> None:
    source: asyncio.Queue[str] = asyncio.Queue()
    log: list[str] = []
    tasks: list[asyncio.Task[None]] = []

    async def record(what: str) -> None:
        log.append(what)

    async def dispatch(message: str) -> None:
        if message == "stop":
            raise LookupError("done")
        log.append(message)
        tasks.append(asyncio.ensure_future(record(f"task of {message}")))

    for message in ("a", "b", "stop"):
        source.put_nowait(message)
    with pytest.raises(LookupError, match="done"):
        await asyncio.wait_for(await_many_dispatch([source.get], dispatch), 1)
    assert log == ["a", "task of a", "b", "task of b"]
