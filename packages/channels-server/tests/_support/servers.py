"""Real servers for the tests, on 127.0.0.1 and a free port, in the test's event loop."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from typing import Any

from channels_server import Config, Server

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is in the dev environment
    uvloop = None  # type: ignore[assignment]

LOCAL = "tcp:port=0:interface=127.0.0.1"


def loop_factories() -> dict[str, Any]:
    """asyncio's event loop, and uvloop's where it is installed."""
    factories: dict[str, Any] = {"asyncio": asyncio.new_event_loop}
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


class StartedServers:
    """Starts servers with the HTTP parser *http*, and shuts them all down at the end."""

    def __init__(self, http: str) -> None:
        self.http = http
        self.servers: list[Server] = []

    async def start(self, application: Any, **options: Any) -> Server:
        """Start a server of *application* on 127.0.0.1 (a free port), lifespan off."""
        options.setdefault("http", self.http)
        options.setdefault("endpoints", (LOCAL,))
        # Test applications mostly ignore the scope type; lifespan has its own tests.
        options.setdefault("lifespan", "off")
        server = Server(application, Config(**options))
        await server.startup()
        self.servers.append(server)
        return server

    async def shutdown(self) -> None:
        for server in self.servers:
            await server.shutdown()


def port_of(server: Server) -> int:
    """The port of the server's first address."""
    address = server.addresses[0]
    assert isinstance(address, tuple)
    return address[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def short_socket_path() -> str:
    """A Unix socket path in a new temporary directory."""
    # Not tmp_path: unix socket paths are limited to about 100 bytes.
    directory = tempfile.mkdtemp(prefix="cs-sock-")
    return os.path.join(directory, "server.sock")
