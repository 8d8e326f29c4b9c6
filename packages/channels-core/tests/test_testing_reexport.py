"""channels.testing re-exports channels_testing, and says what to install when it is missing."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap

import asgiref.testing
import pytest

import channels.testing
import channels_testing


def test_every_name_of_channels_testing_is_re_exported() -> None:
    assert channels.testing.__all__ == channels_testing.__all__
    for name in channels_testing.__all__:
        assert getattr(channels.testing, name) is getattr(channels_testing, name), name


def test_application_communicator_is_asgirefs() -> None:
    assert channels.testing.ApplicationCommunicator is asgiref.testing.ApplicationCommunicator


def test_the_documented_imports_work() -> None:
    from channels.testing import (
        ApplicationCommunicator,
        HttpCommunicator,
        WebsocketCommunicator,
    )

    assert issubclass(HttpCommunicator, ApplicationCommunicator)
    assert issubclass(WebsocketCommunicator, ApplicationCommunicator)


def run_with_blocked_import(blocked: str) -> subprocess.CompletedProcess[str]:
    """Import channels.testing in a fresh interpreter where *blocked* cannot be imported."""
    code = textwrap.dedent(
        f"""
        import sys
        from importlib.abc import MetaPathFinder

        class Blocker(MetaPathFinder):
            def find_spec(self, fullname, path=None, target=None):
                if fullname == {blocked!r}:
                    raise ModuleNotFoundError(f"No module named {{fullname!r}}", name=fullname)
                return None

        sys.meta_path.insert(0, Blocker())
        import channels.testing
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )


def test_missing_channels_testing_says_what_to_install() -> None:
    result = run_with_blocked_import("channels_testing")
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == (
        "ImportError: channels.testing needs the channels-testing package: "
        "pip install channels-testing"
    )


@pytest.mark.parametrize("blocked", ["channels_testing.websocket", "asgiref.testing"])
def test_a_broken_install_is_not_mistaken_for_a_missing_one(blocked: str) -> None:
    result = run_with_blocked_import(blocked)
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == f"ModuleNotFoundError: No module named '{blocked}'"


@pytest.mark.parametrize(
    ("module_name", "class_name"),
    [
        ("channels.testing.websocket", "WebsocketCommunicator"),
        ("channels.testing.http", "HttpCommunicator"),
        ("channels.testing.application", "ApplicationCommunicator"),
        ("channels.testing.live", "ChannelsLiveServerTestCase"),
    ],
)
def test_channels_module_paths_hold_the_same_classes(module_name: str, class_name: str) -> None:
    module = importlib.import_module(module_name)
    assert getattr(module, class_name) is getattr(channels_testing, class_name)
    assert getattr(channels.testing, class_name) is getattr(channels_testing, class_name)


def test_live_module_has_what_projects_import_from_it() -> None:
    from channels.testing.live import make_application, set_database_connection

    assert callable(make_application)
    assert callable(set_database_connection)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_importing_channels_testing_loads_its_modules_and_the_routing() -> None:
    result = run_python(
        """
        import json
        import sys
        import channels.testing
        print(json.dumps(sorted(name for name in sys.modules if name.startswith("channels."))))
        """
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    for name in (
        "channels.routing",
        "channels.testing.application",
        "channels.testing.http",
        "channels.testing.live",
        "channels.testing.websocket",
    ):
        assert name in loaded


def test_without_channels_server_the_import_works_and_the_live_test_case_says_why_not() -> None:
    result = run_python(
        """
        import sys
        from importlib.abc import MetaPathFinder

        class Blocker(MetaPathFinder):
            def find_spec(self, fullname, path=None, target=None):
                if fullname.split(".")[0] == "channels_server":
                    raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
                return None

        sys.meta_path.insert(0, Blocker())

        import channels.testing
        from channels.testing import ChannelsLiveServerTestCase, WebsocketCommunicator
        assert "channels.routing" in sys.modules

        try:
            ChannelsLiveServerTestCase.ProtocolServerProcess("localhost", lambda: None)
        except ImportError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "ChannelsLiveServerTestCase runs channels-server, which is not installed: "
        "pip install channels-testing[live]"
    )
