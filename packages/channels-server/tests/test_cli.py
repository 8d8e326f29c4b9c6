"""The command line: daphne's flags, and the real process under signals."""

from __future__ import annotations

import os
import re
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

from channels_server import __version__
from channels_server.cli import build_parser, config_from_arguments, import_application, main
from channels_server.config import Endpoint
from channels_server.errors import ConfigurationError


def config_for(*argv: str) -> Any:
    return config_from_arguments(build_parser().parse_args([*argv, "app:application"]))


# -- flags ---------------------------------------------------------------------------------------


def test_defaults_are_daphnes() -> None:
    config = config_for()
    assert config.parsed_endpoints == (Endpoint("tcp", host="127.0.0.1", port=8000),)
    assert config.ping_interval == 20
    assert config.ping_timeout == 30
    assert config.websocket_timeout == 86400
    assert config.websocket_connect_timeout == 5
    assert config.application_close_timeout == 10
    assert config.http_timeout is None
    assert config.websocket_max_message_size == 1024 * 1024
    assert config.websocket_max_frame_size == 1024 * 1024
    assert config.server_name == "channels-server"
    assert config.lifespan == "auto"


@pytest.mark.parametrize(
    ("argv", "endpoints"),
    [
        (["-b", "0.0.0.0"], [Endpoint("tcp", host="0.0.0.0", port=8000)]),
        (["-p", "9000"], [Endpoint("tcp", host="127.0.0.1", port=9000)]),
        (["--bind", "::1", "--port", "0"], [Endpoint("tcp", host="::1", port=0)]),
        (["-u", "/tmp/a.sock"], [Endpoint("unix", path="/tmp/a.sock")]),
        (["--fd", "0"], [Endpoint("fd", fileno=0)]),
        (
            ["-u", "/run/x.sock", "--fd", "0"],
            [Endpoint("unix", path="/run/x.sock"), Endpoint("fd", fileno=0)],
        ),
        (
            ["-p", "81", "-e", "unix:/tmp/b.sock", "-e", "tcp:82"],
            [
                Endpoint("tcp", host="127.0.0.1", port=81),
                Endpoint("unix", path="/tmp/b.sock"),
                Endpoint("tcp", host="0.0.0.0", port=82),
            ],
        ),
    ],
)
def test_endpoint_flags(argv: list[str], endpoints: list[Endpoint]) -> None:
    assert list(config_for(*argv).parsed_endpoints) == endpoints


def test_daphne_spellings_and_values() -> None:
    config = config_for(
        "--websocket_timeout", "-1",
        "--websocket_connect_timeout", "7",
        "--ping-interval", "5",
        "--ping-timeout", "6",
        "-t", "60",
        "--application-close-timeout", "3",
        "--root-path", "/app",
        "--proxy-headers",
        "--proxy-headers-host", "X-Real-IP",
        "--proxy-headers-port", "X-Real-Port",
        "--websocket-max-message-size", "100",
        "--websocket-max-frame-size", "50",
        "-s", "edge",
    )  # fmt: skip
    assert config.websocket_timeout is None
    assert config.websocket_connect_timeout == 7
    assert (config.ping_interval, config.ping_timeout) == (5, 6)
    assert config.http_timeout == 60
    assert config.application_close_timeout == 3
    assert config.root_path == "/app"
    assert config.proxy_headers is True
    assert config.proxy_header_names[:2] == (b"x-real-ip", b"x-real-port")
    assert (config.websocket_max_message_size, config.websocket_max_frame_size) == (100, 50)
    assert config.server_name == "edge"
    assert config_for("--websocket-timeout", "30").websocket_timeout == 30
    assert config_for("--no-server-name").server_name is None


def test_beyond_daphne() -> None:
    config = config_for(
        "--forwarded-allow-ips", "10.0.0.0/8, 127.0.0.1",
        "--lifespan", "on",
        "--loop", "asyncio",
        "--http", "h11",
        "--shutdown-timeout", "4",
        "--header-timeout", "3",
        "--keep-alive-timeout", "2",
        "--max-request-line", "1000",
        "--max-header-size", "2000",
        "--max-header-count", "10",
    )  # fmt: skip
    assert config.forwarded_allow_ips == ("10.0.0.0/8", "127.0.0.1")
    assert "10.9.8.7" in config.trusted_peers
    assert config.lifespan == "on"
    assert config.loop == "asyncio"
    assert config.http == "h11"
    assert config.shutdown_timeout == 4
    assert (config.header_timeout, config.keep_alive_timeout) == (3, 2)
    assert (config.max_request_line_size, config.max_header_size, config.max_header_count) == (
        1000,
        2000,
        10,
    )


def test_flow_control_flags() -> None:
    defaults = config_for()
    assert (defaults.write_timeout, defaults.websocket_max_fragments) == (60, 4096)
    config = config_for("--write-timeout", "2.5", "--websocket-max-fragments", "10")
    assert (config.write_timeout, config.websocket_max_fragments) == (2.5, 10)
    with pytest.raises(ConfigurationError, match="write_timeout"):
        config_for("--write-timeout", "0")


def test_request_body_flags() -> None:
    defaults = config_for()
    assert (defaults.body_timeout, defaults.limit_request_body) == (30, None)
    config = config_for("--body-timeout", "2.5", "--limit-request-body", "1048576")
    assert (config.body_timeout, config.limit_request_body) == (2.5, 1048576)
    assert config_for("--limit-request-body", "0").limit_request_body == 0
    with pytest.raises(ConfigurationError, match="body_timeout"):
        config_for("--body-timeout", "0")
    with pytest.raises(ConfigurationError, match="limit_request_body"):
        config_for("--limit-request-body", "-1")


def test_tls_http2_and_compression_flags() -> None:
    defaults = config_for()
    assert (defaults.http2, defaults.http2_max_concurrent_streams) == ("auto", 100)
    assert defaults.ws_per_message_deflate is True
    assert defaults.parsed_endpoints[0].tls is None
    config = config_for(
        "-b", "0.0.0.0", "-p", "8443",
        "-e", "ssl:9443:privateKey=other.pem",
        "--ssl-certfile", "crt.pem",
        "--ssl-keyfile", "key.pem",
        "--ssl-keyfile-password", "pw",
        "--ssl-ca-certs", "ca.pem",
        "--ssl-cert-reqs", "1",
        "--ssl-ciphers", "ECDHE+AESGCM",
        "--http2", "off",
        "--http2-max-concurrent-streams", "16",
        "--ws-per-message-deflate", "off",
    )  # fmt: skip
    flags, own = config.parsed_endpoints
    assert flags.tls is not None
    assert own.tls is not None
    assert (flags.tls.certfile, flags.tls.keyfile, flags.tls.password) == (
        "crt.pem",
        "key.pem",
        "pw",
    )
    assert (flags.tls.ca_certs, flags.tls.cert_reqs, flags.tls.ciphers) == (
        "ca.pem",
        1,
        "ECDHE+AESGCM",
    )
    assert own.tls.certfile == "other.pem"
    assert (config.http2, config.http2_max_concurrent_streams) == ("off", 16)
    assert config.ws_per_message_deflate is False
    assert config_for("--ws-per-message-deflate", "true").ws_per_message_deflate is True
    with pytest.raises(ConfigurationError, match="ssl_keyfile needs ssl_certfile"):
        config_for("--ssl-keyfile", "key.pem")


def test_proxy_header_names_need_proxy_headers() -> None:
    with pytest.raises(ConfigurationError, match="need --proxy-headers"):
        config_for("--proxy-headers-host", "X-Real-IP")


def test_bad_flag_values_exit_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--ping-interval", "0", "app:application"])
    assert info.value.code == 2
    assert "ping_interval must be > 0" in capsys.readouterr().err


def test_import_application(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mysite_asgi.py").write_text(
        "class Holder:\n"
        "    async def app(self, scope, receive, send): pass\n"
        "holder = Holder()\n"
        "not_callable = 1\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_application("mysite_asgi:holder.app").__name__ == "app"
    with pytest.raises(ConfigurationError, match=r"path\.to\.module:instance\.path"):
        import_application("mysite_asgi.holder")
    with pytest.raises(ConfigurationError, match="no attribute"):
        import_application("mysite_asgi:missing")
    with pytest.raises(ConfigurationError, match="not callable"):
        import_application("mysite_asgi:not_callable")
    with pytest.raises(ConfigurationError, match="Cannot import module"):
        import_application("no_such_module_here:app")


# -- the process ---------------------------------------------------------------------------------

APP = textwrap.dedent(
    """
    import asyncio, os

    async def application(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            with open(os.environ["MARKER"], "w") as marker:
                marker.write("lifespan shutdown ran")
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] == "websocket":
            await receive()
            if scope["path"] == "/reject":
                await send({"type": "websocket.close"})
                return
            await send({"type": "websocket.accept"})
            while (await receive())["type"] != "websocket.disconnect":
                pass
            return
        if scope["path"] == "/slow":
            await asyncio.sleep(1)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"served " + scope["path"].encode()})
    """
)


class Process:
    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.port = 0

    def read_line(self, timeout: float = 10) -> str:
        assert self.popen.stdout is not None
        ready, _, _ = select.select([self.popen.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError("the server printed nothing")
        return self.popen.stdout.readline().decode()


@pytest.fixture
def run_cli(tmp_path: Path) -> Iterator[Any]:
    (tmp_path / "cliapp.py").write_text(APP)
    started: list[Process] = []

    def start(*argv: str, env: dict[str, str] | None = None) -> Process:
        environment = dict(os.environ, MARKER=str(tmp_path / "marker"), **(env or {}))
        popen = subprocess.Popen(
            [sys.executable, "-m", "channels_server", *argv],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
        )
        process = Process(popen)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.popen.poll() is None:
            process.popen.kill()
        process.popen.wait()
        for stream in (process.popen.stdout, process.popen.stderr):
            if stream is not None:
                stream.close()


def get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "channels_server", "--version"],
        capture_output=True,
        check=True,
        timeout=30,
    )
    assert result.stdout.decode().strip() == f"channels-server {__version__}"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_port_zero_serves_and_a_signal_shuts_down_gracefully(
    run_cli: Any, tmp_path: Path, signum: int
) -> None:
    process = run_cli(
        "-p",
        "0",
        "--lifespan",
        "on",
        "--access-log",
        str(tmp_path / "access.log"),
        "cliapp:application",
    )
    line = process.read_line()
    match = re.fullmatch(r"Listening on http://127\.0\.0\.1:(\d+)\n", line)
    assert match, line
    port = int(match.group(1))
    assert get(port, "/hello").endswith(b"served /hello")
    # A request in flight when the signal arrives still gets its response.
    slow = socket.create_connection(("127.0.0.1", port), timeout=10)
    slow.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
    process.popen.send_signal(signum)
    response = b""
    while chunk := slow.recv(65536):
        response += chunk
    slow.close()
    assert response.endswith(b"served /slow")
    assert b"connection: close" in response
    assert process.popen.wait(timeout=15) == 0
    assert (tmp_path / "marker").read_text() == "lifespan shutdown ran"
    access = (tmp_path / "access.log").read_text()
    assert '"GET /hello" 200 13\n' in access
    assert '"GET /slow" 200 12\n' in access


def test_unix_socket_from_the_command_line(run_cli: Any, tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    process = run_cli("-u", path, "-v", "2", "cliapp:application")
    deadline = time.monotonic() + 10
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(b"GET /unix HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.endswith(b"served /unix")
    process.popen.send_signal(signal.SIGTERM)
    assert process.popen.wait(timeout=15) == 0


def test_bad_application_path_exits_1(run_cli: Any) -> None:
    process = run_cli("-p", "0", "nowhere_module:application")
    assert process.popen.wait(timeout=15) == 1
    assert process.popen.stderr is not None
    assert "Cannot import module 'nowhere_module'" in process.popen.stderr.read().decode()


def test_bad_asgi_threads_exits_1(run_cli: Any) -> None:
    process = run_cli("-p", "0", "cliapp:application", env={"ASGI_THREADS": "many"})
    assert process.popen.wait(timeout=15) == 1
    assert process.popen.stderr is not None
    assert "ASGI_THREADS must be a positive integer" in process.popen.stderr.read().decode()


def test_asgi_threads_sizes_the_default_executor(tmp_path: Path) -> None:
    (tmp_path / "threadapp.py").write_text(
        textwrap.dedent(
            """
            import asyncio

            async def application(scope, receive, send):
                loop = asyncio.get_running_loop()
                names = await asyncio.gather(*[
                    loop.run_in_executor(None, lambda: __import__("time").sleep(0.2)
                                         or __import__("threading").current_thread().name)
                    for _ in range(6)
                ])
                body = str(len(set(names))).encode()
                await send({"type": "http.response.start", "status": 200})
                await send({"type": "http.response.body", "body": body})
            """
        )
    )
    popen = subprocess.Popen(
        [sys.executable, "-m", "channels_server", "-p", "0", "threadapp:application"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, ASGI_THREADS="2"),
    )
    try:
        process = Process(popen)
        port = int(process.read_line().rsplit(":", 1)[1])
        assert get(port, "/").endswith(b"\r\n\r\n2")
    finally:
        popen.send_signal(signal.SIGTERM)
        popen.wait(timeout=15)
        assert popen.stdout is not None
        assert popen.stderr is not None
        popen.stdout.close()
        popen.stderr.close()


# -- the access log, as daphne writes it -----------------------------------------------------------

ACCESS_LINE = re.compile(
    r'(?P<client>\S+) - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d\] "(?P<request>[^"]*)" '
    r"(?P<status>\S+) (?P<size>\S+)"
)


def read_lines_until(process: Process, count: int, timeout: float = 10) -> list[str]:
    """*count* more lines of the server's standard output (read from the pipe itself)."""
    assert process.popen.stdout is not None
    fd = process.popen.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while data.count(b"\n") < count:
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(remaining, 0))
        if not ready:
            raise TimeoutError(f"{count} lines expected, got {data!r}")
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data.decode().splitlines()


def websocket_session(port: int, path: str) -> bytes:
    """Open a WebSocket on a raw socket, then drop it; the status line of the handshake."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                break
            head += chunk
    return head.split(b"\r\n", 1)[0]


def test_the_access_log_goes_to_standard_output_by_default(run_cli: Any) -> None:
    process = run_cli("-p", "0", "--proxy-headers", "cliapp:application")
    port = int(process.read_line().rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # From 127.0.0.1, a trusted peer: the forwarded client is the one logged.
        sock.sendall(
            b"GET /hello?x=1 HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.9\r\n"
            b"X-Forwarded-Port: 4711\r\nConnection: close\r\n\r\n"
        )
        while sock.recv(65536):
            pass
    first = read_lines_until(process, 1)
    assert websocket_session(port, "/ws/chat/") == b"HTTP/1.1 101 Switching Protocols"
    assert websocket_session(port, "/reject") == b"HTTP/1.1 403 Forbidden"
    lines = first + read_lines_until(process, 5)
    parsed = [ACCESS_LINE.fullmatch(line) for line in lines]
    assert all(parsed), lines
    fields = [
        (m["client"].rsplit(":", 1)[0], m["request"], m["status"], m["size"]) for m in parsed if m
    ]
    assert fields[0] == ("203.0.113.9", "GET /hello?x=1", "200", "13")
    # The two WebSocket connections' lines may interleave; each is in order.
    assert [field for field in fields if "/ws/chat/" in field[1]] == [
        ("127.0.0.1", "WSCONNECTING /ws/chat/", "-", "-"),
        ("127.0.0.1", "WSCONNECT /ws/chat/", "-", "-"),
        ("127.0.0.1", "WSDISCONNECT /ws/chat/", "-", "-"),
    ]
    assert [field for field in fields if "/reject" in field[1]] == [
        ("127.0.0.1", "WSCONNECTING /reject", "-", "-"),
        ("127.0.0.1", "WSREJECT /reject", "-", "-"),
    ]
    assert lines[0].startswith("203.0.113.9:4711 - - [")
    process.popen.send_signal(signal.SIGTERM)
    assert process.popen.wait(timeout=15) == 0


@pytest.mark.parametrize(
    ("argv", "logged"),
    [(("-v", "0"), False), (("-v", "0", "--access-log", "-"), True), (("-v", "2"), True)],
)
def test_verbosity_0_turns_the_default_access_log_off(
    run_cli: Any, argv: tuple[str, ...], logged: bool
) -> None:
    process = run_cli("-p", "0", *argv, "cliapp:application")
    port = int(process.read_line().rsplit(":", 1)[1])
    assert get(port, "/quiet").endswith(b"served /quiet")
    process.popen.send_signal(signal.SIGTERM)
    assert process.popen.wait(timeout=15) == 0
    assert process.popen.stdout is not None
    rest = process.popen.stdout.read().decode()
    if logged:
        assert ACCESS_LINE.fullmatch(rest.strip()), rest
        assert '"GET /quiet" 200 13' in rest
    else:
        assert rest == ""
