"""The check that refuses a ``channels`` folder mixed with another distribution's files.

Each test lays out a site-packages directory of its own, with real
``*.dist-info`` folders (METADATA, RECORD, INSTALLER) such as pip writes,
and, for the import tests, a real copy of this ``channels`` package run by a
real interpreter.
"""

from __future__ import annotations

import shutil
import sys
from importlib import metadata
from pathlib import Path

import pytest

import channels
from channels._installation import (
    MixedInstallationError,
    find_mixed_folders,
    require_unmixed_installation,
)
from channels_testing._site_packages import copy_package, install, run_python

PYTHON = "/venv/bin/python"

OUR_CHANNELS = {"channels/__init__.py": "", "channels/layers/__init__.py": ""}
THEIR_CHANNELS = {"channels/__init__.py": "", "channels/layers.py": ""}


def install_our_daphne(site: Path) -> None:
    """The compatibility daphne distribution: the daphne folder, and a requirement on us."""
    install(
        site,
        "daphne",
        "4.99.0",
        {"daphne/__init__.py": "", "daphne/apps.py": ""},
        requires=("channels-server>=0.1,<0.2",),
    )


def test_our_distributions_alone_are_not_mixed(tmp_path: Path) -> None:
    install(tmp_path, "channels-core", "0.1.0", OUR_CHANNELS)
    install(tmp_path, "channels-layers-redis", "0.1.0", {"channels_redis/__init__.py": ""})
    install(tmp_path, "channels-server", "0.1.0", {"channels_server/__init__.py": ""})

    assert find_mixed_folders(str(tmp_path)) == []
    require_unmixed_installation(str(tmp_path))


def test_channels_installed_into_our_folder_is_refused_with_the_repair_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(tmp_path, "channels-core", "0.1.0", OUR_CHANNELS)
    install(tmp_path, "channels", "4.3.2", THEIR_CHANNELS, requires=("Django>=4.2",))
    # The folders are real distributions to importlib.metadata too.
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "channels/layers.py" in [str(path) for path in metadata.files("channels") or []]

    [mixed] = find_mixed_folders(str(tmp_path))
    assert mixed.import_name == "channels"
    assert mixed.folder == str(tmp_path / "channels")
    assert (mixed.ours.name, mixed.ours.version) == ("channels-core", "0.1.0")
    assert [(dist.name, dist.version) for dist in mixed.foreign] == [("channels", "4.3.2")]

    with pytest.raises(MixedInstallationError) as caught:
        require_unmixed_installation(str(tmp_path), python=PYTHON)
    message = str(caught.value)
    assert f"{tmp_path / 'channels'} belongs to channels-core 0.1.0" in message
    assert "channels 4.3.2 installed files into it too" in message
    assert (
        f"{PYTHON} -m pip uninstall -y channels && "
        f"{PYTHON} -m pip install --force-reinstall --no-deps channels-core==0.1.0"
    ) in message
    assert caught.value.name == "channels"
    assert isinstance(caught.value, ImportError)


def test_a_uv_installation_gets_the_uv_command(tmp_path: Path) -> None:
    install(tmp_path, "channels-core", "0.1.0", OUR_CHANNELS, installer="uv")
    install(tmp_path, "channels", "4.3.2", THEIR_CHANNELS, installer="uv")

    with pytest.raises(MixedInstallationError) as caught:
        require_unmixed_installation(str(tmp_path), python=PYTHON)
    assert (
        f"uv pip uninstall --python {PYTHON} channels && "
        f"uv pip install --python {PYTHON} --reinstall --no-deps channels-core==0.1.0"
    ) in str(caught.value)


def test_every_mixed_folder_is_named_and_repaired_by_one_command(tmp_path: Path) -> None:
    # What installing the real channels-redis does: it pulls in the real channels too.
    install(tmp_path, "channels-core", "0.1.0", OUR_CHANNELS)
    install(tmp_path, "channels-layers-redis", "0.1.0", {"channels_redis/core.py": ""})
    install(tmp_path, "channels", "4.3.2", THEIR_CHANNELS)
    install(tmp_path, "channels-redis", "4.3.0", {"channels_redis/core.py": ""})

    mixed = find_mixed_folders(str(tmp_path))
    assert [entry.import_name for entry in mixed] == ["channels", "channels_redis"]
    with pytest.raises(MixedInstallationError) as caught:
        require_unmixed_installation(str(tmp_path), python=PYTHON)
    assert (
        f"{PYTHON} -m pip uninstall -y channels channels-redis && {PYTHON} -m pip install "
        "--force-reinstall --no-deps channels-core==0.1.0 channels-layers-redis==0.1.0"
    ) in str(caught.value)


def test_compatibility_distributions_are_ours(tmp_path: Path) -> None:
    install(tmp_path, "channels-core", "0.1.0", OUR_CHANNELS)
    install(tmp_path, "channels-layers-redis", "0.1.0", {"channels_redis/__init__.py": ""})
    install(tmp_path, "channels-server", "0.1.0", {"channels_server/__init__.py": ""})
    # They own no file in our folders...
    install(tmp_path, "channels", "4.99.0", {}, requires=("channels-core>=0.1,<0.2",))
    install(tmp_path, "channels-redis", "4.99.0", {}, requires=("channels-layers-redis",))
    # ...except the daphne one, which has the daphne folder to itself.
    install_our_daphne(tmp_path)

    assert find_mixed_folders(str(tmp_path)) == []


def test_the_real_daphne_alone_is_not_a_mixture(tmp_path: Path) -> None:
    # channels-core served by the real Daphne: a legitimate choice.
    install(tmp_path, "channels-core", "0.1.0", OUR_CHANNELS)
    install(tmp_path, "daphne", "4.2.3", {"daphne/__init__.py": ""}, requires=("twisted[tls]",))

    assert find_mixed_folders(str(tmp_path)) == []


def test_the_real_daphne_in_our_daphne_folder_is_refused(tmp_path: Path) -> None:
    install_our_daphne(tmp_path)
    # A requirement behind a marker does not make a distribution ours.
    install(
        tmp_path,
        "daphne",
        "4.2.3",
        {"daphne/__init__.py": "", "daphne/server.py": ""},
        requires=("twisted[tls]>=22.4", "channels-server; extra == 'never'"),
    )

    [mixed] = find_mixed_folders(str(tmp_path))
    assert mixed.import_name == "daphne"
    assert mixed.ours.version == "4.99.0"
    assert [dist.version for dist in mixed.foreign] == ["4.2.3"]


def test_a_foreign_distribution_elsewhere_is_not_our_concern(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    install(ours, "channels-core", "0.1.0", OUR_CHANNELS)
    install(theirs, "channels", "4.3.2", THEIR_CHANNELS)

    assert find_mixed_folders(str(ours)) == []


def test_a_quoted_record_path_is_read(tmp_path: Path) -> None:
    install(tmp_path, "channels-core", "0.1.0", OUR_CHANNELS)
    dist_info = install(tmp_path, "channels", "4.3.2", {})
    (dist_info / "RECORD").write_text('"channels/a,b.py",sha256=x,1\n')

    assert [entry.import_name for entry in find_mixed_folders(str(tmp_path))] == ["channels"]


# The whole package, imported by a real interpreter from a site directory.


def copy_of_channels(site: Path) -> Path:
    """Our ``channels`` package copied into *site*, recorded as channels-core installs it."""
    return copy_package(site, channels, "channels-core", channels.__version__)


def test_importing_channels_from_a_clean_copy_works(tmp_path: Path) -> None:
    copy_of_channels(tmp_path)

    result = run_python(tmp_path, "import channels.layers; print(channels.__file__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "channels" / "__init__.py")


def test_channels_installed_before_ours_stops_import_channels(tmp_path: Path) -> None:
    install(tmp_path, "channels", "4.3.2", THEIR_CHANNELS)
    # Ours installed afterwards: our files overwrite theirs, their record stays.
    shutil.rmtree(tmp_path / "channels")
    copy_of_channels(tmp_path)

    result = run_python(tmp_path, "import channels")
    assert result.returncode == 1
    assert "channels._installation.MixedInstallationError" in result.stderr
    assert "channels 4.3.2 installed files into it too" in result.stderr
    assert f"-m pip uninstall -y channels && {sys.executable} -m pip" in result.stderr


def test_channels_installed_over_ours_stops_the_first_import_of_channels_layers(
    tmp_path: Path,
) -> None:
    folder = copy_of_channels(tmp_path)
    # Channels 4.3's __init__ replaces ours; our layers/ package survives and
    # wins over their layers.py.
    install(
        tmp_path,
        "channels",
        "4.3.2",
        {
            "channels/__init__.py": '__version__ = "4.3.2"\nDEFAULT_CHANNEL_LAYER = "default"\n',
            "channels/layers.py": "raise RuntimeError('never imported: the package wins')\n",
        },
    )
    assert "_installation" not in (folder / "__init__.py").read_text()

    result = run_python(tmp_path, "import channels; print(channels.__version__)")
    assert (result.returncode, result.stdout) == (0, "4.3.2\n"), result.stderr

    result = run_python(tmp_path, "from channels.layers import get_channel_layer")
    assert result.returncode == 1
    assert "MixedInstallationError" in result.stderr
    assert "channels-core==" in result.stderr


def test_channels_without_its_init_after_an_uninstall_is_refused(tmp_path: Path) -> None:
    folder = copy_of_channels(tmp_path)
    # What "pip uninstall channels" leaves: their record listed our __init__.
    (folder / "__init__.py").unlink()

    # -S: without site-packages, where an editable channels-core would
    # otherwise win over the namespace portion left in tmp_path.
    result = run_python(tmp_path, "import channels.layers", "-S")
    assert result.returncode == 1
    assert "has lost channels-core's files" in result.stderr
    assert "--force-reinstall --no-deps channels-core==" in result.stderr


def test_a_dist_info_folder_is_matched_by_its_normalized_name(tmp_path: Path) -> None:
    install(tmp_path, "channels-core", "0.1.0", OUR_CHANNELS)
    dist_info = install(tmp_path, "channels-redis", "4.3.0", {"channels_redis/core.py": ""})
    install(tmp_path, "channels-layers-redis", "0.1.0", {"channels_redis/core.py": ""})
    # Old installers kept the project's spelling: "Channels.Redis-4.3.0.dist-info".
    dist_info.rename(tmp_path / "Channels.Redis-4.3.0.dist-info")

    [mixed] = find_mixed_folders(str(tmp_path))
    assert mixed.import_name == "channels_redis"
    assert [dist.version for dist in mixed.foreign] == ["4.3.0"]
