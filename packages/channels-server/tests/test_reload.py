"""``--reload``: the file filter, the polling watcher, and the real command restarting on edits."""

from __future__ import annotations

import importlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from channels_server.supervisor.watch import (
    DEFAULT_EXCLUDES,
    FORCE_POLLING_VARIABLE,
    FileFilter,
    PollingWatcher,
    WatchfilesWatcher,
    make_watcher,
)

# conftest.py has loaded the support package under this name.
_polling: ModuleType = importlib.import_module("channels_server_test_support.polling")
TIMEOUT = _polling.TIMEOUT
wait_for = _polling.wait_for


# -- which files count --------------------------------------------------------------------------


def test_default_filter(tmp_path: Path) -> None:
    wanted = FileFilter.from_options([str(tmp_path)], [], []).wanted_path
    assert wanted(str(tmp_path / "app.py"))
    assert wanted(str(tmp_path / "pkg" / "views.py"))
    assert not wanted(str(tmp_path / "app.pyc"))
    assert not wanted(str(tmp_path / "notes.txt"))
    assert not wanted(str(tmp_path / "app.py~"))
    assert not wanted(str(tmp_path / ".app.py.swp"))
    for folder in (".git", ".venv", "__pycache__", "node_modules"):
        assert not wanted(str(tmp_path / folder / "x.py")), folder
    assert not wanted(str(tmp_path / "pkg" / "__pycache__" / "views.py"))
    assert not wanted("/elsewhere/app.py")


def test_include_and_exclude_patterns(tmp_path: Path) -> None:
    file_filter = FileFilter.from_options(
        [str(tmp_path)],
        ["*.html", ".env", "conf/*.toml"],
        ["migrations", "settings_local.py", "templates/old/*"],
    )
    wanted = file_filter.wanted_path
    assert wanted(str(tmp_path / "templates" / "index.html"))
    # The user's excludes win over every include.
    assert not wanted(str(tmp_path / "templates" / "old" / "index.html"))
    # A file the user includes wins over the default excludes; folders stay excluded.
    assert wanted(str(tmp_path / ".env"))
    assert not wanted(str(tmp_path / ".git" / ".env"))
    assert not wanted(str(tmp_path / ".git" / "hooks.py"))
    assert wanted(str(tmp_path / "conf" / "app.toml"))
    assert not wanted(str(tmp_path / "other" / "app.toml"))
    assert not wanted(str(tmp_path / "app" / "migrations" / "0001_initial.py"))
    assert not wanted(str(tmp_path / "settings_local.py"))
    assert wanted(str(tmp_path / "settings.py"))
    assert file_filter.default_excludes == DEFAULT_EXCLUDES


def test_polling_sees_edits_additions_and_removals(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("one = 1\n")
    (tmp_path / ".git").mkdir()
    watcher = PollingWatcher(FileFilter.from_options([str(tmp_path)], [], []), 0.05, 0.02)
    stop = threading.Event()
    # Ends the iteration (and so the test) if a change is never seen.
    timer = threading.Timer(TIMEOUT, stop.set)
    timer.start()
    try:
        changes = watcher.changes(stop)  # The first snapshot is taken here.
        (tmp_path / ".git" / "ignored.py").write_text("x")
        (tmp_path / "app.py").write_text("one = 'changed'\n")
        (tmp_path / "new.py").write_text("")
        assert next(changes) == {str(tmp_path / "app.py"), str(tmp_path / "new.py")}
        (tmp_path / "new.py").unlink()
        assert next(changes) == {str(tmp_path / "new.py")}
        stop.set()
        assert list(changes) == []
    finally:
        timer.cancel()


def test_make_watcher(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    file_filter = FileFilter.from_options([str(tmp_path)], [], [])
    monkeypatch.delenv(FORCE_POLLING_VARIABLE, raising=False)
    assert isinstance(make_watcher(file_filter, 0.1), WatchfilesWatcher)
    monkeypatch.setenv(FORCE_POLLING_VARIABLE, "1")
    assert isinstance(make_watcher(file_filter, 0.1), PollingWatcher)
    monkeypatch.setenv(FORCE_POLLING_VARIABLE, "0")
    monkeypatch.setitem(sys.modules, "watchfiles", None)  # as if not installed
    assert isinstance(make_watcher(file_filter, 0.1), PollingWatcher)


# -- the command ----------------------------------------------------------------------------------


def app_source(text: str) -> str:
    return (
        "import os\n"
        "async def application(scope, receive, send):\n"
        "    await send({'type': 'http.response.start', 'status': 200})\n"
        f"    await send({{'type': 'http.response.body', 'body': b'{text} %d' % os.getpid()}})\n"
    )


def edit_until_served(port: int, path: Path, text: str) -> None:
    """Write the application answering *text* until it is served.

    The watcher starts beside the first server process, so an edit made
    the moment that server is ready may come before it watches.
    """

    def served() -> bool:
        path.write_text(app_source(text))
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if get(port).startswith(text.encode() + b" "):
                return True
            time.sleep(0.05)
        return False

    wait_for(served, what=f"{text!r} to be served")


def get(port: int, timeout: float = TIMEOUT) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[1]


@pytest.fixture(params=["watchfiles", "polling"])
def reloading(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "reloadapp.py").write_text(app_source("one"))
    log = tmp_path / "server.log"
    env = dict(os.environ)
    env.pop(FORCE_POLLING_VARIABLE, None)
    if request.param == "polling":
        env[FORCE_POLLING_VARIABLE] = "1"
    with log.open("wb") as log_file:
        popen = subprocess.Popen(
            [
                sys.executable, "-m", "channels_server", "--reload", "--reload-delay", "0.1",
                "-p", "0", "-v", "2", "--access-log", str(tmp_path / "access.log"),
                "reloadapp:application",
            ],
            cwd=project, stdout=subprocess.PIPE, stderr=log_file, env=env,
        )  # fmt: skip
    try:
        assert popen.stdout is not None
        ready, _, _ = select.select([popen.stdout], [], [], TIMEOUT)
        assert ready, log.read_text()
        line = popen.stdout.readline().decode()
        match = re.fullmatch(r"Listening on http://127\.0\.0\.1:(\d+)\n", line)
        assert match, line
        yield project, int(match.group(1)), popen, log
    finally:
        if popen.poll() is None:
            popen.kill()
        popen.wait()
        assert popen.stdout is not None
        popen.stdout.close()


def test_an_edit_is_served_and_a_syntax_error_waits_for_the_fix(reloading: Any) -> None:
    project, port, popen, log = reloading
    first = get(port)
    assert first.startswith(b"one ")
    edit_until_served(port, project / "reloadapp.py", "two")
    restarts = log.read_text().count("restarting the server")
    (project / "reloadapp.py").write_text("async def application(:\n")
    wait_for(
        lambda: (
            "SyntaxError" in log.read_text() and "waiting for a file to change" in log.read_text()
        ),
        what="the syntax error to be logged",
    )
    assert popen.poll() is None
    (project / "reloadapp.py").write_text(app_source("three"))
    # Connections wait in the listen queue until the fixed server is up.
    assert get(port).startswith(b"three ")
    text = log.read_text()
    assert text.count("restarting the server") >= restarts + 2
    assert "Changed: reloadapp.py; restarting the server" in text
    popen.send_signal(signal.SIGINT)
    assert popen.wait(timeout=TIMEOUT) == 0


def test_files_not_watched_do_not_restart(reloading: Any) -> None:
    project, port, popen, log = reloading
    edit_until_served(port, project / "reloadapp.py", "two")  # The watcher is watching.
    (project / "notes.txt").write_text("not python")
    (project / "__pycache__").mkdir()
    (project / "__pycache__" / "x.py").write_text("")
    edit_until_served(port, project / "reloadapp.py", "three")
    changed = re.findall(r"Changed: (.*); restarting the server", log.read_text())
    assert changed
    assert all(line == "reloadapp.py" for line in changed), changed
    popen.send_signal(signal.SIGTERM)
    assert popen.wait(timeout=TIMEOUT) == 0
