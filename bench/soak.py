"""Soak run: channels-server and the Redis layer held under load for a while (``nox -s soak``).

Everything runs on loopback, in processes this program starts and stops:

* a ``redis-server`` on a free port, without persistence
  (``--save "" --appendonly no``), so a restart loses its data;
* ``channels-server`` serving a small Channels project written to a
  temporary folder: WebSocket consumers over
  ``channels_redis.core.RedisChannelLayer`` and one HTTP route that says how
  many asyncio tasks the server process has;
* in this process, an asyncio WebSocket client on raw sockets (one
  ``asyncio.Protocol`` per socket, pings answered) that can hold 10,000
  sockets on one core;
* a sender process, with a layer of its own, for the fault phase.

The phases:

1. **idle**: ``--sockets`` WebSockets (10,000), each consumer in one group,
   held for ``--idle-minutes`` (10) while the server's RSS is sampled; then
   one ``group_send`` to all of them. None may close before the end.
2. **abort**: ``--cycles`` (1,000) connections that leave badly (a TCP RST
   or a plain close, before the request, mid-handshake, after the
   accept); the server's open descriptors and asyncio tasks must come back
   to where they were.
3. **faults**: a steady stream of ``send`` and ``group_send`` to consumers
   in groups while Redis is killed and restarted empty, then frozen with
   SIGSTOP past the layers' ``socket_timeout``; every message acknowledged
   after the consumers' layer reconnected must arrive.

It prints a table and exits with status 1 when a check failed. ``--quick``
tries it in about two minutes (1,000 sockets, one idle minute). Every wait is
bounded, and ``--timeout`` bounds the whole run.

Run it with the development virtualenv's Python from the repository root
(``python bench/soak.py --quick``) or through ``nox -s soak``. It needs
``redis-server`` on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()

# -- the Channels project the server runs (written to a temporary folder) -----------------

SETTINGS = '''\
"""Settings of the soak project (written by bench/soak.py)."""
import soakhooks

SECRET_KEY = "soak-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels"]
USE_TZ = True
CHANNEL_LAYERS = {{
    "default": {{
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {{
            "hosts": [{{"address": {address!r}, "socket_timeout": {socket_timeout!r}}}],
            "capacity": {capacity!r},
            "on_disconnect": soakhooks.disconnected,
            "on_reconnect": soakhooks.reconnected,
        }},
    }},
}}
'''

HOOKS = '''\
"""When the server's layer lost Redis and got it back (wall clock, for bench/soak.py)."""
import time

DISCONNECTS = []
RECONNECTS = []


def disconnected():
    DISCONNECTS.append(time.time())


def reconnected():
    RECONNECTS.append(time.time())
'''

APP = '''\
"""The soak application (written by bench/soak.py)."""
import asyncio
import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "soaksettings")

import django

django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path

import soakhooks


class IdleConsumer(AsyncWebsocketConsumer):
    """Joins the group "idle" and forwards what the group sends."""

    async def connect(self):
        await self.channel_layer.group_add("idle", self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard("idle", self.channel_name)

    async def soak_message(self, event):
        await self.send(text_data=str(event["id"]))


class LoadConsumer(AsyncWebsocketConsumer):
    """Joins group "load<n>", tells its client its channel name, forwards messages."""

    async def connect(self):
        self.group = "load" + self.scope["url_route"]["kwargs"]["group"]
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data="channel " + self.channel_name)

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def soak_message(self, event):
        await self.send(text_data=str(event["id"]))


async def debug(scope, receive, send):
    """GET /debug/: this process's asyncio tasks and the layer's outages, as JSON."""
    if scope["type"] != "http":
        return
    body = json.dumps(
        {
            "tasks": len(asyncio.all_tasks()),
            "disconnects": soakhooks.DISCONNECTS,
            "reconnects": soakhooks.RECONNECTS,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


application = ProtocolTypeRouter(
    {
        "http": debug,
        "websocket": URLRouter(
            [
                path("idle/", IdleConsumer.as_asgi()),
                path("load/<group>/", LoadConsumer.as_asgi()),
            ]
        ),
    }
)
'''


def write_project(folder: Path, redis_url: str, socket_timeout: float, capacity: int) -> None:
    (folder / "soakhooks.py").write_text(HOOKS)
    (folder / "soakapp.py").write_text(APP)
    (folder / "soaksettings.py").write_text(
        SETTINGS.format(address=redis_url, socket_timeout=socket_timeout, capacity=capacity)
    )


# -- processes ----------------------------------------------------------------------------


def raise_file_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit (also the preexec_fn of the children)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Redis:
    """A redis-server on a port of its own, without persistence, that can be killed."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH (apt install redis-server)")
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--dir", str(self.folder),
                   "--maxclients", "1000"]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port} within 10 s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # A frozen server ignores SIGTERM until it runs again.
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class Server:
    """channels-server serving the soak project, with its output kept and counted."""

    def __init__(self, folder: Path, extra: list[str], log: str | None = None) -> None:
        self.log = open(log, "a") if log else None  # noqa: SIM115 (closed in stop())
        environment = dict(
            os.environ,
            PYTHONPATH=str(folder),
            DJANGO_SETTINGS_MODULE="soaksettings",
            PYTHONUNBUFFERED="1",
        )
        command = [sys.executable, "-m", "channels_server", "-b", "127.0.0.1", "-p", "0",
                   "-v", "1", "--access-log", os.devnull, *extra,
                   "soakapp:application"]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            cwd=folder,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=raise_file_limit,
        )
        self.tail: deque[str] = deque(maxlen=200)
        self.errors = 0
        self.lines = 0
        self.port = self._wait_for_port()
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()

    def _wait_for_port(self) -> int:
        assert self.process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.process.stdout.readline().decode(errors="replace")
            if not line:
                break
            self.tail.append(line)
            match = re.search(r"Listening on http://127\.0\.0\.1:(\d+)", line)
            if match:
                return int(match.group(1))
        self.stop()
        raise RuntimeError("channels-server did not start:\n" + "".join(self.tail))

    def _read_output(self) -> None:
        # Keep reading: a full pipe would block the server.
        assert self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            line = raw.decode(errors="replace")
            self.tail.append(line)
            if self.log is not None:
                self.log.write(line)
            self.lines += 1
            if "Traceback" in line or " ERROR " in line or line.startswith("ERROR"):
                self.errors += 1

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS in /proc/<pid>/status")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if hasattr(self, "_reader"):
            self._reader.join(5)
        if self.log is not None:
            self.log.close()


async def debug_info(port: int) -> dict[str, Any]:
    """The server's answer to GET /debug/ (its asyncio tasks and layer outages)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    try:
        writer.write(b"GET /debug/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"GET /debug/ answered {head[:80]!r}")
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    return json.loads(body)  # type: ignore[no-any-return]


def dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += body[:size]
        body = body[size + 2 :]
    return out


# -- the WebSocket client (raw sockets, one Protocol per connection) ------------------------

KEY = base64.b64encode(b"soak-websocket-k").decode()


def handshake(path: str, port: int) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def client_frame(opcode: int, payload: bytes) -> bytes:
    # Masked, as a client must; the all-zero key (RFC 6455 allows any) makes
    # masking the identity, so the payload goes as it is.
    length = len(payload)
    if length < 126:
        head = bytes((0x80 | opcode, 0x80 | length))
    elif length < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + struct.pack("!H", length)
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + struct.pack("!Q", length)
    return head + b"\x00\x00\x00\x00" + payload


@dataclass
class Tally:
    """What every client socket of a phase saw."""

    pings: int = 0
    closed_early: int = 0
    close_codes: dict[str, int] = field(default_factory=dict)
    first_close: float | None = None


class Client(asyncio.Protocol):
    """One WebSocket: the handshake, frames parsed, pings answered, text handed on."""

    def __init__(
        self, request: bytes, tally: Tally, on_text: Callable[[Client, str], None] | None = None
    ) -> None:
        self.request = request
        self.tally = tally
        self.on_text = on_text
        self.buffer = bytearray()
        self.open = False
        self.leaving = False
        self.gone = False
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.received: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.open:
            end = self.buffer.find(b"\r\n\r\n")
            if end == -1:
                return
            head = bytes(self.buffer[:end])
            del self.buffer[: end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                if not self.ready.done():
                    self.ready.set_exception(ConnectionError(head[:80].decode(errors="replace")))
                return
            self.open = True
            self.ready.set_result(None)
        self._frames()

    def _frames(self) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            opcode = buffer[0] & 0x0F
            length = buffer[1] & 0x7F
            offset = 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length = struct.unpack_from("!H", buffer, 2)[0]
                offset = 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length = struct.unpack_from("!Q", buffer, 2)[0]
                offset = 10
            if len(buffer) < offset + length:
                return
            payload = bytes(buffer[offset : offset + length])
            del buffer[: offset + length]
            if opcode == 0x9:
                self.tally.pings += 1
                self._write(client_frame(0xA, payload))
            elif opcode == 0x8:
                code = str(struct.unpack("!H", payload[:2])[0]) if len(payload) >= 2 else "none"
                self.tally.close_codes[code] = self.tally.close_codes.get(code, 0) + 1
                if not self.leaving:
                    self._write(client_frame(0x8, payload[:2]))
                if self.transport is not None:
                    self.transport.close()
            elif opcode == 0x1:
                text = payload.decode()
                self.received.append(text)
                if self.on_text is not None:
                    self.on_text(self, text)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        if not self.leaving:
            self.tally.closed_early += 1
            if self.tally.first_close is None:
                self.tally.first_close = time.time()
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before the handshake: {exc}"))
        if not self.lost.done():
            self.lost.set_result(None)

    def leave(self) -> None:
        """Close normally: a close frame, then the socket once the server answers."""
        self.leaving = True
        if self.open:
            self._write(client_frame(0x8, struct.pack("!H", 1000)))
        elif self.transport is not None:
            self.transport.close()


async def connect_many(
    port: int,
    path_of: Callable[[int], str],
    count: int,
    tally: Tally,
    on_text: Callable[[Client, str], None] | None = None,
    batch: int = 100,
) -> tuple[list[Client], int]:
    """Open *count* WebSockets, *batch* at a time; returns them and the failures."""
    loop = asyncio.get_running_loop()
    clients: list[Client] = []
    failures = 0

    async def one(index: int) -> Client | None:
        request = handshake(path_of(index), port)
        try:
            _, client = await asyncio.wait_for(
                loop.create_connection(lambda: Client(request, tally, on_text), "127.0.0.1", port),
                30,
            )
            await asyncio.wait_for(client.ready, 30)
        except (OSError, asyncio.TimeoutError) as exc:
            say(f"  connection {index} failed: {exc!r}")
            return None
        return client

    for start in range(0, count, batch):
        for client in await asyncio.gather(
            *(one(i) for i in range(start, min(count, start + batch)))
        ):
            if client is None:
                failures += 1
            else:
                clients.append(client)
    return clients, failures


async def leave_all(clients: list[Client], timeout: float = 30) -> None:
    for client in clients:
        client.leave()
    pending = [client.lost for client in clients if not client.lost.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout)
    for client in clients:
        if not client.gone and client.transport is not None:
            client.transport.abort()


async def settle(
    server: Server, fds_at_most: int, tasks_at_most: int, timeout: float
) -> tuple[int, int, float]:
    """Wait (at most *timeout* s) until the server is down to those counts; the last seen.

    The counts seen last are returned whether or not they got there, with the
    time it took; the caller judges them.
    """
    started = time.monotonic()
    fds = tasks = 0
    while True:
        fds = server.fds()
        tasks = int((await debug_info(server.port))["tasks"])
        if (fds <= fds_at_most and tasks <= tasks_at_most) or (
            time.monotonic() - started > timeout
        ):
            return fds, tasks, time.monotonic() - started
        await asyncio.sleep(0.5)


async def quiet(server: Server, seconds: float = 2.0, timeout: float = 60) -> tuple[int, int]:
    """Wait until the server's descriptor count stops falling; its fds and tasks then."""
    deadline = time.monotonic() + timeout
    last = server.fds()
    while time.monotonic() < deadline:
        await asyncio.sleep(seconds)
        now = server.fds()
        if now >= last:
            break
        last = now
    return server.fds(), int((await debug_info(server.port))["tasks"])


# -- phase 1: idle WebSockets ---------------------------------------------------------------


async def phase_idle(server: Server, redis: Redis, options: argparse.Namespace) -> dict[str, Any]:
    count, minutes = options.sockets, options.idle_minutes
    say(f"idle: warming up, then {count} WebSockets held for {minutes} min")
    warm_tally = Tally()
    warm, _ = await connect_many(server.port, lambda i: "/idle/", 20, warm_tally)
    await leave_all(warm)
    base_fds, base_tasks = await quiet(server)
    base_rss = server.rss_kib()

    tally = Tally()
    started = time.monotonic()
    clients, failures = await connect_many(server.port, lambda i: "/idle/", count, tally)
    open_seconds = time.monotonic() - started
    say(f"idle: {len(clients)} open in {open_seconds:.1f} s ({failures} failed)")
    rss_open = server.rss_kib()
    fds_open = server.fds()
    samples = [rss_open]
    deadline = time.monotonic() + minutes * 60
    next_report = time.monotonic() + 60
    while time.monotonic() < deadline and server.alive():
        await asyncio.sleep(min(options.sample_seconds, max(0.0, deadline - time.monotonic())))
        samples.append(server.rss_kib())
        if time.monotonic() >= next_report:
            next_report += 60
            say(f"idle: RSS {samples[-1] / 1024:.1f} MiB, {tally.pings} pings answered, "
                f"{tally.closed_early} closed early")  # fmt: skip
    rss_end = samples[-1]
    closed_during_idle = tally.closed_early

    # Every socket still open is still served: one group_send reaches them all.
    from channels_redis.core import RedisChannelLayer

    layer = RedisChannelLayer(hosts=[redis.url])
    delivered_before = sum(1 for client in clients if client.received)
    await layer.group_send("idle", {"type": "soak.message", "id": -1})
    wait_until = time.monotonic() + 60
    while time.monotonic() < wait_until:
        delivered = sum(1 for client in clients if "-1" in client.received)
        if delivered >= len(clients) - tally.closed_early:
            break
        await asyncio.sleep(0.5)
    delivered = sum(1 for client in clients if "-1" in client.received)
    await layer.close_pools()

    await leave_all(clients, timeout=60)
    after_fds, after_tasks = await quiet(server)
    return {
        "sockets": count,
        "opened": len(clients),
        "failed": failures,
        "open_seconds": open_seconds,
        "minutes": minutes,
        "pings": tally.pings,
        "closed_early": closed_during_idle,
        "close_codes": dict(tally.close_codes),
        "rss_base": base_rss,
        "rss_open": rss_open,
        "rss_peak": max(samples),
        "rss_end": rss_end,
        "kib_per_socket": (rss_end - base_rss) / max(1, len(clients)),
        "growth_while_idle": rss_end - rss_open,
        "delivered": delivered,
        "stray_messages": delivered_before,
        "fds_base": base_fds,
        "fds_open": fds_open,
        "tasks_base": base_tasks,
        "fds_after": after_fds,
        "tasks_after": after_tasks,
        "samples": len(samples),
    }


# -- phase 2: connections that leave badly ----------------------------------------------------

ABORTS = [
    "rst-on-connect",
    "rst-mid-handshake",
    "close-mid-handshake",
    "rst-after-accept",
    "close-after-accept",
]


async def abort_once(kind: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 10)
        request = handshake("/idle/", port)
        if "mid-handshake" in kind:
            await loop.sock_sendall(sock, request[: len(request) // 2])
        elif "after-accept" in kind:
            await loop.sock_sendall(sock, request)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), 10)
                if not chunk:
                    raise ConnectionError("closed before answering the handshake")
                data += chunk
            if not data.startswith(b"HTTP/1.1 101"):
                raise ConnectionError(f"handshake refused: {data[:40]!r}")
        if kind.startswith("rst"):
            # SO_LINGER with a zero timeout: close() sends RST, not FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


async def phase_abort(server: Server, options: argparse.Namespace) -> dict[str, Any]:
    cycles = options.cycles
    say(f"abort: {cycles} connections that leave badly ({', '.join(ABORTS)})")
    # The layer connects to Redis (and starts its receive loop) on first use:
    # a few WebSockets first, so that the baseline includes that.
    warm, _ = await connect_many(server.port, lambda i: "/idle/", 5, Tally())
    await leave_all(warm)
    base_fds, base_tasks = await quiet(server)
    errors = 0
    semaphore = asyncio.Semaphore(10)

    async def cycle(index: int) -> None:
        nonlocal errors
        async with semaphore:
            try:
                await abort_once(ABORTS[index % len(ABORTS)], server.port)
            except (OSError, asyncio.TimeoutError) as exc:
                errors += 1
                if errors <= 5:
                    say(f"  cycle {index} ({ABORTS[index % len(ABORTS)]}): {exc!r}")

    peak_fds = base_fds
    running = True

    async def sample() -> None:
        nonlocal peak_fds
        while running:
            peak_fds = max(peak_fds, server.fds())
            await asyncio.sleep(0.05)

    sampler = asyncio.ensure_future(sample())
    started = time.monotonic()
    try:
        await asyncio.wait_for(asyncio.gather(*(cycle(i) for i in range(cycles))), 600)
    finally:
        took = time.monotonic() - started
        running = False
        await sampler
    # Exactly back where it was, waiting up to 30 s; the check allows --slack.
    fds, tasks, waited = await settle(server, base_fds, base_tasks, timeout=30)
    return {
        "cycles": cycles,
        "seconds": took,
        "errors": errors,
        "fds_base": base_fds,
        "tasks_base": base_tasks,
        "fds_peak": peak_fds,
        "fds_after": fds,
        "tasks_after": tasks,
        "settle_seconds": waited,
    }


# -- phase 3: Redis killed, restarted and frozen under load --------------------------------------


async def sender_main(config: dict[str, Any]) -> None:
    """The sender process: a steady stream of send / group_send, each outcome recorded."""
    from channels_redis import SendOutcomeUnknown
    from channels_redis.core import RedisChannelLayer

    layer = RedisChannelLayer(
        hosts=[{"address": config["redis"], "socket_timeout": config["socket_timeout"]}],
        capacity=config["capacity"],
    )
    channels: list[str] = config["channels"]
    groups: list[str] = config["groups"]
    rate: float = config["rate"]
    total = int(rate * config["seconds"])
    records: list[list[Any]] = []
    in_flight = asyncio.Semaphore(2000)

    async def one(index: int) -> None:
        if index % 2 == 0:
            kind, target = "group", groups[(index // 2) % len(groups)]
        else:
            kind, target = "send", channels[(index // 2) % len(channels)]
        message = {"type": "soak.message", "id": index}
        began = time.time()
        try:
            if kind == "group":
                await asyncio.wait_for(layer.group_send(target, message), 30)
            else:
                await asyncio.wait_for(layer.send(target, message), 30)
            outcome = "ok"
        except SendOutcomeUnknown:
            outcome = "unknown"
        except asyncio.TimeoutError:
            # Cancelled while on its way: it may have been applied too.
            outcome = "unknown"
        except Exception as exc:
            outcome = "failed:" + type(exc).__name__
        finally:
            in_flight.release()
        records.append([index, kind, target, outcome, began, time.time()])

    print("ready", flush=True)
    start = time.monotonic()
    tasks = []
    for index in range(total):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await in_flight.acquire()
        tasks.append(asyncio.ensure_future(one(index)))
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    with contextlib.suppress(Exception):
        await layer.close_pools()
    await asyncio.to_thread(Path(config["output"]).write_text, json.dumps(records))


async def phase_faults(
    server: Server, redis: Redis, folder: Path, options: argparse.Namespace
) -> dict[str, Any]:
    plan = options.fault_plan
    seconds = plan["seconds"]
    say(
        f"faults: {options.rate:g} messages/s for {seconds} s; Redis killed at {plan['kill']} s "
        f"(back {plan['down']} s later), frozen at {plan['freeze']} s for {plan['frozen']} s"
    )
    group_count, per_group = 4, 10
    tally = Tally()
    channel_of: dict[Client, str] = {}
    got: dict[Client, list[int]] = {}
    load_sockets = group_count * per_group
    all_named = asyncio.Event()

    def on_text(client: Client, text: str) -> None:
        if text.startswith("channel "):
            channel_of[client] = text.split(" ", 1)[1]
            if len(channel_of) == load_sockets:
                all_named.set()
        else:
            got.setdefault(client, []).append(int(text))

    clients, failures = await connect_many(
        server.port, lambda i: f"/load/{i % group_count}/", load_sockets, tally, on_text
    )
    if failures:
        raise RuntimeError(f"faults: {failures} load WebSockets could not connect")
    await asyncio.wait_for(all_named.wait(), 30)
    group_of = {client: f"load{index % group_count}" for index, client in enumerate(clients)}
    client_of_channel = {channel: client for client, channel in channel_of.items()}
    members: dict[str, list[Client]] = {}
    for client, group in group_of.items():
        members.setdefault(group, []).append(client)

    output = folder / "sender.json"
    config = {
        "redis": redis.url,
        "socket_timeout": options.socket_timeout,
        "capacity": options.capacity,
        "channels": [channel_of[client] for client in clients],
        "groups": sorted(members),
        "rate": options.rate,
        "seconds": seconds,
        "output": str(output),
    }
    # The sender raises its own open-file limit (main() does, first thing).
    sender = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE), "--sender", json.dumps(config), stdout=subprocess.PIPE
    )
    try:
        assert sender.stdout is not None
        line = await asyncio.wait_for(sender.stdout.readline(), 60)
        if line.strip() != b"ready":
            raise RuntimeError(f"the sender did not start: {line!r}")
        t0 = time.monotonic()
        events: dict[str, float] = {}

        async def at(offset: float) -> None:
            await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))

        await at(plan["kill"])
        events["kill"] = time.time()
        redis.kill()
        say("faults: Redis killed")
        await at(plan["kill"] + plan["down"])
        # Before it answers: what was acknowledged from now on went to the new server.
        events["restart"] = time.time()
        redis.start()
        say("faults: Redis restarted (empty)")
        await at(plan["freeze"])
        redis.signal(signal.SIGSTOP)
        events["freeze"] = time.time()
        say("faults: Redis frozen (SIGSTOP)")
        await at(plan["freeze"] + plan["frozen"])
        redis.signal(signal.SIGCONT)
        events["thaw"] = time.time()
        say("faults: Redis resumed (SIGCONT)")

        status = await asyncio.wait_for(sender.wait(), seconds + 120)
    finally:
        # Also when this run is cancelled (--timeout) or a step failed.
        if sender.returncode is None:
            sender.kill()
            await sender.wait()
    try:
        records = json.loads(await asyncio.to_thread(output.read_text))
    except OSError as exc:
        raise RuntimeError(f"the sender failed (status {status}): {exc}") from exc

    # Let what is on its way arrive: until nothing new for 5 s (at most 60 s).
    last, quiet_since, stop_at = -1, time.monotonic(), time.monotonic() + 60
    while time.monotonic() < stop_at:
        now = sum(len(ids) for ids in got.values())
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since > 5:
            break
        await asyncio.sleep(0.5)
    info = await debug_info(server.port)
    reconnects = [t for t in info["reconnects"] if t > events["restart"]]
    rejoined = reconnects[0] if reconnects else float("inf")
    closed_early = tally.closed_early
    await leave_all(clients)

    seen: dict[Client, set[int]] = {client: set(ids) for client, ids in got.items()}
    duplicates = sum(len(ids) - len(set(ids)) for ids in got.values())
    result: dict[str, Any] = {
        "sent": len(records),
        "acked": 0,
        "unknown": 0,
        "failed": 0,
        "received": 0,
        "unknown_delivered": 0,
        "failed_delivered": 0,
        "lost_in_restart": 0,
        "lost_before_rejoin": 0,
        "lost_after_ack": 0,
        "lost_ids": [],
        "partial": 0,
        "duplicates": duplicates,
        "closed_early": closed_early,
        "disconnects": len(info["disconnects"]),
        "reconnects": len(info["reconnects"]),
        "rejoin_seconds": rejoined - events["restart"] if reconnects else None,
        "group_members": per_group,
        "groups": group_count,
    }
    for index, kind, target, outcome, _began, done in records:
        recipients = members[target] if kind == "group" else [client_of_channel[target]]
        arrived = sum(1 for client in recipients if index in seen.get(client, ()))
        complete = arrived == len(recipients)
        if complete:
            result["received"] += 1
        elif arrived:
            result["partial"] += 1
        if outcome == "ok":
            result["acked"] += 1
            if not complete:
                if done < events["kill"]:
                    # Acknowledged into the Redis that was then killed empty.
                    result["lost_in_restart"] += 1
                elif kind == "group" and events["restart"] <= done < rejoined:
                    # Documented: before the members' layer came back.
                    result["lost_before_rejoin"] += 1
                else:
                    result["lost_after_ack"] += 1
                    result["lost_ids"].append([index, kind, outcome, done - events["kill"]])
        elif outcome == "unknown":
            result["unknown"] += 1
            result["unknown_delivered"] += arrived > 0
        else:
            result["failed"] += 1
            result["failed_delivered"] += arrived > 0
    result["events"] = {name: when - events["kill"] for name, when in events.items()}
    return result


# -- the run -----------------------------------------------------------------------------------


def table(
    idle: dict[str, Any] | None, abort: dict[str, Any] | None, faults: dict[str, Any] | None
) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Rows of (phase, measure, value), and the checks that failed."""
    rows: list[tuple[str, str, str]] = []
    failed: list[str] = []

    def mib(kib: float) -> str:
        return f"{kib / 1024:.1f} MiB"

    if idle is not None:
        rows += [
            ("idle", "WebSockets opened / asked", f"{idle['opened']} / {idle['sockets']}"),
            ("idle", "time to open them", f"{idle['open_seconds']:.1f} s"),
            ("idle", "held for", f"{idle['minutes']:g} min"),
            ("idle", "pings answered", str(idle["pings"])),
            ("idle", "closed before the end", str(idle["closed_early"])),
            ("idle", "server RSS: before / all open", f"{mib(idle['rss_base'])} / {mib(idle['rss_open'])}"),  # noqa: E501
            ("idle", "server RSS: peak / end", f"{mib(idle['rss_peak'])} / {mib(idle['rss_end'])}"),
            ("idle", "RSS growth while idle", mib(idle["growth_while_idle"])),
            ("idle", "per socket", f"{idle['kib_per_socket']:.1f} KiB"),
            ("idle", "final group_send delivered", f"{idle['delivered']} / {idle['opened']}"),
            ("idle", "fds / tasks before", f"{idle['fds_base']} / {idle['tasks_base']}"),
            ("idle", "fds / tasks after closing", f"{idle['fds_after']} / {idle['tasks_after']}"),
        ]  # fmt: skip
        if idle["failed"] or idle["opened"] != idle["sockets"]:
            failed.append(f"idle: {idle['failed']} WebSockets could not open")
        if idle["closed_early"]:
            failed.append(f"idle: {idle['closed_early']} WebSockets closed early "
                          f"(codes {idle['close_codes']})")  # fmt: skip
        if idle["delivered"] != idle["opened"]:
            failed.append(f"idle: the final group_send reached {idle['delivered']} "
                          f"of {idle['opened']}")  # fmt: skip
        # Bounded: growth while idle under 10 % of what the sockets took.
        taken = max(1, idle["rss_open"] - idle["rss_base"])
        if idle["growth_while_idle"] > max(0.10 * taken, 4096):
            failed.append(f"idle: RSS grew {mib(idle['growth_while_idle'])} while idle")
    if abort is not None:
        rows += [
            ("abort", "cycles (RST or close; before, mid, after handshake)", str(abort["cycles"])),
            ("abort", "time", f"{abort['seconds']:.1f} s"),
            ("abort", "client-side errors", str(abort["errors"])),
            ("abort", "server fds: before / peak / after", f"{abort['fds_base']} / {abort['fds_peak']} / {abort['fds_after']}"),  # noqa: E501
            ("abort", "server tasks: before / after", f"{abort['tasks_base']} / {abort['tasks_after']}"),  # noqa: E501
            ("abort", "back to baseline after", f"{abort['settle_seconds']:.1f} s"),
        ]  # fmt: skip
        if abort["fds_after"] > abort["fds_base"] + SLACK[0]:
            failed.append(f"abort: {abort['fds_after'] - abort['fds_base']} descriptors more")
        if abort["tasks_after"] > abort["tasks_base"] + SLACK[0]:
            failed.append(f"abort: {abort['tasks_after'] - abort['tasks_base']} tasks more")
    if faults is not None:
        events = faults["events"]
        rejoin = faults["rejoin_seconds"]
        rows += [
            ("faults", "faults", f"kill + restart after {events['restart']:.1f} s, "
                                 f"SIGSTOP {events['thaw'] - events['freeze']:.1f} s"),
            ("faults", "consumers", f"{faults['groups']} groups x {faults['group_members']}"),
            ("faults", "messages sent (half group_send)", str(faults["sent"])),
            ("faults", "acknowledged", str(faults["acked"])),
            ("faults", "outcome unknown (delivered)", f"{faults['unknown']} ({faults['unknown_delivered']})"),  # noqa: E501
            ("faults", "failed, not applied (delivered)", f"{faults['failed']} ({faults['failed_delivered']})"),  # noqa: E501
            ("faults", "received by every recipient", str(faults["received"])),
            ("faults", "acked, lost with the killed Redis", str(faults["lost_in_restart"])),
            ("faults", "acked group_send before members rejoined", str(faults["lost_before_rejoin"])),  # noqa: E501
            ("faults", "lost after ack", str(faults["lost_after_ack"])),
            ("faults", "duplicates", str(faults["duplicates"])),
            ("faults", "layer rejoined after restart", "never" if rejoin is None else f"{rejoin:.1f} s"),  # noqa: E501
            ("faults", "WebSockets closed early", str(faults["closed_early"])),
        ]  # fmt: skip
        if faults["lost_after_ack"]:
            failed.append(f"faults: {faults['lost_after_ack']} acknowledged messages lost: "
                          f"{faults['lost_ids'][:10]}")  # fmt: skip
        if faults["failed_delivered"]:
            failed.append(f"faults: {faults['failed_delivered']} sends that failed were delivered")
        if faults["closed_early"]:
            failed.append(f"faults: {faults['closed_early']} WebSockets closed early")
        if rejoin is None:
            failed.append("faults: the server's layer never reported reconnecting")
    return rows, failed


SLACK = [5]


def describe_setup(options: argparse.Namespace) -> str:
    """The server's options and engines, as the table's first row says them."""
    import importlib.util

    fast = [name for name in ("uvloop", "httptools") if importlib.util.find_spec(name)]
    installed = f"{' + '.join(fast)} installed" if fast else "no uvloop, no httptools"
    return f"{options.server_args or 'default options'}; {installed}"


def print_table(rows: list[tuple[str, str, str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    rule = "+".join("-" * (width + 2) for width in widths)
    print(f"+{rule}+")
    for row in rows:
        print(
            "| "
            + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            + " |"
        )
    print(f"+{rule}+", flush=True)


async def run(options: argparse.Namespace, folder: Path) -> int:
    redis = Redis(folder)
    redis.start()
    write_project(folder, redis.url, options.socket_timeout, options.capacity)
    server: Server | None = None
    results: dict[str, dict[str, Any] | None] = {"idle": None, "abort": None, "faults": None}
    try:
        server = Server(folder, shlex.split(options.server_args), options.server_log)
        say(f"redis-server on port {redis.port}, channels-server on port {server.port} "
            f"(pid {server.process.pid})")  # fmt: skip
        if "idle" in options.phases:
            results["idle"] = await phase_idle(server, redis, options)
        if "abort" in options.phases:
            results["abort"] = await phase_abort(server, options)
        if "faults" in options.phases:
            results["faults"] = await phase_faults(server, redis, folder, options)
    finally:
        if server is not None:
            server.stop()
        redis.stop()
    rows, failed = table(results["idle"], results["abort"], results["faults"])
    rows.insert(0, ("run", "server", describe_setup(options)))
    if options.json:
        text = json.dumps(results, indent=2, default=str)
        await asyncio.to_thread(Path(options.json).write_text, text)
    print_table(rows)
    if server is not None:
        # The layer's outage warnings are expected; tracebacks are not.
        say(f"the server printed {server.lines} lines, {server.errors} with errors or tracebacks")
        if server.errors:
            print("".join(list(server.tail)[-40:]))
    for line in failed:
        say(f"FAILED {line}")
    if not failed:
        say("every check passed")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1,000 sockets for 1 minute, 200 cycles, 40 s of faults")  # fmt: skip
    parser.add_argument("--sockets", type=int, help="idle WebSockets (10000)")
    parser.add_argument("--idle-minutes", type=float, help="how long they are held (10)")
    parser.add_argument("--cycles", type=int, help="connect/abort cycles (1000)")
    parser.add_argument("--rate", type=float, default=100, help="messages/s in the fault phase")
    parser.add_argument("--sample-seconds", type=float, default=5, help="RSS sampling period")
    parser.add_argument("--socket-timeout", type=float, default=2.0,
                        help="the layers' socket_timeout; the freeze outlasts it")  # fmt: skip
    parser.add_argument("--capacity", type=int, default=1000, help="the layers' capacity")
    parser.add_argument("--slack", type=int, default=5,
                        help="descriptors and tasks allowed above the baseline")  # fmt: skip
    parser.add_argument("--phases", default="idle,abort,faults",
                        help="which phases to run, comma-separated")  # fmt: skip
    more = 'more channels-server options ("--http h11 --loop asyncio")'
    parser.add_argument("--server-args", default="", help=more)
    parser.add_argument("--json", help="also write the numbers to this file")
    parser.add_argument("--server-log", help="append everything the server prints to this file")
    parser.add_argument("--timeout", type=float, help="hard limit for the whole run, in s")
    parser.add_argument("--sender", help=argparse.SUPPRESS)
    options = parser.parse_args()

    raise_file_limit()
    if options.sender:
        asyncio.run(asyncio.wait_for(sender_main(json.loads(options.sender)), 600))
        return 0

    quick = options.quick
    if options.sockets is None:
        options.sockets = 1000 if quick else 10000
    if options.idle_minutes is None:
        options.idle_minutes = 1 if quick else 10
    if options.cycles is None:
        options.cycles = 200 if quick else 1000
    options.fault_plan = (
        {"seconds": 40, "kill": 8, "down": 3, "freeze": 22, "frozen": 5}
        if quick
        else {"seconds": 90, "kill": 20, "down": 3, "freeze": 50, "frozen": 5}
    )
    options.phases = {name.strip() for name in options.phases.split(",") if name.strip()}
    SLACK[0] = options.slack
    if options.timeout is None:
        options.timeout = options.idle_minutes * 60 + 900
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < options.sockets + 200:
        parser.error(f"the open-file limit ({soft}) is too low for {options.sockets} sockets")

    try:
        import uvloop
    except ImportError:
        uvloop = None  # type: ignore[assignment]

    with tempfile.TemporaryDirectory(prefix="soak-") as name:
        coroutine = asyncio.wait_for(run(options, Path(name)), options.timeout)
        try:
            if uvloop is None:
                return asyncio.run(coroutine)
            loop = uvloop.new_event_loop()
            try:
                return loop.run_until_complete(coroutine)
            finally:
                loop.close()
        except asyncio.TimeoutError:
            # run() stopped its processes on the way out.
            say(f"FAILED the run took longer than --timeout ({options.timeout:g} s)")
            return 1


if __name__ == "__main__":
    sys.exit(main())
