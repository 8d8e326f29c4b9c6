"""Serve a bare ASGI application with channels-server installed alone.

Run by ``nox -s isolated-channels-server`` after ``import_alone.py``, in a
virtualenv holding channels-server and its own dependencies only: no Django,
no channels-core. Starts the real command (``python -m channels_server``) on
a free port, then asks it for one HTTP response and one WebSocket echo over
raw sockets. Exits non-zero, saying why, if anything differs.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

APPLICATION = textwrap.dedent(
    """
    async def application(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        elif scope["type"] == "http":
            await receive()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain")]})
            body = b"bare ASGI " + scope["path"].encode()
            await send({"type": "http.response.body", "body": body})
        else:
            assert (await receive())["type"] == "websocket.connect"
            await send({"type": "websocket.accept"})
            message = await receive()
            await send({"type": "websocket.send", "text": "echo " + message["text"]})
            await send({"type": "websocket.close"})
    """
)


def fail(message: str) -> int:
    print(f"serve_alone: {message}", file=sys.stderr)
    return 1


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def main() -> int:
    for absent in ("django", "channels"):
        if importlib.util.find_spec(absent) is not None:
            return fail(f"{absent} is installed, so this proves nothing")
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "bare_app.py").write_text(APPLICATION)
        server = subprocess.Popen(
            [sys.executable, "-m", "channels_server", "--port", "0", "bare_app:application"],
            cwd=folder,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": folder},
        )
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            if "Listening on http://" not in line:
                return fail(f"the server did not start: {line!r}")
            port = int(line.rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET /hello HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
                response = read_until(sock, b"bare ASGI /hello")
            if not response.startswith(b"HTTP/1.1 200") or b"bare ASGI /hello" not in response:
                return fail(f"unexpected HTTP response {response!r}")
            key = base64.b64encode(os.urandom(16))
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(
                    b"GET /ws HTTP/1.1\r\nhost: localhost\r\nupgrade: websocket\r\n"
                    b"connection: Upgrade\r\nsec-websocket-version: 13\r\n"
                    b"sec-websocket-key: " + key + b"\r\n\r\n"
                )
                head = read_until(sock, b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 101"):
                    return fail(f"unexpected handshake response {head!r}")
                # A masked text frame "hi" (mask of zeros keeps the payload as is).
                sock.sendall(b"\x81\x82\x00\x00\x00\x00hi")
                frames = read_until(sock, b"echo hi")
            if b"echo hi" not in frames:
                return fail(f"no WebSocket echo: {frames!r}")
        finally:
            server.terminate()
            deadline = time.monotonic() + 30
            while server.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if server.poll() is None:
                server.kill()
        if server.returncode != 0:
            return fail(f"the server exited with {server.returncode} on SIGTERM")
    print("channels-server alone (no Django, no channels-core) served HTTP and a WebSocket")
    return 0


if __name__ == "__main__":
    sys.exit(main())
