"""A site-packages directory laid out as an installer leaves it, for installation tests.

Private: the ``channels-*`` distributions' own test suites share it (each
runs in a virtualenv that holds channels-testing); not part of the API.

For tests of what happens when distributions share, or fight over, an
import package (channels-core's check for a ``channels`` folder that Django
Channels was also installed into is one): write distributions into a
directory of the test's own, with real ``*.dist-info`` folders (``METADATA``,
``INSTALLER``, ``RECORD``) that :mod:`importlib.metadata` reads as it reads
pip's, copy real packages there, and import them in a fresh interpreter::

    from channels_testing._site_packages import copy_package, install, run_python

    def test_mixed(tmp_path):
        copy_package(tmp_path, channels, "channels-core", "0.1.0")
        install(tmp_path, "channels", "4.3.2", {"channels/__init__.py": ""})
        result = run_python(tmp_path, "import channels")

Standard library only: no Django, no Channels.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["copy_package", "install", "run_python"]


def install(
    site: Path,
    name: str,
    version: str,
    files: dict[str, str],
    *,
    requires: tuple[str, ...] = (),
    installer: str = "pip",
) -> Path:
    """Write *files* into *site* and a dist-info folder recording them, as an installer does.

    *files* maps paths relative to *site* to their text; *requires* become
    ``Requires-Dist`` lines and *installer* the ``INSTALLER`` file. Returns
    the dist-info folder.
    """
    for relative, text in files.items():
        target = site / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir()
    headers = ["Metadata-Version: 2.3", f"Name: {name}", f"Version: {version}"]
    headers += [f"Requires-Dist: {requirement}" for requirement in requires]
    (dist_info / "METADATA").write_text("\n".join(headers) + "\n\nThe description.\n")
    (dist_info / "INSTALLER").write_text(f"{installer}\n")
    recorded = [*files, f"{dist_info.name}/METADATA", f"{dist_info.name}/INSTALLER"]
    record = [f"{path},sha256=x,1" for path in recorded] + [f"{dist_info.name}/RECORD,,"]
    (dist_info / "RECORD").write_text("\n".join(record) + "\n")
    return dist_info


def copy_package(site: Path, module: ModuleType, distribution: str, version: str) -> Path:
    """*module*'s package copied into *site*, recorded as *distribution* *version* installs it.

    Returns the copied package's folder.
    """
    source = Path(str(module.__file__)).parent
    target = site / source.name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    files = {
        path.relative_to(site).as_posix(): path.read_text()
        for path in sorted(target.rglob("*"))
        if path.is_file()
    }
    install(site, distribution, version, files)
    return target


def run_python(site: Path, code: str, *options: str) -> subprocess.CompletedProcess[str]:
    """Run *code* in a fresh interpreter (this one, with *options*) importing from *site* first."""
    environment = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, *options, "-c", code],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
