"""``manage.py runserver`` on channels-server, in a real Django project and process."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SETTINGS = """
from pathlib import Path
BASE = Path(__file__).resolve().parent
SECRET_KEY = "runserver-test"
DEBUG = {debug}
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "channels_server",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "channels",
]
DATABASES = {{
    "default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": str(BASE / "db.sqlite3")}}
}}
ROOT_URLCONF = "site_urls"
STATIC_URL = "/static/"
STATICFILES_DIRS = [str(BASE / "assets")]
{asgi_setting}
USE_TZ = True
"""

URLS = """
from django.http import HttpResponse
from django.urls import path

def hello(request):
    return HttpResponse("hello from runserver " + request.path)

urlpatterns = [path("hello/", hello)]
"""

ASGI = """
import django
django.setup()
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import path

class Echo(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data="echo " + text_data)

application = ProtocolTypeRouter({
    "http": get_asgi_application(),
    "websocket": URLRouter([path("ws/", Echo.as_asgi())]),
})
"""


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.processes: list[subprocess.Popen[bytes]] = []

    def write(self, *, debug: bool = True, asgi: bool = True) -> None:
        asgi_setting = 'ASGI_APPLICATION = "site_asgi.application"' if asgi else ""
        (self.root / "site_settings.py").write_text(
            SETTINGS.format(debug=debug, asgi_setting=asgi_setting)
        )
        (self.root / "site_urls.py").write_text(URLS)
        (self.root / "site_asgi.py").write_text(ASGI)
        (self.root / "assets").mkdir(exist_ok=True)
        (self.root / "assets" / "app.css").write_text("body { color: red }\n")

    def runserver(self, *argv: str) -> subprocess.Popen[bytes]:
        environment = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="site_settings",
            PYTHONPATH=os.pathsep.join([str(self.root), os.environ.get("PYTHONPATH", "")]),
            PYTHONUNBUFFERED="1",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "django", "runserver", *argv],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
        )
        self.processes.append(process)
        return process


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    site = Project(tmp_path)
    yield site
    for process in site.processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


_seen: dict[int, str] = {}


def read_until(
    process: subprocess.Popen[bytes], pattern: str, timeout: float = 30
) -> re.Match[str]:
    """Wait for *pattern* in the output not yet matched (read unbuffered, so select() is right)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    seen = _seen.get(process.pid, "")
    while True:
        match = re.search(pattern, seen)
        if match:
            _seen[process.pid] = seen[match.end() :]
            return match
        if time.monotonic() > deadline:
            break
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            data = os.read(fd, 65536)
            if not data:
                break
            seen += data.decode()
    raise AssertionError(f"{pattern!r} not seen in output:\n{seen}")


def request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def get(port: int, path: str) -> bytes:
    return request(
        port, f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
    )


def websocket_echo(port: int) -> bytes:
    from wsproto.connection import Connection, ConnectionType
    from wsproto.events import TextMessage

    client = Connection(ConnectionType.CLIENT)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"GET /ws/ HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Origin: http://localhost\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        sock.sendall(client.send(TextMessage(data="hi")))
        while True:
            client.receive_data(sock.recv(65536))
            events = list(client.events())
            if events:
                return events[0].data.encode()  # type: ignore[no-any-return]


def test_runserver_serves_http_websocket_and_static_files(project: Project) -> None:
    project.write(debug=True)
    process = project.runserver("127.0.0.1:0", "--noreload")
    banner = read_until(
        process, r"Starting ASGI/channels-server development server at http://127\.0\.0\.1:(\d+)/"
    )
    port = int(banner.group(1))
    assert get(port, "/hello/").endswith(b"hello from runserver /hello/")
    assert get(port, "/static/app.css").endswith(b"body { color: red }\n")
    assert websocket_echo(port) == b"echo hi"
    # Requests are logged through Django's django.server logger.
    read_until(process, r'"GET /hello/ HTTP/1\.1" 200')
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=15) == 0


def test_banner_names_the_versions(project: Project) -> None:
    import django

    import channels
    from channels_server import __version__

    project.write()
    process = project.runserver("127.0.0.1:0", "--noreload")
    read_until(
        process, re.escape(f"Django version {django.get_version()}, using settings 'site_settings'")
    )
    read_until(
        process, re.escape(f"Channels {channels.__version__}, channels-server {__version__}")
    )
    read_until(process, r"Quit the server with CONTROL-C\.")


def test_static_files_are_not_served_without_debug(project: Project) -> None:
    project.write(debug=False)
    process = project.runserver("127.0.0.1:0", "--noreload")
    port = int(read_until(process, r"server at http://127\.0\.0\.1:(\d+)/").group(1))
    assert get(port, "/static/app.css").startswith(b"HTTP/1.1 404")
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=15) == 0


def test_insecure_serves_static_files_without_debug(project: Project) -> None:
    project.write(debug=False)
    process = project.runserver("127.0.0.1:0", "--noreload", "--insecure")
    port = int(read_until(process, r"server at http://127\.0\.0\.1:(\d+)/").group(1))
    assert get(port, "/static/app.css").endswith(b"body { color: red }\n")


def test_autoreload_restarts_the_server(project: Project) -> None:
    project.write()
    process = project.runserver("127.0.0.1:0")
    port = int(read_until(process, r"server at http://127\.0\.0\.1:(\d+)/").group(1))
    assert get(port, "/hello/").endswith(b"/hello/")
    time.sleep(1.2)
    urls = project.root / "site_urls.py"
    urls.write_text(URLS.replace("hello from runserver", "reloaded"))
    read_until(process, r"site_urls\.py changed, reloading")
    port = int(read_until(process, r"server at http://127\.0\.0\.1:(\d+)/").group(1))
    assert get(port, "/hello/").endswith(b"reloaded /hello/")


def test_missing_asgi_application(project: Project) -> None:
    project.write(asgi=False)
    process = project.runserver("127.0.0.1:0", "--noreload")
    read_until(process, r"You have not set ASGI_APPLICATION")
    assert process.wait(timeout=15) != 0


def test_port_in_use(project: Project) -> None:
    project.write()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = project.runserver(f"127.0.0.1:{port}", "--noreload")
        read_until(process, r"Error: That port is already in use\.")
        assert process.wait(timeout=15) == 1


def test_noasgi_runs_django_wsgi_server(project: Project, monkeypatch: Any) -> None:
    project.write()
    process = project.runserver("127.0.0.1:0", "--noreload", "--noasgi")
    read_until(process, r"Starting development server at http://127\.0\.0\.1:\d+/")
