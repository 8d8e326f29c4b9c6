"""Raw sockets to a server, and an independent parser (an h11 client) for what it sends back."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import h11


class ParsedResponse(SimpleNamespace):
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


def parse_responses(
    data: bytes, *, method: bytes = b"GET", count: int | None = None
) -> list[ParsedResponse]:
    """Parse the responses in *data* with an h11 client (not the server's own code)."""
    client = h11.Connection(h11.CLIENT)
    responses: list[ParsedResponse] = []
    client.receive_data(data)
    eof_sent = False
    while count is None or len(responses) < count:
        client.send(h11.Request(method=method, target="/", headers=[("host", "x")]))
        client.send(h11.EndOfMessage())
        current: ParsedResponse | None = None
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA:
                if current is None or eof_sent:
                    return responses
                # A body delimited by the end of the connection.
                client.receive_data(b"")
                eof_sent = True
                continue
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                current = ParsedResponse(
                    status=event.status_code, headers=list(event.headers), body=b""
                )
            elif isinstance(event, h11.Data):
                assert current is not None
                current.body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                assert current is not None
                responses.append(current)
                break
            else:
                return responses
        if client.their_state is not h11.DONE or client.our_state is not h11.DONE:
            break
        client.start_next_cycle()
    return responses


async def exchange(port: int, data: bytes, *, timeout: float = 5) -> bytes:
    """Send *data* and read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader, timeout: float = 5) -> bytes:
    """Read one response head plus a Content-Length body (enough for the tests' servers)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await asyncio.wait_for(reader.readexactly(length), timeout) if length else b""
    return head + body
