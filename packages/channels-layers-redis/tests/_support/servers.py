"""A ``redis-server`` child process on a port of its own, in a directory of its own."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_binary(name: str) -> str:
    """The path of *name* on ``PATH``; fail the test if it is missing.

    A failure, not a skip: a skip would let CI pass without ever talking to Redis.
    """
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH: these tests need a real Redis (apt install redis-server)",
            pytrace=False,
        )
    return path


@contextlib.contextmanager
def short_temporary_directory() -> Iterator[Path]:
    """A temporary directory for servers, removed afterwards."""
    # Unix socket paths must stay under 108 bytes: a deep TMPDIR (nox sets
    # one inside the session's virtualenv) would make redis-server refuse.
    parent = None if len(tempfile.gettempdir()) < 40 else "/tmp"
    directory = Path(tempfile.mkdtemp(prefix="channels-redis-tests-", dir=parent))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class RedisProcess:
    """A ``redis-server`` child process on a fixed port of its own."""

    def __init__(self, directory: Path, *extra: str, port: int | None = None) -> None:
        self.binary = require_binary("redis-server")
        self.port = port or free_port()
        self.directory = directory / f"redis-{self.port}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.extra = list(extra)
        self.process: subprocess.Popen[bytes] | None = None
        self.tls = "--tls-port" in self.extra

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        listen = (
            ["--port", "0", "--tls-port", str(self.port)]
            if self.tls
            else ["--port", str(self.port)]
        )
        return [
            self.binary,
            *listen,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--logfile",
            str(self.directory / "redis.log"),
            *[arg for arg in self.extra if arg != "--tls-port"],
        ]

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.wait_until_up()

    def wait_until_up(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} did not start in {timeout}s")

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def freeze(self) -> None:
        """Stop the server's process (SIGSTOP): connections stay open, nothing answers."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server go on (SIGCONT) with what it was sent meanwhile."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.thaw()  # a stopped process would not act on SIGTERM
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cli(self, *args: str) -> str:
        """Run a command with redis-cli and return its output."""
        cli = require_binary("redis-cli")
        tls: list[str] = []
        if self.tls:
            certs = self.directory.parent / "certs"
            tls = [
                "--tls",
                "--cacert",
                str(certs / "ca.crt"),
                "--cert",
                str(certs / "client.crt"),
                "--key",
                str(certs / "client.key"),
            ]
        done = subprocess.run(
            [cli, "-h", "127.0.0.1", "-p", str(self.port), *tls, *args],
            capture_output=True,
            check=True,
            timeout=30,
        )
        return done.stdout.decode()

    def flush(self) -> str:
        """Empty every database of the server; its URL."""
        self.cli("FLUSHALL")
        return self.url


@contextlib.contextmanager
def running(*servers: RedisProcess) -> Iterator[None]:
    """Start *servers* in order; stop the ones that started, whatever happens."""
    started: list[RedisProcess] = []
    try:
        for server in servers:
            server.start()
            started.append(server)
        yield
    finally:
        for server in started:
            server.stop()


@contextlib.contextmanager
def one_server(directory: Path, *extra: str) -> Iterator[RedisProcess]:
    """A running server with the command-line options *extra*."""
    server = RedisProcess(directory, *extra)
    with running(server):
        yield server
