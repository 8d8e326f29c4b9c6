"""channels_redis refuses a folder that the real channels_redis also installed files into.

The check itself is channels-core's (``channels._installation``); these tests
prove channels_redis runs it, in both install orders, by importing real copies
of both packages from a site directory with real ``*.dist-info`` folders.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import channels
import channels_redis

# The whole packages, imported by a real interpreter from a site directory
# laid out as an installer leaves it (a real copy, real dist-info folders).


def install(site: Path, name: str, version: str, files: dict[str, str]) -> None:
    """Write *files* into *site* and a dist-info folder recording them, as pip does."""
    for relative, text in files.items():
        target = site / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.3\nName: {name}\nVersion: {version}\n"
    )
    (dist_info / "INSTALLER").write_text("pip\n")
    record = [f"{path},sha256=x,1" for path in files] + [f"{dist_info.name}/RECORD,,"]
    (dist_info / "RECORD").write_text("\n".join(record) + "\n")


def copy_package(site: Path, module: ModuleType, distribution: str) -> None:
    """*module*'s package copied into *site* and recorded as *distribution* installs it."""
    source = Path(str(module.__file__)).parent
    target = site / source.name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    files = {
        path.relative_to(site).as_posix(): path.read_text()
        for path in sorted(target.rglob("*"))
        if path.is_file()
    }
    install(site, distribution, "0.1.0", files)


def run_python(site: Path, code: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    copy_package(tmp_path, channels, "channels-core")
    copy_package(tmp_path, channels_redis, "channels-layers-redis")
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
