"""Small helpers shared by consumers, the worker and the test tools."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = ["await_many_dispatch", "name_that_thing"]


def name_that_thing(thing: object) -> str:
    """A readable dotted name for a function, method, class or instance (for logs)."""
    if isinstance(thing, types.MethodType):
        return f"{name_that_thing(thing.__self__)}.{thing.__func__.__name__}"
    if isinstance(thing, (type, types.FunctionType, types.BuiltinFunctionType)):
        return f"{thing.__module__}.{thing.__qualname__}"
    cls = type(thing)
    return f"{cls.__module__}.{cls.__qualname__}"


async def await_many_dispatch(
    consumer_callables: Sequence[Callable[[], Awaitable[Any]]],
    dispatch: Callable[[Any], Awaitable[None]],
) -> None:
    """Call each of *consumer_callables* repeatedly and dispatch what they return.

    Results are dispatched one at a time, in the order they arrive. A
    callable is called again only once its previous result has been
    dispatched: a dispatch that raises leaves the next message where it was,
    instead of in a call that is about to be cancelled. Each round waits,
    through the event loop, for the calls that have finished and dispatches
    their results, so a task that *dispatch* scheduled starts before the
    results of the next round are dispatched. Every pending call is
    cancelled and awaited when this returns or raises.

    Consumers no longer use this (they own their reader tasks), but code
    written against it keeps working.
    """
    tasks = [asyncio.ensure_future(call()) for call in consumer_callables]
    try:
        while True:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for index, task in enumerate(tasks):
                if task.done():
                    await dispatch(task.result())
                    tasks[index] = asyncio.ensure_future(consumer_callables[index]())
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
