"""``--workers``: a supervisor and worker processes on shared sockets, over real processes.

Each test runs ``python -m channels_server --workers N`` on a tiny application
that answers with its process id, and watches the supervisor's log (written
to a file) for what it did.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trustme

from channels_server.cli import build_parser, config_from_arguments
from channels_server.config import Endpoint
from channels_server.supervisor import check_arguments
from channels_server.supervisor.process import describe_exit
from channels_server.supervisor.worker import inherited_config

APP = textwrap.dedent(
    """
    import asyncio, os, time
    from pathlib import Path

    async def application(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            if os.environ.get("FAIL_STARTUP") or os.path.exists("broken"):
                await send({"type": "lifespan.startup.failed", "message": "no database"})
                return
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            while (await receive())["type"] != "websocket.disconnect":
                pass
            return
        if scope["path"] == "/slow":
            Path(os.environ["MARKER"]).write_text(str(os.getpid()))
            await asyncio.sleep(1)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"pid %d" % os.getpid()})
    """
)

# conftest.py has loaded the support package under this name.
_polling: ModuleType = importlib.import_module("channels_server_test_support.polling")
TIMEOUT = _polling.TIMEOUT
wait_for = _polling.wait_for


class Supervised:
    """A running ``channels-server --workers`` process and its log."""

    def __init__(self, popen: subprocess.Popen[bytes], log: Path) -> None:
        self.popen = popen
        self.log_path = log
        self.port = 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def read_line(self, timeout: float = TIMEOUT) -> str:
        assert self.popen.stdout is not None
        ready, _, _ = select.select([self.popen.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"the server printed nothing; its log:\n{self.log()}")
        return self.popen.stdout.readline().decode()

    def read_port(self) -> int:
        line = self.read_line()
        match = re.fullmatch(r"Listening on http://127\.0\.0\.1:(\d+)\n", line)
        assert match, (line, self.log())
        self.port = int(match.group(1))
        return self.port

    def ready_pids(self) -> list[int]:
        return [int(pid) for pid in re.findall(r"Worker (\d+) ready", self.log())]

    def wait_logged(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        return wait_for(lambda: re.search(pattern, self.log()), timeout, f"{pattern!r} in the log")

    def finish(self) -> None:
        """Kill the supervisor if it still runs; its workers then shut themselves down."""
        pids = [int(pid) for pid in re.findall(r"Started worker (\d+)", self.log())]
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()
        wait_for(lambda: not self.worker_pids_alive(pids), what="the workers to exit")
        assert self.popen.stdout is not None
        self.popen.stdout.close()

    def worker_pids_alive(self, pids: list[int]) -> list[int]:
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            alive.append(pid)
        return alive


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Supervised]]:
    (tmp_path / "pidapp.py").write_text(APP)
    started: list[Supervised] = []

    def start(
        *argv: str, env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = ()
    ) -> Supervised:
        log = tmp_path / f"server-{len(started)}.log"
        with log.open("wb") as log_file:
            popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "channels_server",
                    "--access-log",
                    str(tmp_path / "access.log"),
                    *argv,
                ],
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=log_file,
                env=dict(os.environ, MARKER=str(tmp_path / "marker"), **(env or {})),
                pass_fds=pass_fds,
            )
        process = Supervised(popen, log)
        started.append(process)
        return process

    yield start
    for process in started:
        process.finish()


def request(
    port: int, path: str = "/", timeout: float = 10, tls: ssl.SSLContext | None = None
) -> bytes:
    """One GET on a new connection; the whole response."""
    with contextlib.ExitStack() as stack:
        sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=timeout))
        if tls is not None:
            sock = stack.enter_context(tls.wrap_socket(sock, server_hostname="127.0.0.1"))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def pid_of(response: bytes) -> int:
    match = re.search(rb"pid (\d+)$", response)
    assert match, response
    return int(match.group(1))


def pids_answering(port: int, expected: set[int], timeout: float = TIMEOUT) -> set[int]:
    """Request until every pid of *expected* has answered; the pids seen."""
    seen: set[int] = set()

    def all_seen() -> bool:
        seen.add(pid_of(request(port)))
        return expected <= seen

    wait_for(all_seen, timeout, f"answers from {expected}")
    return seen


# -- flags -------------------------------------------------------------------------------------


def arguments(*argv: str) -> Any:
    return build_parser().parse_args([*argv, "app:application"])


def test_flags() -> None:
    assert check_arguments(arguments()) is False
    assert check_arguments(arguments("--workers", "1")) is True
    assert check_arguments(arguments("--workers", "4")) is True
    assert check_arguments(arguments("--reload")) is True
    assert arguments().workers is None
    assert arguments().reload_delay == 0.25


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "0"], "--workers must be at least 1, not 0"),
        (["--reload", "--workers", "2"], "cannot be combined with --workers"),
        (["--reload-dir", "."], "--reload-dir needs --reload"),
        (
            ["--reload-include", "*.html", "--reload-exclude", "x"],
            "--reload-include and --reload-exclude need --reload",
        ),
        (["--reload", "--reload-dir", "/no/such/folder"], "is not a directory"),
        (["--reload", "--reload-delay", "-1"], "--reload-delay must be >= 0"),
    ],
)
def test_bad_flags_exit_2(argv: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "channels_server", *argv, "app:application"],
        capture_output=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert message in result.stderr.decode()


def test_inherited_config_keeps_each_endpoints_tls_and_backlog() -> None:
    config = config_from_arguments(
        arguments("-u", "/tmp/x.sock", "-e", "ssl:8443:privateKey=k.pem:certKey=c.pem:backlog=5")
    )
    unix, tls = config.parsed_endpoints
    assert (unix.kind, tls.kind) == ("unix", "tcp")
    assert tls.tls is not None
    worker = inherited_config(config, [3, 4])
    assert worker.parsed_endpoints == (
        Endpoint("fd", fileno=3),
        Endpoint("fd", fileno=4, backlog=5, tls=tls.tls),
    )
    with pytest.raises(ValueError, match="1 descriptors for 2 endpoints"):
        inherited_config(config, [3])


def test_describe_exit() -> None:
    assert describe_exit(0) == "exited with status 0"
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"


# -- the processes ------------------------------------------------------------------------------


def test_two_workers_answer_and_sigterm_drains_them(
    start: Callable[..., Supervised], tmp_path: Path
) -> None:
    server = start("--workers", "2", "-p", "0", "--lifespan", "on", "pidapp:application")
    port = server.read_port()
    pids = server.ready_pids()
    assert len(set(pids)) == 2
    assert server.popen.pid not in pids
    assert pids_answering(port, set(pids)) == set(pids)
    # A request in flight when SIGTERM arrives still gets its whole response.
    slow = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    slow.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_for((tmp_path / "marker").exists, what="the slow request to start")
    server.popen.send_signal(signal.SIGTERM)
    response = b""
    while chunk := slow.recv(65536):
        response += chunk
    slow.close()
    assert b" 200 " in response.split(b"\r\n", 1)[0]
    assert response.endswith(b"pid %d" % int((tmp_path / "marker").read_text()))
    assert server.popen.wait(timeout=TIMEOUT) == 0
    assert not server.worker_pids_alive(pids)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    log = server.log()
    assert "Received SIGTERM; stopping the workers gracefully" in log
    assert "Warning" not in log
    assert "Traceback" not in log
    for pid in pids:
        assert f"Worker {pid} exited with status 0" in log


def test_a_killed_worker_is_replaced(start: Callable[..., Supervised]) -> None:
    server = start("--workers", "2", "-p", "0", "pidapp:application")
    port = server.read_port()
    first, second = server.ready_pids()
    os.kill(first, signal.SIGKILL)
    server.wait_logged(rf"Worker {first} killed by SIGKILL; starting a replacement")
    replacement = int(
        server.wait_logged(rf"Worker {first} killed.*\n(?:.*\n)*?.*Worker (\d+) ready")[1]
    )
    assert replacement not in (first, second)
    assert pids_answering(port, {second, replacement}) == {second, replacement}
    server.popen.send_signal(signal.SIGTERM)
    assert server.popen.wait(timeout=TIMEOUT) == 0


def test_sighup_replaces_every_worker_and_no_request_fails(
    start: Callable[..., Supervised],
) -> None:
    server = start("--workers", "2", "-p", "0", "pidapp:application")
    port = server.read_port()
    old = set(server.ready_pids())
    errors: list[BaseException] = []
    answered: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                answered.append(pid_of(request(port)))
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)

    clients = [threading.Thread(target=hammer) for _ in range(3)]
    for client in clients:
        client.start()
    try:
        wait_for(lambda: len(answered) > 20, what="requests before SIGHUP")
        server.popen.send_signal(signal.SIGHUP)
        server.wait_logged("New workers ready; stopping the old ones")
        for pid in old:
            server.wait_logged(rf"Worker {pid} exited with status 0")
        count = len(answered)
        wait_for(lambda: len(answered) > count + 20, what="requests after the replacement")
    finally:
        stop.set()
        for client in clients:
            client.join(TIMEOUT)
    assert errors == []
    new = set(server.ready_pids()) - old
    assert len(new) == 2
    assert set(answered[-10:]) <= new
    assert not server.worker_pids_alive(sorted(old))
    server.popen.send_signal(signal.SIGTERM)
    assert server.popen.wait(timeout=TIMEOUT) == 0


def test_unix_socket_with_workers(start: Callable[..., Supervised], tmp_socket_path: str) -> None:
    path = tmp_socket_path
    server = start("--workers", "2", "-u", path, "pidapp:application")
    server.wait_logged(r"Worker \d+ ready(?:.*\n)*.*Worker \d+ ready")

    def get_unix() -> bytes:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(path)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        return data

    assert pid_of(get_unix()) in server.ready_pids()
    server.popen.send_signal(signal.SIGTERM)
    assert server.popen.wait(timeout=TIMEOUT) == 0
    assert not os.path.exists(path)


def test_inherited_descriptor_with_workers(start: Callable[..., Supervised]) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(100)
    port = listener.getsockname()[1]
    with listener:
        fileno = listener.fileno()
        server = start(
            "--workers", "2", "--fd", str(fileno), "pidapp:application", pass_fds=(fileno,)
        )
    server.wait_logged(r"Worker \d+ ready(?:.*\n)*.*Worker \d+ ready")
    pids = set(server.ready_pids())
    assert pids_answering(port, pids) == pids
    server.popen.send_signal(signal.SIGTERM)
    assert server.popen.wait(timeout=TIMEOUT) == 0


def test_a_worker_failing_at_startup_stops_the_supervisor(
    start: Callable[..., Supervised],
) -> None:
    server = start(
        "--workers", "2", "-p", "0", "--lifespan", "on", "pidapp:application",
        env={"FAIL_STARTUP": "1"},
    )  # fmt: skip
    assert server.popen.wait(timeout=TIMEOUT) == 1
    log = server.log()
    assert "no database" in log
    assert re.search(r"The worker \d+ exited with status 1 before it was ready", log), log
    assert "stopping" in log


def test_an_import_error_stops_the_supervisor(start: Callable[..., Supervised]) -> None:
    server = start("--workers", "2", "-p", "0", "nowhere_module:application")
    assert server.popen.wait(timeout=TIMEOUT) == 1
    log = server.log()
    assert "Cannot import module 'nowhere_module'" in log
    assert re.search(r"The worker \d+ exited with status 1 before it was ready", log), log


def test_port_in_use_stops_the_supervisor_before_any_worker(
    start: Callable[..., Supervised],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = start("--workers", "2", "-p", str(taken.getsockname()[1]), "pidapp:application")
        assert server.popen.wait(timeout=TIMEOUT) == 1
    log = server.log()
    assert "address already in use" in log
    assert "Started worker" not in log


def test_sighup_with_broken_new_workers_keeps_the_old_ones(
    start: Callable[..., Supervised], tmp_path: Path
) -> None:
    server = start("--workers", "2", "-p", "0", "--lifespan", "on", "pidapp:application")
    port = server.read_port()
    old = set(server.ready_pids())
    (tmp_path / "broken").touch()
    server.popen.send_signal(signal.SIGHUP)
    server.wait_logged(r"Replacing the workers failed: worker \d+ exited with status 1")
    assert pids_answering(port, old) == old
    assert server.popen.poll() is None
    (tmp_path / "broken").unlink()
    server.popen.send_signal(signal.SIGHUP)
    server.wait_logged("New workers ready; stopping the old ones")
    new = set(server.ready_pids()) - old
    assert len(new) == 2
    assert pids_answering(port, new) == new
    server.popen.send_signal(signal.SIGTERM)
    assert server.popen.wait(timeout=TIMEOUT) == 0


def test_replacements_failing_to_start_make_the_supervisor_give_up(
    start: Callable[..., Supervised], tmp_path: Path
) -> None:
    server = start("--workers", "1", "-p", "0", "--lifespan", "on", "pidapp:application")
    port = server.read_port()
    (worker,) = server.ready_pids()
    assert pid_of(request(port)) == worker
    (tmp_path / "broken").touch()
    os.kill(worker, signal.SIGKILL)
    # Retried after 0.5, 1, 2 and 4 s; the fifth failure in a row ends it.
    assert server.popen.wait(timeout=TIMEOUT) == 1
    log = server.log()
    assert "starting another in 0.5s" in log
    assert "starting another in 4.0s" in log
    assert "5 workers in a row failed to start, stopping" in log
    assert log.count("exited with status 1 before it was ready") == 5


def test_workers_stop_when_the_supervisor_is_killed(start: Callable[..., Supervised]) -> None:
    server = start("--workers", "2", "-p", "0", "pidapp:application")
    port = server.read_port()
    pids = server.ready_pids()
    server.popen.kill()
    server.popen.wait()
    wait_for(lambda: not server.worker_pids_alive(pids), what="the orphaned workers to exit")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def test_tls_endpoint_with_workers_and_a_certificate_renewed_by_sighup(
    start: Callable[..., Supervised], tmp_path: Path
) -> None:
    first_ca, second_ca = trustme.CA(), trustme.CA()
    certificate = tmp_path / "server.pem"
    first_ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(certificate))
    server = start(
        "--workers", "2",
        "-e", f"ssl:0:privateKey={certificate}:interface=127.0.0.1",
        "pidapp:application",
    )  # fmt: skip
    line = server.read_line()
    match = re.fullmatch(r"Listening on https://127\.0\.0\.1:(\d+)\n", line)
    assert match, line
    port = int(match.group(1))
    trusts_first = ssl.create_default_context()
    first_ca.configure_trust(trusts_first)
    trusts_second = ssl.create_default_context()
    second_ca.configure_trust(trusts_second)
    old = set(server.ready_pids())
    assert pid_of(request(port, tls=trusts_first)) in old
    # The workers load the certificate: a SIGHUP replacement takes a renewed one.
    second_ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(certificate))
    server.popen.send_signal(signal.SIGHUP)
    server.wait_logged("New workers ready; stopping the old ones")
    for pid in old:
        server.wait_logged(rf"Worker {pid} exited with status 0")
    assert pid_of(request(port, tls=trusts_second)) not in old
    with pytest.raises(ssl.SSLCertVerificationError):
        request(port, tls=trusts_first)
    server.popen.send_signal(signal.SIGTERM)
    assert server.popen.wait(timeout=TIMEOUT) == 0


def test_a_bad_certificate_stops_the_supervisor_before_any_worker(
    start: Callable[..., Supervised], tmp_path: Path
) -> None:
    (tmp_path / "bad.pem").write_text("not a certificate")
    server = start("--workers", "2", "-p", "0", "--ssl-certfile", "bad.pem", "pidapp:application")
    assert server.popen.wait(timeout=TIMEOUT) == 1
    log = server.log()
    assert "bad.pem" in log
    assert "Started worker" not in log


def test_sigterm_closes_every_workers_websockets_with_1012(
    start: Callable[..., Supervised],
) -> None:
    server = start("--workers", "2", "-p", "0", "pidapp:application")
    port = server.read_port()
    sockets = []
    for _ in range(4):
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101 ")
        sockets.append(sock)
    server.popen.send_signal(signal.SIGTERM)
    for sock in sockets:
        with sock:
            frame = b""
            while len(frame) < 4:
                chunk = sock.recv(4 - len(frame))
                assert chunk, frame
                frame += chunk
            # A close frame (FIN, opcode 8) whose code is 1012 Service Restart.
            assert frame[0] == 0x88
            assert int.from_bytes(frame[2:4], "big") == 1012
            # The client's close reply (masked, with a zero mask) completes the handshake.
            sock.sendall(b"\x88\x82\x00\x00\x00\x00\x03\xf4")
    assert server.popen.wait(timeout=TIMEOUT) == 0
