"""channels_server refuses to start from an installation whose ``channels`` folder is mixed.

No other distribution is known to write into ``channels_server/``; what
channels_server must catch is a ``channels/`` folder that Django Channels was
installed over, whose ``__init__`` is then Channels' own and checks nothing.
The tests import real copies of both packages from a site directory with
real ``*.dist-info`` folders.
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
import channels_server

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
    copy_package(tmp_path, channels_server, "channels-server")
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
