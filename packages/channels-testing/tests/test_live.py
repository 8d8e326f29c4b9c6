"""ChannelsLiveServerTestCase's hooks, used the way projects written for Channels use them.

A small Django project and a test module of live-server test classes are
written into a temporary directory and run by pytest (with pytest-django) in
a subprocess, so that each class starts and stops a real channels-server.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest

pytest_plugins = ["pytester"]

SETTINGS = """
STATICFILES_DIRS = [HERE / "static"]
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
"""

ASGI = """
application = get_asgi_application()
"""

TESTS = '''
import threading
import urllib.error
import urllib.request

from django.contrib.auth.models import User
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from channels.testing import ChannelsLiveServerTestCase
from channels.testing.live import ChannelsServerProcess, set_database_connection


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        error.close()
        return error.code, b""


class Defaults(ChannelsLiveServerTestCase):
    def test_static_files_are_served_and_the_urls_name_the_port(self):
        assert fetch(self.live_server_url + "/static/hello.txt") == (200, b"static hello\\n")
        assert self.live_server_ws_url == "ws" + self.live_server_url[4:]
        assert self.live_server_url == f"http://localhost:{self._server_process.port.value}"
        assert type(self._server_process) is ChannelsServerProcess
        assert self.static_wrapper is ASGIStaticFilesHandler

    def test_the_server_sees_the_test_database(self):
        User.objects.create(username="ada")
        assert fetch(self.live_server_url + "/users/") == (200, b"ada")


class NoStatic(ChannelsLiveServerTestCase):
    serve_static = False

    def test_static_files_are_not_served(self):
        assert fetch(self.live_server_url + "/static/hello.txt")[0] == 404


wrapped = []


class CountingStaticFiles(ASGIStaticFilesHandler):
    async def __call__(self, scope, receive, send):
        wrapped.append(scope["path"])
        return await super().__call__(scope, receive, send)


class OwnStaticWrapper(ChannelsLiveServerTestCase):
    static_wrapper = CountingStaticFiles

    def test_the_wrapper_serves(self):
        del wrapped[:]
        assert fetch(self.live_server_url + "/static/hello.txt") == (200, b"static hello\\n")
        assert wrapped == ["/static/hello.txt"]


class OwnStaticWrapperNotServing(ChannelsLiveServerTestCase):
    serve_static = False
    static_wrapper = CountingStaticFiles

    def test_serve_static_false_leaves_the_wrapper_out(self):
        del wrapped[:]
        assert fetch(self.live_server_url + "/static/hello.txt")[0] == 404
        assert wrapped == []


made = []


class RecordingProcess(ChannelsServerProcess):
    """A process class of a project's own, as with Daphne's DaphneProcess."""

    def __init__(self, host, get_application, kwargs=None, setup=None, teardown=None):
        made.append((host, kwargs, setup))
        super().__init__(
            host,
            get_application,
            kwargs={"server_name": "recorded"},
            setup=self.record_setup,
            teardown=teardown,
        )
        self.setup_ran_in = None
        self.original_setup = setup

    def record_setup(self):
        self.setup_ran_in = threading.current_thread()
        self.original_setup()


class OwnProcess(ChannelsLiveServerTestCase):
    ProtocolServerProcess = RecordingProcess

    def test_the_class_is_used_with_channels_arguments(self):
        assert made == [("localhost", None, set_database_connection)]
        process = self._server_process
        assert type(process) is RecordingProcess
        assert process.setup_ran_in is process
        with urllib.request.urlopen(self.live_server_url + "/users/", timeout=10) as response:
            assert response.headers["Server"] == "recorded"


class FailingProcess(ChannelsServerProcess):
    def __init__(self, host, get_application, **kwargs):
        def broken():
            raise LookupError("no application here")

        super().__init__(host, broken, **kwargs)


class ServerThatCannotStart(ChannelsLiveServerTestCase):
    ProtocolServerProcess = FailingProcess

    def test_never_runs(self):
        raise AssertionError("setUpClass should have failed")
'''


@pytest.fixture
def project(django_project: Callable[..., pytest.Pytester]) -> pytest.Pytester:
    pytester = django_project(settings=SETTINGS, asgi=ASGI)
    static = pytester.path / "project" / "static"
    static.mkdir()
    (static / "hello.txt").write_text("static hello\n")
    return pytester


def test_channels_hooks_take_effect(project: pytest.Pytester) -> None:
    project.makepyfile(test_live_cases=TESTS)
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=6, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ServerThatCannotStart*ERROR*",
            "*RuntimeError: The live server stopped before it was ready:*",
        ]
    )
    assert "LookupError: no application here" in result.stdout.str()


def test_a_daphne_style_process_class_may_stand_in(project: pytest.Pytester) -> None:
    # A process class that knows only DaphneProcess's interface: a
    # multiprocessing-style object with ready, port.value, terminate() and
    # join(), built from (host, get_application, setup=...).
    project.makepyfile(
        test_duck=textwrap.dedent(
            """
            import threading
            import urllib.request

            from channels.testing import ChannelsLiveServerTestCase
            from channels.testing.live import ChannelsServerProcess


            class DuckProcess:
                def __init__(self, host, get_application, kwargs=None, setup=None, teardown=None):
                    self._inner = ChannelsServerProcess(host, get_application, setup=setup)
                    self.ready = threading.Event()
                    self.port = self._inner.port
                    self.terminated = False

                def start(self):
                    self._inner.start()
                    self._inner.ready.wait(30)
                    self.ready.set()

                def is_alive(self):
                    return self._inner.is_alive()

                def terminate(self):
                    self.terminated = True
                    self._inner.terminate()

                def join(self, timeout=None):
                    self._inner.join(timeout)


            class Duck(ChannelsLiveServerTestCase):
                ProtocolServerProcess = DuckProcess

                @classmethod
                def tearDownClass(cls):
                    process = cls._server_process
                    super().tearDownClass()
                    cls.process = process

                def test_served(self):
                    with urllib.request.urlopen(self.live_server_url + "/users/") as response:
                        assert response.status == 200


            def test_the_duck_was_stopped():
                assert Duck.process.terminated
                assert not Duck.process.is_alive()
            """
        )
    )
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


SETUP_DJANGO = """
import django
from django.conf import settings

settings.configure(
    DATABASES={
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "app.db"},
        "other": {"ENGINE": "django.db.backends.sqlite3", "NAME": "other.db"},
    },
    INSTALLED_APPS=["channels"],
)
django.setup()
from channels.testing.live import set_database_connection
"""


def test_set_database_connection_names_the_test_database_in_a_fresh_process() -> None:
    # What a server process started afresh ("spawn") runs as its setup.
    output = run_python(
        SETUP_DJANGO
        + """
set_database_connection()
print(settings.DATABASES["default"]["NAME"])
settings.DATABASES["default"]["TEST"] = {"NAME": "chosen.db"}
settings.DATABASES["default"]["NAME"] = "app.db"
set_database_connection()
print(settings.DATABASES["default"]["NAME"])
"""
    )
    assert output.splitlines() == ["test_app.db", "chosen.db"]


def test_set_database_connection_leaves_the_test_process_alone() -> None:
    # There (or in a fork of it) the test runner has renamed the databases already.
    output = run_python(
        SETUP_DJANGO
        + """
from django.test.utils import setup_test_environment

setup_test_environment()
settings.DATABASES["default"]["NAME"] = "test_app.db"
set_database_connection()
print(settings.DATABASES["default"]["NAME"])
"""
    )
    assert output == "test_app.db"
