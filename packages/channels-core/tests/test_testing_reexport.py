"""channels.testing re-exports channels_testing, and says what to install when it is missing."""

from __future__ import annotations

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
