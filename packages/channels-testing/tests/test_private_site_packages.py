"""channels_testing._site_packages: distributions that importlib.metadata reads as pip's."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest

import channels_testing
from channels_testing._site_packages import copy_package, install, run_python


def test_install_writes_a_distribution_importlib_metadata_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist_info = install(
        tmp_path,
        "some-thing",
        "1.2.3",
        {"some_thing/__init__.py": "VALUE = 1\n"},
        requires=("Django>=4.2",),
        installer="uv",
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    assert dist_info == tmp_path / "some_thing-1.2.3.dist-info"
    assert (tmp_path / "some_thing" / "__init__.py").read_text() == "VALUE = 1\n"
    assert metadata.version("some-thing") == "1.2.3"
    assert metadata.requires("some-thing") == ["Django>=4.2"]
    assert metadata.distribution("some-thing").read_text("INSTALLER") == "uv\n"
    assert sorted(str(path) for path in metadata.files("some-thing") or []) == [
        "some_thing-1.2.3.dist-info/INSTALLER",
        "some_thing-1.2.3.dist-info/METADATA",
        "some_thing-1.2.3.dist-info/RECORD",
        "some_thing/__init__.py",
    ]


def test_copy_package_records_every_file_and_run_python_imports_the_copy(tmp_path: Path) -> None:
    folder = copy_package(tmp_path, channels_testing, "channels-testing", "9.9")

    assert folder == tmp_path / "channels_testing"
    record = (tmp_path / "channels_testing-9.9.dist-info" / "RECORD").read_text()
    assert "channels_testing/__init__.py,sha256=x,1" in record
    assert "channels_testing/_site_packages.py,sha256=x,1" in record
    assert "__pycache__" not in record

    code = (
        "import json, sys, channels_testing\n"
        "from importlib import metadata\n"
        "print(json.dumps([channels_testing.__file__, metadata.version('channels-testing'),"
        " sys.flags.no_user_site]))"
    )
    result = run_python(tmp_path, code, "-s")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [str(folder / "__init__.py"), "9.9", 1]
