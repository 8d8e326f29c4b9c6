"""channels.middleware.BaseMiddleware: wraps an application and copies the scope."""

from __future__ import annotations

from typing import Any

import pytest

from channels.middleware import BaseMiddleware


async def receive() -> dict[str, Any]:
    return {"type": "never"}


async def send(message: dict[str, Any]) -> None:
    pass


@pytest.mark.asyncio
async def test_the_inner_application_gets_a_copy_of_the_scope() -> None:
    seen: list[dict[str, Any]] = []

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["added_by_inner"] = True
        seen.append(scope)

    middleware = BaseMiddleware(inner)
    assert middleware.inner is inner
    scope = {"type": "websocket", "path": "/"}
    await middleware(scope, receive, send)
    assert seen[0] is not scope
    assert seen[0]["path"] == "/"
    assert scope == {"type": "websocket", "path": "/"}


@pytest.mark.asyncio
async def test_subclasses_add_to_the_scope_for_one_connection_only() -> None:
    class AddUser(BaseMiddleware):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            scope = dict(scope, user=scope["path"].strip("/"))
            await super().__call__(scope, receive, send)

    users: list[str] = []

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        users.append(scope["user"])

    middleware = AddUser(inner)
    first, second = {"type": "http", "path": "/ada/"}, {"type": "http", "path": "/grace/"}
    await middleware(first, receive, send)
    await middleware(second, receive, send)
    assert users == ["ada", "grace"]
    assert "user" not in first
    assert "user" not in second


@pytest.mark.asyncio
async def test_the_inner_applications_result_and_errors_pass_through() -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise LookupError("inner failed")

    with pytest.raises(LookupError, match="inner failed"):
        await BaseMiddleware(failing)({"type": "http"}, receive, send)


@pytest.mark.asyncio
async def test_the_inner_applications_return_value_is_returned() -> None:
    async def answering(scope: Any, receive: Any, send: Any) -> dict[str, Any]:
        return {"answered": scope["type"]}

    class Adding(BaseMiddleware):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
            return await super().__call__(dict(scope, added=True), receive, send)

    assert await BaseMiddleware(answering)({"type": "http"}, receive, send) == {"answered": "http"}
    assert await Adding(answering)({"type": "websocket"}, receive, send) == {
        "answered": "websocket"
    }
