"""Running out of file descriptors, in a real server process started from the command line.

The process gets a low descriptor limit of its own (``preexec_fn``), never
the test runner's.
"""

from __future__ import annotations

import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from channels_server import server as server_module

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc and relies on Linux accept(2)"
)

APP = textwrap.dedent(
    """
    async def application(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"served " + scope["path"].encode()})
    """
)

# Small enough to fill quickly, large enough for the interpreter to start.
LOW_LIMIT = 64

try:
    import uvloop  # noqa: F401

    LOOPS = ["asyncio", "uvloop"]
except ImportError:  # pragma: no cover - uvloop is in the dev environment
    LOOPS = ["asyncio"]


class ServerProcess:
    """A ``channels-server`` process and what it wrote to standard error so far."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.stderr = ""
        assert popen.stdout is not None
        line = self._read_line(popen.stdout.fileno(), 20)
        match = re.fullmatch(r"Listening on http://127\.0\.0\.1:(\d+)\n", line)
        assert match, (line, self.read_stderr(0.5))
        self.port = int(match.group(1))

    @staticmethod
    def _read_line(fd: int, timeout: float) -> str:
        data = b""
        deadline = time.monotonic() + timeout
        while not data.endswith(b"\n"):
            ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                raise TimeoutError(f"no line from the server: {data!r}")
            chunk = os.read(fd, 1)
            if not chunk:
                break
            data += chunk
        return data.decode()

    def read_stderr(self, timeout: float) -> str:
        """Everything written to standard error within *timeout* more seconds."""
        assert self.popen.stderr is not None
        fd = self.popen.stderr.fileno()
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self.stderr += chunk.decode()
        return self.stderr

    def wait_for_log(self, text: str, timeout: float = 10) -> str:
        """Read standard error until *text* appears in it."""
        assert self.popen.stderr is not None
        fd = self.popen.stderr.fileno()
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(remaining, 0))
            if not ready:
                raise TimeoutError(f"{text!r} not logged; standard error: {self.stderr}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"the server exited; standard error: {self.stderr}")
            self.stderr += chunk.decode()
        return self.stderr

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.popen.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        # utime and stime, fields 14 and 15 of proc(5), in clock ticks.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def open_files_limit(self) -> tuple[int, int]:
        with open(f"/proc/{self.popen.pid}/limits") as limits:
            for line in limits:
                if line.startswith("Max open files"):
                    soft, hard = line.split()[3:5]
                    return int(soft), int(hard)
        raise AssertionError("no 'Max open files' in /proc/<pid>/limits")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Any]:
    (tmp_path / "fdapp.py").write_text(APP)
    started: list[ServerProcess] = []

    def start(*argv: str, nofile: tuple[int, int]) -> ServerProcess:
        def limit_descriptors() -> None:  # Runs in the child only.
            resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

        popen = subprocess.Popen(
            [sys.executable, "-m", "channels_server", "-p", "0", *argv, "fdapp:application"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=limit_descriptors,
        )
        try:
            process = ServerProcess(popen)
        except BaseException:
            popen.kill()
            popen.wait()
            raise
        started.append(process)
        return process

    yield start
    for process in started:
        if process.popen.poll() is None:
            process.popen.send_signal(signal.SIGTERM)
            try:
                process.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
        for stream in (process.popen.stdout, process.popen.stderr):
            if stream is not None:
                stream.close()


def send_request(sock: socket.socket, path: str) -> None:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.mark.parametrize("loop", LOOPS)
def test_out_of_descriptors_backs_off_and_recovers(start_server: Any, loop: str) -> None:
    # The hard limit is lowered too, so that the server cannot raise its way out.
    process = start_server(
        "--loop", loop, "--header-timeout", "60", nofile=(LOW_LIMIT, LOW_LIMIT)
    )  # fmt: skip
    held: list[socket.socket] = []
    try:
        # More idle connections than the server has descriptors for.
        for _ in range(LOW_LIMIT):
            held.append(socket.create_connection(("127.0.0.1", process.port), timeout=10))
        process.wait_for_log("Cannot accept connections")
        # A client that arrives now waits in the listen queue.
        waiting = socket.create_connection(("127.0.0.1", process.port), timeout=10)
        send_request(waiting, "/waited")

        # Out of descriptors, the server neither spins nor logs on every try.
        before = process.cpu_seconds()
        stderr = process.read_stderr(2.0)
        assert process.cpu_seconds() - before < 0.5
        assert stderr.count("Cannot accept connections") == 1
        assert "EMFILE" in stderr
        assert "Traceback" not in stderr
        assert "Accepting connections" not in stderr

        # Once descriptors are free, the waiting client and a new one are served.
        for sock in held:
            sock.close()
        held.clear()
        with waiting:
            assert read_all(waiting).endswith(b"served /waited")
        with socket.create_connection(("127.0.0.1", process.port), timeout=10) as fresh:
            send_request(fresh, "/fresh")
            assert read_all(fresh).endswith(b"served /fresh")
        stderr = process.wait_for_log("Accepting connections on http://127.0.0.1:")
        assert stderr.count("Cannot accept connections") == 1
        assert "Traceback" not in stderr
    finally:
        for sock in held:
            sock.close()


def test_the_soft_descriptor_limit_is_raised_at_start(start_server: Any) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip(f"the hard limit ({hard}) leaves nothing to raise")
    process = start_server("-v", "2", nofile=(256, hard))
    assert process.open_files_limit() == (hard, hard)
    process.wait_for_log(f"Raised the open-file limit (RLIMIT_NOFILE) from 256 to {hard}")


def test_importing_the_server_leaves_the_limit_alone() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip(f"the hard limit ({hard}) leaves nothing to raise")
    code = (
        "import resource, channels_server, channels_server.cli, channels_server.server; "
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        check=True,
        timeout=60,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)),
    )
    assert result.stdout.decode().strip() == "256"


def test_a_limit_that_cannot_be_raised_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """setrlimit refusing (a sandbox, a platform quirk) must not stop the server from starting."""

    def refuse(*args: Any) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(resource, "getrlimit", lambda _: (256, 4096))
    monkeypatch.setattr(resource, "setrlimit", refuse)
    server_module._raise_open_file_limit()
