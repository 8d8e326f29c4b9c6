"""channels_redis refuses a folder that the real channels_redis also installed files into.

The check itself is channels-core's (``channels._installation``); these tests
prove channels_redis runs it, in both install orders, by importing real copies
of both packages from a site directory with real ``*.dist-info`` folders.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import channels
import channels_redis
from channels_testing._site_packages import copy_package, install, run_python

# The whole packages, imported by a real interpreter from a site directory
# laid out as an installer leaves it (a real copy, real dist-info folders).


@pytest.fixture
def site(tmp_path: Path) -> Path:
    copy_package(tmp_path, channels, "channels-core", "0.1.0")
    copy_package(tmp_path, channels_redis, "channels-layers-redis", "0.1.0")
    return tmp_path


def test_a_clean_installation_imports(site: Path) -> None:
    result = run_python(site, "import channels_redis.core; print(channels_redis.__file__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(site / "channels_redis" / "__init__.py")


def test_channels_redis_installed_before_ours_stops_the_import(site: Path) -> None:
    # Ours installed afterwards overwrote their files; their record stays.
    install(site, "channels-redis", "4.3.0", {"channels_redis/utils.py": ""})

    result = run_python(site, "import channels_redis")
    assert result.returncode == 1
    assert "MixedInstallationError" in result.stderr
    assert "channels-redis 4.3.0 installed files into it too" in result.stderr
    assert (
        "-m pip uninstall -y channels-redis && "
        f"{sys.executable} -m pip install --force-reinstall --no-deps channels-layers-redis==0.1.0"
    ) in result.stderr


def test_channels_redis_installed_over_ours_stops_the_layer_import(site: Path) -> None:
    # channels_redis 4.3's __init__ replaces ours, which then runs no check;
    # the layer module a project configures still reaches it.
    install(
        site, "channels-redis", "4.3.0", {"channels_redis/__init__.py": '__version__ = "4.3.0"\n'}
    )

    result = run_python(site, "import channels_redis.core")
    assert result.returncode == 1
    assert "MixedInstallationError" in result.stderr
    assert "channels-redis 4.3.0 installed files into it too" in result.stderr
