"""Benchmark: channels-server against daphne and uvicorn, side by side.

    python bench/server.py                      # the full run (about 10 minutes)
    python bench/server.py --quick              # a smoke test (about a minute)
    python bench/server.py --servers ours,uvicorn --rows hello,ws-raw
    python bench/server.py --json results.json  # also write the numbers

Servers, each in its own virtualenv under ``bench/.venvs/`` (made once with
``uv`` and reused; ``--refresh`` remakes them; ours are always reinstalled):

* ``ours``          channels-server without the ``fast`` extra (asyncio, h11, wsproto)
* ``ours-fast``     channels-server[fast] (uvloop)
* ``daphne``        daphne 4 (Twisted, autobahn)
* ``daphne-original`` daphne 4 with channels 4 and channels_redis 4.3.0 from PyPI:
  what a project moving to this one runs today
* ``uvicorn``       uvicorn's pure-Python mode (asyncio loop, h11, wsproto)
* ``uvicorn-fast``  uvicorn[standard] (uvloop, httptools, websockets)

Rows (a fresh server process for each):

* ``hello``        a hello-world ASGI application, wrk, 100 connections
* ``django``       a Django view through ``ProtocolTypeRouter``, wrk, 100 connections
* ``ws-raw``       WebSocket echo, raw ASGI application, 100 clients, 64-byte messages
* ``ws-consumer``  WebSocket echo as a channels ``AsyncWebsocketConsumer``, 100 clients
* ``idle-1000``, ``idle-5000``  server RSS per idle WebSocket on the consumer
* ``idle-1000-redis``, ``idle-5000-redis``  the same with ``RedisChannelLayer``
  (each consumer has a channel and waits on it), on a ``redis-server`` this
  script starts on the load's CPU

The server runs on CPU 0 and the load on CPU 1 (``taskset``). HTTP load is
``wrk``; the WebSocket load is this script's own client (``--ws-client``): one
asyncio protocol per connection, pre-masked frames, replies counted by length,
so it spends a few microseconds per message; it reports its own CPU use, and
a row where the client was busier than 90% is marked as client-bound.

Targets (from the issue): without the fast extra at least 1.5x uvicorn's
pure-Python mode and 1.5x daphne on every throughput row; with it at least
1.0x uvicorn's fast mode; at most 15 KiB per idle WebSocket on a consumer,
and at most 10 KiB with the Redis layer.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENVS = HERE / ".venvs"
CORE = str(ROOT / "packages" / "channels-core")
SERVER = str(ROOT / "packages" / "channels-server")
REDIS_LAYER = str(ROOT / "packages" / "channels-layers-redis")
SERVER_CPU = "0"
CLIENT_CPU = "1"

SERVERS: dict[str, dict[str, Any]] = {
    "ours": {
        "requirements": [SERVER, CORE, REDIS_LAYER, "django>=5.2,<6"],
        "local": True,
        "command": ["-m", "channels_server", "--port", "0", "--loop", "asyncio", "-v", "1",
                    "--lifespan", "off", "--websocket-max-message-size", "1048576"],
        "ready": r"Listening on http://127\.0\.0\.1:(\d+)",
    },
    "ours-fast": {
        "requirements": [f"{SERVER}[fast]", CORE, REDIS_LAYER, "django>=5.2,<6"],
        "local": True,
        "command": ["-m", "channels_server", "--port", "0", "--loop", "uvloop", "-v", "1",
                    "--lifespan", "off"],
        "ready": r"Listening on http://127\.0\.0\.1:(\d+)",
    },
    "daphne": {
        "requirements": ["daphne>=4.1,<5", CORE, REDIS_LAYER, "django>=5.2,<6"],
        "command": ["-m", "daphne", "-b", "127.0.0.1", "-p", "0", "-v", "1"],
        "ready": r"Listening on TCP address 127\.0\.0\.1:(\d+)",
    },
    "uvicorn": {
        "requirements": ["uvicorn>=0.30", "wsproto", CORE, REDIS_LAYER, "django>=5.2,<6"],
        "command": ["-m", "uvicorn", "--host", "127.0.0.1", "--port", "0", "--loop", "asyncio",
                    "--http", "h11", "--ws", "wsproto", "--lifespan", "off", "--no-access-log"],
        "ready": r"Uvicorn running on http://127\.0\.0\.1:(\d+)",
    },
    "daphne-original": {
        "requirements": ["daphne>=4.1,<5", "channels>=4.2,<5", "channels-redis==4.3.0",
                         "django>=5.2,<6"],
        "command": ["-m", "daphne", "-b", "127.0.0.1", "-p", "0", "-v", "1"],
        "ready": r"Listening on TCP address 127\.0\.0\.1:(\d+)",
    },
    "uvicorn-fast": {
        "requirements": ["uvicorn[standard]>=0.30", CORE, REDIS_LAYER, "django>=5.2,<6"],
        "command": ["-m", "uvicorn", "--host", "127.0.0.1", "--port", "0", "--loop", "uvloop",
                    "--http", "httptools", "--ws", "websockets", "--lifespan", "off",
                    "--no-access-log"],
        "ready": r"Uvicorn running on http://127\.0\.0\.1:(\d+)",
    },
}  # fmt: skip

ROWS: dict[str, dict[str, Any]] = {
    "hello": {"app": "benchapp:hello", "kind": "http", "path": "/"},
    "django": {"app": "benchapp:django_application", "kind": "http", "path": "/hello/"},
    "ws-raw": {"app": "benchapp:websocket_echo", "kind": "ws", "path": "/ws/"},
    "ws-consumer": {"app": "benchapp:channels_application", "kind": "ws", "path": "/ws/"},
    "idle-1000": {
        "app": "benchapp:channels_application",
        "kind": "idle",
        "path": "/ws/",
        "count": 1000,
    },
    "idle-5000": {
        "app": "benchapp:channels_application",
        "kind": "idle",
        "path": "/ws/",
        "count": 5000,
    },
    "idle-1000-redis": {
        "app": "benchapp:channels_application",
        "kind": "idle",
        "path": "/ws/",
        "count": 1000,
        "layer": "redis",
    },
    "idle-5000-redis": {
        "app": "benchapp:channels_application",
        "kind": "idle",
        "path": "/ws/",
        "count": 5000,
        "layer": "redis",
    },
}

#: KiB per idle WebSocket on a consumer: with the Redis layer, and without
#: (or with the layer given by --layer).
IDLE_TARGET_KIB = {"redis": 10.0, None: 15.0}

BENCHAPP = """
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsettings")

import django

django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import path

BODY = b"Hello, world!"


async def hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]})
    await send({"type": "http.response.body", "body": BODY})


async def websocket_echo(scope, receive, send):
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send(
            {"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")}
        )


class Echo(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data, bytes_data=bytes_data)


django_application = ProtocolTypeRouter({"http": get_asgi_application()})
channels_application = ProtocolTypeRouter(
    {"websocket": URLRouter([path("ws/", Echo.as_asgi())])}
)
"""

BENCHSETTINGS = """
import os

SECRET_KEY = "bench-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels"]
MIDDLEWARE = []
DATABASES = {}
ROOT_URLCONF = "benchurls"
USE_TZ = True
if os.environ.get("BENCH_CHANNEL_LAYER") == "inmemory":
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
elif os.environ.get("BENCH_CHANNEL_LAYER") == "redis":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ["BENCH_REDIS_URL"]]},
        }
    }
"""

BENCHURLS = """
from django.http import HttpResponse
from django.urls import path


def hello(request):
    return HttpResponse(b"Hello, world!", content_type="text/plain")


urlpatterns = [path("hello/", hello)]
"""


# The Django row's ceiling: the same application driven in-process, with no
# server and no sockets, 100 requests at a time, on the server's CPU. No
# server can serve the row faster than this.
DJANGO_ALONE = """
import asyncio, json, os, sys, time

os.environ["DJANGO_SETTINGS_MODULE"] = "benchsettings"
from benchapp import django_application as app

SCOPE = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
         "scheme": "http", "path": "/hello/", "raw_path": b"/hello/", "query_string": b"",
         "root_path": "", "headers": [(b"host", b"localhost")], "client": ("127.0.0.1", 1),
         "server": ("127.0.0.1", 80), "state": {}}


async def one():
    done = asyncio.Event()
    requested = False

    async def receive():
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await app(dict(SCOPE), receive, send)


async def main(seconds):
    for _ in range(3):
        await asyncio.gather(*(one() for _ in range(100)))
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        await asyncio.gather(*(one() for _ in range(100)))
        count += 100
    print(json.dumps({"rate": count / (time.perf_counter() - started)}))


asyncio.run(main(float(sys.argv[1])))
"""


def django_alone(project: Path, duration: float) -> float | None:
    """Requests per second of the Django row's application without a server."""
    environment = dict(os.environ, PYTHONPATH=str(project), DJANGO_SETTINGS_MODULE="benchsettings")
    command = pinned(SERVER_CPU, [str(python_of("ours")), "-c", DJANGO_ALONE, str(duration)])
    done = subprocess.run(
        command, cwd=project, env=environment, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        say(f"  the Django application alone failed: {done.stderr.strip()[-300:]}")
        return None
    return float(json.loads(done.stdout.strip().splitlines()[-1])["rate"])


def say(message: str) -> None:
    print(message, flush=True)


def raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pinned(cpu: str, command: list[str]) -> list[str]:
    if shutil.which("taskset"):
        return ["taskset", "-c", cpu, *command]
    return command


# -- virtualenvs -----------------------------------------------------------------------


def python_of(name: str) -> Path:
    return VENVS / f"server-{name}" / "bin" / "python"


def ensure_venv(name: str, refresh: bool) -> Path:
    spec = SERVERS[name]
    python = python_of(name)
    if python.exists() and not refresh and not spec.get("local"):
        return python
    venv = python.parent.parent
    if not python.exists() or refresh:
        say(f"  making {venv}")
        subprocess.run(["uv", "venv", "-q", "--clear", "-p", sys.executable, str(venv)], check=True)
    subprocess.run(
        ["uv", "pip", "install", "-q", "-p", str(python), "--reinstall-package", "channels-server",
         "--reinstall-package", "channels-core", "--reinstall-package", "channels-layers-redis",
         *spec["requirements"]],
        check=True,
    )  # fmt: skip
    return python


# -- servers -----------------------------------------------------------------------------


class RunningServer:
    def __init__(
        self, name: str, app: str, project: Path, layer: str | None, redis_url: str | None = None
    ) -> None:
        spec = SERVERS[name]
        environment = dict(
            os.environ,
            PYTHONPATH=str(project),
            DJANGO_SETTINGS_MODULE="benchsettings",
            PYTHONUNBUFFERED="1",
        )
        if layer:
            environment["BENCH_CHANNEL_LAYER"] = layer
        if redis_url:
            environment["BENCH_REDIS_URL"] = redis_url
        command = pinned(SERVER_CPU, [str(python_of(name)), *spec["command"], app])
        self.process = subprocess.Popen(
            command,
            cwd=project,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=raise_file_limit,
        )
        self.port = self._wait_for_port(spec["ready"])
        # Keep reading what the server prints: a full pipe would block it.
        self.output: list[str] = []
        self._drain = threading.Thread(target=self._drain_output, daemon=True)
        self._drain.start()

    def _drain_output(self) -> None:
        assert self.process.stdout is not None
        for line in iter(self.process.stdout.readline, b""):
            self.output.append(line.decode(errors="replace"))
            del self.output[:-50]

    def _wait_for_port(self, pattern: str, timeout: float = 60) -> int:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        seen = ""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                data = os.read(fd, 65536)
                if not data:
                    break
                seen += data.decode(errors="replace")
                match = re.search(pattern, seen)
                if match:
                    return int(match.group(1))
        self.stop()
        raise RuntimeError(f"server did not start; it printed:\n{seen}")

    def rss_kib(self) -> int:
        # The server is the child of taskset's exec, so the same PID.
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if hasattr(self, "_drain"):
            self._drain.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A ``redis-server`` of the run's own, on a free port, on the load's CPU."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("the -redis rows need redis-server on PATH")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        pinned(CLIENT_CPU, [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                            "--appendonly", "no", "--dir", str(directory)]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                if connection.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise SystemExit("redis-server did not start")
        time.sleep(0.05)
    return process, f"redis://127.0.0.1:{port}/0"


# -- load ----------------------------------------------------------------------------------


def run_wrk(port: int, path: str, duration: float, connections: int) -> dict[str, Any]:
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed (apt install wrk)")
    url = f"http://127.0.0.1:{port}{path}"
    # A short warm-up, then the measurement.
    subprocess.run(
        pinned(CLIENT_CPU, ["wrk", "-t1", "-c16", "-d1s", url]), capture_output=True, check=True
    )
    result = subprocess.run(
        pinned(
            CLIENT_CPU, ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", url]
        ),
        capture_output=True,
        text=True,
        check=True,
    )
    output = result.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rate": rate,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def run_ws_client(port: int, path: str, **options: Any) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--ws-client", "--port", str(port),
               "--path", path, "--client-options", json.dumps(options)]  # fmt: skip
    result = subprocess.run(
        pinned(CLIENT_CPU, command),
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=raise_file_limit,
    )
    if result.returncode != 0:
        raise RuntimeError(f"WebSocket client failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_idle(server: RunningServer, path: str, count: int) -> dict[str, Any]:
    # Warm the server up (imports, first consumers), then measure from a baseline.
    run_ws_client(server.port, path, mode="echo", connections=20, duration=0.5)
    time.sleep(1)
    baseline = server.rss_kib()
    options = json.dumps({"mode": "idle", "connections": count})
    command = [sys.executable, str(Path(__file__).resolve()), "--ws-client",
               "--port", str(server.port), "--path", path, "--client-options", options]  # fmt: skip
    client = subprocess.Popen(
        pinned(CLIENT_CPU, command),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=raise_file_limit,
    )
    assert client.stdout is not None
    assert client.stdin is not None
    ready, _, _ = select.select([client.stdout], [], [], 120)
    line = client.stdout.readline() if ready else ""
    if not line.startswith("open"):
        client.kill()
        client.wait()
        raise RuntimeError(f"idle client could not open {count} WebSockets in 120 s: {line!r}")
    opened = int(line.split()[1])
    time.sleep(3)
    after = server.rss_kib()
    client.stdin.close()
    client.wait(timeout=60)
    return {"opened": opened, "baseline_kib": baseline, "after_kib": after,
            "kib_per_socket": (after - baseline) / max(opened, 1)}  # fmt: skip


# -- the WebSocket client (runs in its own process on the client CPU) -------------------------

HANDSHAKE = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def masked_text_frame(payload: bytes) -> bytes:
    # FIN + text, masked, with an all-zero key: masking is then the identity
    # (RFC 6455 allows any key), so the frame is built once and reused.
    if len(payload) >= 126:
        raise ValueError("the load client sends short frames only")
    return bytes((0x81, 0x80 | len(payload))) + b"\x00\x00\x00\x00" + payload


async def ws_client(port: int, path: str, options: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    mode = options.get("mode", "echo")
    connections = int(options.get("connections", 100))
    payload = b"x" * int(options.get("size", 64))
    frame = masked_text_frame(payload)
    reply_length = 2 + len(payload)
    handshake = HANDSHAKE.format(path=path, port=port).encode()
    state = {"count": 0, "running": True}
    opened: list[asyncio.Future[None]] = []

    class Client(asyncio.Protocol):
        def __init__(self) -> None:
            self.head = b""
            self.open = False
            self.pending = 0
            self.ready: asyncio.Future[None] = loop.create_future()
            opened.append(self.ready)

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            transport.write(handshake)  # type: ignore[attr-defined]

        def data_received(self, data: bytes) -> None:
            if not self.open:
                self.head += data
                end = self.head.find(b"\r\n\r\n")
                if end == -1:
                    return
                if not self.head.startswith(b"HTTP/1.1 101"):
                    self.ready.set_exception(
                        ConnectionError(self.head[:100].decode(errors="replace"))
                    )
                    return
                self.open = True
                rest = len(self.head) - end - 4
                self.head = b""
                self.ready.set_result(None)
                if mode == "echo":
                    self.transport.write(frame)  # type: ignore[attr-defined]
                self.pending = rest
                return
            self.pending += len(data)
            while self.pending >= reply_length:
                self.pending -= reply_length
                state["count"] += 1
                if state["running"]:
                    self.transport.write(frame)  # type: ignore[attr-defined]

    transports = []
    for start in range(0, connections, 100):
        batch = [
            loop.create_connection(Client, "127.0.0.1", port)
            for _ in range(min(100, connections - start))
        ]
        for transport, _ in await asyncio.gather(*batch):
            transports.append(transport)
        await asyncio.gather(*opened[start:])
    if mode == "idle":
        print(f"open {len(transports)}", flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
    else:
        duration = float(options.get("duration", 10))
        await asyncio.sleep(min(1.0, duration / 4))  # warm-up
        count_before, cpu_before, wall_before = (
            state["count"],
            time.process_time(),
            time.monotonic(),
        )
        await asyncio.sleep(duration)
        count_after, cpu_after, wall_after = state["count"], time.process_time(), time.monotonic()
        state["running"] = False
        wall = wall_after - wall_before
        print(json.dumps({"rate": (count_after - count_before) / wall,
                          "client_cpu": (cpu_after - cpu_before) / wall}), flush=True)  # fmt: skip
    for transport in transports:
        transport.close()
    await asyncio.sleep(0.1)


def ws_client_main(arguments: argparse.Namespace) -> int:
    raise_file_limit()
    options = json.loads(arguments.client_options)
    try:
        import uvloop
    except ImportError:
        asyncio.run(ws_client(arguments.port, arguments.path, options))
    else:
        loop = uvloop.new_event_loop()
        try:
            loop.run_until_complete(ws_client(arguments.port, arguments.path, options))
        finally:
            loop.close()
    return 0


# -- the run ---------------------------------------------------------------------------------


def measure(
    name: str, row_name: str, project: Path, arguments: argparse.Namespace
) -> dict[str, Any]:
    row = ROWS[row_name]
    layer = row.get("layer", arguments.layer)
    server = RunningServer(name, row["app"], project, layer, arguments.redis_url)
    try:
        if row["kind"] == "http":
            return run_wrk(server.port, row["path"], arguments.duration, arguments.http_connections)
        if row["kind"] == "ws":
            return run_ws_client(
                server.port,
                row["path"],
                mode="echo",
                connections=arguments.ws_connections,
                duration=arguments.duration,
            )
        count = row["count"] if not arguments.quick else row["count"] // 10
        return run_idle(server, row["path"], count)
    finally:
        server.stop()


def format_cell(row_name: str, result: dict[str, Any] | None) -> str:
    if result is None:
        return "-"
    if "error" in result:
        return "error"
    if ROWS[row_name]["kind"] == "idle":
        return f"{result['kib_per_socket']:.1f} KiB"
    text = f"{result['rate']:,.0f}/s"
    if result.get("client_cpu", 0) > 0.9:
        text += " (client-bound)"
    if result.get("non_2xx") or result.get("socket_errors"):
        text += " !"
    return text


def report(
    results: dict[str, dict[str, dict[str, Any]]],
    servers: list[str],
    rows: list[str],
    django_ceiling: float | None = None,
) -> None:
    width = 18
    say("")
    say("row".ljust(13) + "".join(name.rjust(width) for name in servers))
    for row_name in rows:
        cells = [format_cell(row_name, results.get(name, {}).get(row_name)) for name in servers]
        say(row_name.ljust(13) + "".join(cell.rjust(width) for cell in cells))
    say("")
    say("targets:")

    def rate(server: str, row_name: str) -> float | None:
        result = results.get(server, {}).get(row_name)
        return None if result is None or "rate" not in result else float(result["rate"])

    for row_name in rows:
        if ROWS[row_name]["kind"] == "idle":
            result = results.get("ours", {}).get(row_name)
            target = IDLE_TARGET_KIB.get(ROWS[row_name].get("layer"), IDLE_TARGET_KIB[None])
            if result and "kib_per_socket" in result:
                ok = result["kib_per_socket"] <= target
                say(f"  {row_name}: ours {result['kib_per_socket']:.1f} KiB per idle WebSocket "
                    f"(target <= {target:g})  {'OK' if ok else 'MISSED'}")  # fmt: skip
            continue
        for ours, other, target in (
            ("ours", "uvicorn", 1.5),
            ("ours", "daphne", 1.5),
            ("ours-fast", "uvicorn-fast", 1.0),
        ):
            mine, theirs = rate(ours, row_name), rate(other, row_name)
            if mine is None or theirs is None or theirs == 0:
                continue
            ratio = mine / theirs
            say(f"  {row_name}: {ours} / {other} = {ratio:.2f}x (target >= {target})  "
                f"{'OK' if ratio >= target else 'MISSED'}")  # fmt: skip
    if django_ceiling is not None:
        say(f"  django: the application alone, with no server at all, does {django_ceiling:,.0f}/s "
            "on the server's CPU; no server can beat that")  # fmt: skip
        for other in ("uvicorn", "daphne"):
            theirs = rate(other, "django")
            if theirs:
                say(f"    1.5x {other} would be {1.5 * theirs:,.0f}/s "
                    f"({1.5 * theirs / django_ceiling:.2f}x that ceiling)")  # fmt: skip


# -- what --json writes besides the numbers: when, where, which versions ----------------------

#: The distributions whose versions a server's virtualenv reports.
REPORTED_DISTRIBUTIONS = (
    "channels-server", "channels-core", "channels-layers-redis", "daphne", "uvicorn", "channels",
    "channels-redis", "django", "twisted", "autobahn", "uvloop", "httptools", "websockets",
    "wsproto", "h11", "redis",
)  # fmt: skip


def installed_versions(name: str) -> dict[str, str]:
    """The versions of REPORTED_DISTRIBUTIONS in server ``name``'s virtualenv."""
    program = (
        "import json, sys\n"
        "from importlib.metadata import PackageNotFoundError, version\n"
        "found = {'python': sys.version.split()[0]}\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        found[name] = version(name)\n"
        "    except PackageNotFoundError:\n"
        "        pass\n"
        "print(json.dumps(found))\n"
    )
    done = subprocess.run(
        [str(python_of(name)), "-c", program, *REPORTED_DISTRIBUTIONS],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-300:]}
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def machine() -> dict[str, Any]:
    """The CPU, the system and the tools the numbers depend on."""
    from _machine import describe  # bench/, beside this script

    tools = {}
    for tool, flag in (("redis-server", "--version"), ("wrk", "--version")):
        binary = shutil.which(tool)
        if binary is None:
            continue
        done = subprocess.run([binary, flag], capture_output=True, text=True, check=False)
        lines = (done.stdout or done.stderr).strip().splitlines()
        tools[tool] = lines[0] if lines else "?"
    return {**describe(), "tools": tools}


def describe_run(
    arguments: argparse.Namespace,
    servers: list[str],
    rows: list[str],
    started: datetime.datetime,
    results: dict[str, dict[str, dict[str, Any]]],
) -> dict[str, Any]:
    """The JSON document: the run's date, machine, options and versions, then ``results``."""
    return {
        "benchmark": "bench/server.py",
        "date": started.isoformat(timespec="seconds"),
        "seconds": round((datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()),
        "quick": arguments.quick,
        "options": {
            "servers": servers,
            "rows": rows,
            "duration": arguments.duration,
            "http_connections": arguments.http_connections,
            "ws_connections": arguments.ws_connections,
            "layer": arguments.layer,
        },
        "machine": machine(),
        "pinned": {"server_cpu": SERVER_CPU, "load_cpu": CLIENT_CPU},
        "versions": {name: installed_versions(name) for name in servers},
        # {server: {row: numbers}}; "no-server" holds the django row's ceiling.
        "results": results,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help="comma-separated, of: " + ", ".join(SERVERS)
    )
    parser.add_argument(
        "--rows", default=",".join(ROWS), help="comma-separated, of: " + ", ".join(ROWS)
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per throughput row")
    parser.add_argument("--http-connections", type=int, default=100)
    parser.add_argument("--ws-connections", type=int, default=100)
    parser.add_argument(
        "--layer",
        choices=("inmemory", "redis"),
        default=None,
        help="give the consumers a channel layer (the default is none)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 s rows and a tenth of the idle sockets"
    )
    parser.add_argument("--refresh", action="store_true", help="remake the virtualenvs")
    parser.add_argument("--json", type=Path, default=None, help="write the results here too")
    # The WebSocket client mode (used by the run itself).
    parser.add_argument("--ws-client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--client-options", default="{}", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.ws_client:
        return ws_client_main(arguments)
    if arguments.quick:
        arguments.duration = 1.0
    servers = [name for name in arguments.servers.split(",") if name]
    rows = [name for name in arguments.rows.split(",") if name]
    for name in servers:
        if name not in SERVERS:
            parser.error(f"unknown server {name!r}")
    for name in rows:
        if name not in ROWS:
            parser.error(f"unknown row {name!r}")
    if (os.cpu_count() or 1) < 2:
        say("warning: fewer than two CPUs; server and load will share one")
    started = datetime.datetime.now(datetime.timezone.utc)
    say("virtualenvs:")
    for name in servers:
        ensure_venv(name, arguments.refresh)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    layers = {arguments.layer} | {ROWS[row].get("layer") for row in rows}
    with tempfile.TemporaryDirectory(prefix="bench-server-") as directory:
        project = Path(directory)
        redis = start_redis(project) if "redis" in layers else None
        arguments.redis_url = None if redis is None else redis[1]
        (project / "benchapp.py").write_text(textwrap.dedent(BENCHAPP))
        (project / "benchsettings.py").write_text(textwrap.dedent(BENCHSETTINGS))
        (project / "benchurls.py").write_text(textwrap.dedent(BENCHURLS))
        for row_name in rows:
            for name in servers:
                say(f"{row_name} / {name} ...")
                try:
                    result = measure(name, row_name, project, arguments)
                except Exception as exc:
                    say(f"  failed: {exc}")
                    result = {"error": str(exc)}
                else:
                    say(f"  {format_cell(row_name, result)}")
                results.setdefault(name, {})[row_name] = result
        django_ceiling = None
        if "django" in rows and "ours" in servers:
            say("django / the application alone, no server ...")
            django_ceiling = django_alone(project, arguments.duration)
            if django_ceiling is not None:
                say(f"  {django_ceiling:,.0f}/s")
                results.setdefault("no-server", {})["django"] = {"rate": django_ceiling}
        if redis is not None:
            redis[0].terminate()
            redis[0].wait(10)
    report(results, servers, rows, django_ceiling)
    if arguments.json:
        arguments.json.write_text(
            json.dumps(describe_run(arguments, servers, rows, started, results), indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
