"""The deployment the README describes: separate processes sharing a Redis layer.

A private ``redis-server`` (on a Unix socket in a temporary directory), the
project served by ``channels-server`` in one process and ``manage.py
runworker chat-stats`` in another, both on the test database. A WebSocket
client talks to the server; the worker, which shares nothing with the
server but Redis, counts the messages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import pytest
import websocket
from django.db import connections

from chat.models import RoomStats

PROJECT_DIR = Path(__file__).resolve().parent.parent
#: Seconds a process has to start, or the worker to catch up.
STARTUP = 20

pytestmark = pytest.mark.django_db(transaction=True)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = STARTUP) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def read_line_with(stream: IO[str], text: str, process: subprocess.Popen[str]) -> str:
    """The first line of *stream* holding *text* (the process must print it on start)."""
    for line in stream:
        if text in line:
            return line
    raise AssertionError(f"{process.args!r} exited ({process.wait()}) without printing {text!r}")


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A redis-server of our own, on a Unix socket (no port to collide on)."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise AssertionError("redis-server is not on PATH; these tests need a real Redis")
    socket_path = tmp_path / "redis.sock"
    # No TCP port, and nothing written to disk.
    arguments = [
        "--port",
        "0",
        "--unixsocket",
        str(socket_path),
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    process = subprocess.Popen(
        [executable, *arguments],
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_until(socket_path.exists, "redis-server to listen")
        yield f"unix://{socket_path}"
    finally:
        stop(process)


@pytest.fixture
def project_env(redis_url: str) -> dict[str, str]:
    """The environment of the project's processes: Redis, and the test database."""
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "CHAT_DATABASE": str(connections["default"].settings_dict["NAME"]),
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def start(project_env: dict[str, str]) -> Iterator[Callable[..., Any]]:
    """``start(args, ready_text)``: run a project process until the end of the test."""
    running: list[subprocess.Popen[str]] = []

    def start_(args: list[str], ready_text: str) -> str:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=PROJECT_DIR,
            env=project_env,
            stdout=subprocess.PIPE,
            text=True,
        )
        running.append(process)
        assert process.stdout is not None
        return read_line_with(process.stdout, ready_text, process)

    yield start_
    for process in running:
        stop(process)


def test_worker_in_its_own_process_counts_messages_sent_through_redis(
    start: Callable[..., str],
) -> None:
    listening = start(["-m", "channels_server", "-p", "0", "mysite.asgi:application"], "Listening")
    origin = listening.split()[-1]  # "Listening on http://127.0.0.1:<port>"
    start(["manage.py", "runworker", "chat-stats"], "Worker listening")
    url = origin.replace("http://", "ws://") + "/ws/chat/" + quote("café au lait", safe="") + "/"

    sender = websocket.create_connection(url, origin=origin, timeout=5)
    listener = websocket.create_connection(url, origin=origin, timeout=5)
    try:
        for number in range(5):
            sender.send(json.dumps({"message": f"message {number}"}))
        received = [json.loads(listener.recv())["message"] for _ in range(5)]
    finally:
        sender.close()
        listener.close()

    assert received == [f"message {number}" for number in range(5)]
    wait_until(
        lambda: RoomStats.objects.filter(room_name="café au lait", message_count=5).exists(),
        "the worker to count 5 messages",
    )


def test_two_servers_share_rooms_through_redis(start: Callable[..., str]) -> None:
    """Clients on different server processes chat in one room; other rooms hear nothing."""
    origins = [
        start(["-m", "channels_server", "-p", "0", "mysite.asgi:application"], "Listening").split()[
            -1
        ]
        for _ in range(2)
    ]
    assert origins[0] != origins[1]

    def connect(origin: str, room: str) -> websocket.WebSocket:
        url = origin.replace("http://", "ws://") + "/ws/chat/" + quote(room, safe="") + "/"
        return websocket.create_connection(url, origin=origin, timeout=5)

    on_first = connect(origins[0], "lobby")
    on_second = connect(origins[1], "lobby")
    elsewhere = connect(origins[1], "kitchen")
    try:
        on_first.send(json.dumps({"message": "hello from the first server"}))
        assert json.loads(on_second.recv())["message"] == "hello from the first server"
        assert json.loads(on_first.recv())["message"] == "hello from the first server"
        on_second.send(json.dumps({"message": "and back from the second"}))
        assert json.loads(on_first.recv())["message"] == "and back from the second"
        # The other room got nothing: the next frame it sees is its own message.
        elsewhere.send(json.dumps({"message": "kitchen only"}))
        assert json.loads(elsewhere.recv())["message"] == "kitchen only"
    finally:
        for client in (on_first, on_second, elsewhere):
            client.close()
