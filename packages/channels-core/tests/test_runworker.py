"""``manage.py runworker``: argument handling, a real run in-process, and signals in a process."""

from __future__ import annotations

import asyncio
import importlib
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from channels.layers import get_channel_layer
from channels.management.commands.runworker import Command
from channels.worker import Worker

IN_MEMORY = {"BACKEND": "channels.layers.InMemoryChannelLayer"}

# The ASGI module the command loads: a channel router whose consumers report
# to a thread-safe queue, so a test in another thread can see them work.
ASGI_MODULE = """
import queue
import threading

from channels.consumer import AsyncConsumer, SyncConsumer
from channels.routing import ChannelNameRouter, ProtocolTypeRouter

results = queue.Queue()


class Thumbnailer(AsyncConsumer):
    async def thumbnail_make(self, message):
        results.put(("thumbnail", message["size"] // 2))


class Mailer(SyncConsumer):
    def email_send(self, message):
        results.put(("email", message["to"], threading.get_ident()))


application = ProtocolTypeRouter(
    {
        "channel": ChannelNameRouter(
            {"thumbnails": Thumbnailer.as_asgi(), "email": Mailer.as_asgi()}
        )
    }
)
"""


@pytest.fixture
def asgi_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any) -> Any:
    """An importable ASGI module, named in ASGI_APPLICATION; the in-memory layer as default."""
    name = f"worker_asgi_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(ASGI_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.ASGI_APPLICATION = f"{name}.application"
    settings.CHANNEL_LAYERS = {"default": IN_MEMORY, "work": IN_MEMORY}
    return importlib.import_module(name)


class RecordingWorker(Worker):
    """Tells the test which loop it runs on, so the test can talk to it from outside."""

    instances: list[RecordingWorker] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.instances.append(self)

    async def handle(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.started.set()
        await super().handle()


class RecordingCommand(Command):
    worker_class = RecordingWorker


# -- arguments ------------------------------------------------------------------------


def test_an_unknown_layer_alias_is_a_command_error(asgi_module: Any) -> None:
    with pytest.raises(CommandError, match="'nope'"):
        call_command("runworker", "thumbnails", layer="nope")


def test_channels_are_required(asgi_module: Any) -> None:
    with pytest.raises(CommandError, match="channels"):
        call_command("runworker")


def test_an_invalid_channel_name_is_a_command_error(asgi_module: Any) -> None:
    with pytest.raises(CommandError, match="'not valid'"):
        call_command("runworker", "thumbnails", "not valid")


def test_a_missing_asgi_application_is_reported(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {"default": IN_MEMORY}
    settings.ASGI_APPLICATION = "no_such_module_anywhere.application"
    with pytest.raises(ImproperlyConfigured, match="no_such_module_anywhere"):
        call_command("runworker", "thumbnails")


# -- a real run, in a thread of this process ------------------------------------------------


def run_command(*args: str, **options: Any) -> tuple[threading.Thread, RecordingWorker, StringIO]:
    RecordingWorker.instances = []
    out = StringIO()
    thread = threading.Thread(
        target=call_command, args=(RecordingCommand(), *args), kwargs={"stdout": out, **options}
    )
    thread.start()
    deadline = time.monotonic() + 5
    while not RecordingWorker.instances and time.monotonic() < deadline:
        time.sleep(0.005)
    (worker,) = RecordingWorker.instances
    assert worker.started.wait(5)
    return thread, worker, out


def in_worker_loop(worker: RecordingWorker, coroutine: Any) -> Any:
    """Run *coroutine* on the worker's loop (the in-memory layer belongs to one loop at a time)."""
    assert worker.loop is not None
    return asyncio.run_coroutine_threadsafe(coroutine, worker.loop).result(5)


def stop(thread: threading.Thread, worker: RecordingWorker) -> None:
    assert worker.loop is not None
    worker.loop.call_soon_threadsafe(worker.stop)
    thread.join(5)
    assert not thread.is_alive()


def test_runworker_serves_events_sent_to_its_channels(asgi_module: Any) -> None:
    thread, worker, out = run_command("thumbnails", "email")
    try:
        layer = get_channel_layer()
        assert worker.channel_layer is layer
        assert worker.channels == ["thumbnails", "email"]
        assert layer is not None
        in_worker_loop(worker, layer.send("thumbnails", {"type": "thumbnail.make", "size": 64}))
        in_worker_loop(worker, layer.send("email", {"type": "email.send", "to": "ada"}))
        assert asgi_module.results.get(timeout=5) == ("thumbnail", 32)
        kind, to, thread_id = asgi_module.results.get(timeout=5)
        assert (kind, to) == ("email", "ada")
        assert thread_id not in (threading.get_ident(), thread.ident)
    finally:
        stop(thread, worker)
    assert "Worker listening on thumbnails, email (layer 'default')" in out.getvalue()


def test_runworker_layer_option_picks_the_alias(asgi_module: Any) -> None:
    thread, worker, out = run_command("thumbnails", layer="work", verbosity=0)
    try:
        work = get_channel_layer("work")
        assert worker.channel_layer is work
        assert work is not get_channel_layer()
        assert work is not None
        in_worker_loop(worker, work.send("thumbnails", {"type": "thumbnail.make", "size": 2}))
        assert asgi_module.results.get(timeout=5) == ("thumbnail", 1)
    finally:
        stop(thread, worker)
    assert out.getvalue() == ""


# -- a real process: runworker stops cleanly on a signal ------------------------------------


SETTINGS_MODULE = """
SECRET_KEY = "runworker-test"
INSTALLED_APPS = ["channels"]
DATABASES = {{}}
CHANNEL_LAYERS = {{"default": {{"BACKEND": "channels.layers.InMemoryChannelLayer"}}}}
ASGI_APPLICATION = "{asgi}.application"
USE_TZ = True
"""


def wait_for_signal_handler(pid: int, signum: int) -> None:
    """Wait until process *pid* catches *signum* (Linux: the SigCgt mask in /proc)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:") and int(line.split()[1], 16) & (1 << (signum - 1)):
                return
        time.sleep(0.01)
    pytest.fail(f"process {pid} never installed a handler for signal {signum}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/status")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_runworker_process_exits_cleanly_on_a_signal(tmp_path: Path, signum: int) -> None:
    suffix = uuid.uuid4().hex
    (tmp_path / f"asgi_{suffix}.py").write_text(ASGI_MODULE)
    (tmp_path / f"settings_{suffix}.py").write_text(
        textwrap.dedent(SETTINGS_MODULE.format(asgi=f"asgi_{suffix}"))
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "DJANGO_SETTINGS_MODULE": f"settings_{suffix}",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "runworker", "thumbnails", "email"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 10)
        assert ready, "runworker printed nothing in 10 seconds"
        line = process.stdout.readline()
        if "Worker listening on thumbnails, email" not in line:
            process.kill()
            assert process.stderr is not None
            pytest.fail(f"runworker did not start: {line!r} {process.stderr.read()}")
        # The line is printed just before the loop starts: wait until the process
        # has its handler for SIGTERM (asyncio installs SIGINT's in the same step).
        wait_for_signal_handler(process.pid, signal.SIGTERM)
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_stop_is_safe_before_run_and_run_returns_after_stop(settings: Any) -> None:
    """Worker.run() with a stop() already requested returns at once."""
    settings.CHANNEL_LAYERS = {"default": IN_MEMORY}
    layer = get_channel_layer()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()

    worker = Worker(app, ["thumbnails"], layer)
    worker.stop()
    started = time.monotonic()
    worker.run()
    assert time.monotonic() - started < 2
