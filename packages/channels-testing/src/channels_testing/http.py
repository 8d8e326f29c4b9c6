"""``HttpCommunicator``: send one HTTP request to an application, read its response."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._communicator import FailFastCommunicator
from ._scope import base_scope

if TYPE_CHECKING:
    from channels.asgi_types import HTTPRequestEvent

__all__ = ["HttpCommunicator"]


class HttpCommunicator(FailFastCommunicator):
    """Drives one HTTP request through an ASGI application.

    :param application: the ASGI application (a consumer's ``as_asgi()``, a router).
    :param method: the HTTP method, such as ``"GET"``.
    :param path: the path, with an optional query string (``"/search/?q=x"``).
    :param body: the request body, as bytes.
    :param headers: (name, value) pairs of bytes.
    """

    def __init__(
        self,
        application: Any,
        method: str,
        path: str,
        body: bytes = b"",
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        # The base class first, so that an object whose checks below fail is
        # still whole when it is collected (asgiref's __del__ needs its state).
        super().__init__(application, {})
        if not isinstance(method, str) or not method:
            raise TypeError(f"method must be a non-empty str such as 'GET', not {method!r}")
        if not isinstance(body, (bytes, bytearray)):
            raise TypeError(f"body must be bytes, not {type(body).__name__}")
        self.scope = base_scope("http", path, headers)
        self.scope.update(method=method.upper(), scheme="http")
        self.body = bytes(body)
        self.sent_request = False

    async def send_request(self) -> None:
        """Send the request body (once); ``get_response()`` calls this for you."""
        if not self.sent_request:
            self.sent_request = True
            event: HTTPRequestEvent = {"type": "http.request", "body": self.body}
            await self.send_input(event)

    async def get_response(self, timeout: float = 1) -> dict[str, Any]:
        """Send the request and collect the whole response.

        Returns ``{"status": int, "headers": [(bytes, bytes), ...], "body": bytes}``
        (plus any other keys the application put in ``http.response.start``).
        """
        await self.send_request()
        start = await self.receive_output(timeout)
        if start.get("type") != "http.response.start":
            raise AssertionError(f"expected an 'http.response.start' event first, got {start!r}")
        body = bytearray()
        while True:
            chunk = await self.receive_output(timeout)
            if chunk.get("type") != "http.response.body":
                raise AssertionError(f"expected an 'http.response.body' event, got {chunk!r}")
            body += chunk.get("body", b"")
            if not chunk.get("more_body", False):
                break
        response = {key: value for key, value in start.items() if key != "type"}
        response.setdefault("headers", [])
        response["body"] = bytes(body)
        return response
