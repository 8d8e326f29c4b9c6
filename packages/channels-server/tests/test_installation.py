"""channels_server refuses to start from an installation whose ``channels`` folder is mixed.

No other distribution is known to write into ``channels_server/``; what
channels_server must catch is a ``channels/`` folder that Django Channels was
installed over, whose ``__init__`` is then Channels' own and checks nothing.
The tests import real copies of both packages from a site directory with
real ``*.dist-info`` folders.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import channels
import channels_server
from channels_testing._site_packages import copy_package, install, run_python

# The whole packages, imported by a real interpreter from a site directory
# laid out as an installer leaves it (a real copy, real dist-info folders).


@pytest.fixture
def site(tmp_path: Path) -> Path:
    copy_package(tmp_path, channels, "channels-core", "0.1.0")
    copy_package(tmp_path, channels_server, "channels-server", "0.1.0")
    return tmp_path


def test_a_clean_installation_imports(site: Path) -> None:
    result = run_python(site, "import channels_server.cli; print(channels_server.__file__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(site / "channels_server" / "__init__.py")


def test_channels_installed_over_channels_core_stops_the_server(site: Path) -> None:
    install(site, "channels", "4.3.2", {"channels/__init__.py": '__version__ = "4.3.2"\n'})

    result = run_python(site, "import channels_server.cli")
    assert result.returncode == 1
    assert "MixedInstallationError" in result.stderr
    assert "channels 4.3.2 installed files into it too" in result.stderr
    assert (
        f"{sys.executable} -m pip uninstall -y channels && "
        f"{sys.executable} -m pip install --force-reinstall --no-deps channels-core==0.1.0"
    ) in result.stderr


def test_the_server_runs_beside_django_channels_alone(tmp_path: Path) -> None:
    """channels-server needs no channels-core: with Django Channels installed
    on its own (a Daphne project that swapped only its server), it imports
    and builds its command line."""
    copy_package(tmp_path, channels_server, "channels-server", "0.2.0")
    install(tmp_path, "channels", "4.3.2", {"channels/__init__.py": '__version__ = "4.3.2"\n'})

    result = run_python(
        tmp_path,
        "import channels, channels_server.cli; "
        "channels_server.cli.build_parser(); print(channels.__version__)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4.3.2"
