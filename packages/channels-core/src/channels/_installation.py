"""Refuse to run from a folder that another distribution has written into.

Django Channels installs its files into ``channels/``, channels_redis into
``channels_redis/`` and Daphne into ``daphne/``: the folders our packages (and
our ``daphne`` compatibility distribution) use too. Neither pip nor uv warns
when two distributions write into the same folder; the second simply
overwrites the files the first had, leaving a mixture of both, and
uninstalling either later deletes files the other needs. This happens as soon
as a library that declares ``channels`` (or ``channels-redis``, ``daphne``) is
installed next to channels-core.

Importing this module checks the installation and raises
:class:`MixedInstallationError`, naming the command that repairs it. It is
imported for that effect by ``channels/__init__.py``, by
``channels/layers/__init__.py`` (Channels ships ``channels/__init__.py`` but no
``channels/layers/`` package, so when Channels was installed *over* us, our
``__init__`` is gone but ``channels.layers``, which every consumer and every
channel layer imports, is still ours and still runs the check), by
``channels_redis``, ``channels_server`` and the compatibility ``daphne``.

Cost: one ``os.scandir`` of the directory that holds ``channels/`` (the
site-packages directory), once per process. Nothing more is read unless a
``*.dist-info`` folder there carries one of the few names below; then only
those folders' ``RECORD`` and ``METADATA`` files. ``importlib.metadata`` is
not used: importing it (email, zipfile, csv...) alone costs more than ten
times the whole check, and a mixed folder always has the intruder's
``*.dist-info`` next to it, in the same directory.

This module deliberately imports nothing else from ``channels``: when the
folder is mixed, any other module may be someone else's.
"""

from __future__ import annotations

import os
import re
import sys

__all__ = [
    "InstalledDistribution",
    "MixedFolder",
    "MixedInstallationError",
    "find_mixed_folders",
    "repair_command",
    "require_unmixed_installation",
]

#: Every distribution this repository publishes that owns an import folder.
OUR_DISTRIBUTIONS = frozenset(
    {"channels-core", "channels-layers-redis", "channels-server", "channels-testing"}
)


class _Folder:
    """An import folder, who may own it, and who is known to write into it too."""

    # A plain class, not a dataclass: this runs on every start (see the cost above).
    def __init__(self, import_name: str, ours: tuple[str, ...], foreign: tuple[str, ...]) -> None:
        self.import_name = import_name
        self.ours = ours
        self.foreign = foreign


_FOLDERS = (
    _Folder("channels", ours=("channels-core",), foreign=("channels",)),
    _Folder("channels_redis", ours=("channels-layers-redis",), foreign=("channels-redis",)),
    # Our compatibility ``daphne`` distribution and the real Daphne share a
    # name; they are told apart by what they require (see is_ours).
    _Folder("daphne", ours=("daphne",), foreign=("daphne",)),
)
_WATCHED = frozenset(name for folder in _FOLDERS for name in folder.foreign)

# The project name at the start of a requirement (PEP 508).
_REQUIREMENT_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"


def canonical_name(name: str) -> str:
    """A project name as PEP 503 compares it: ``Channels_Redis`` -> ``channels-redis``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _split_dist_info(filename: str) -> tuple[str, str] | None:
    """``("channels-redis", "4.3.0")`` from ``channels_redis-4.3.0.dist-info``, else None.

    String methods rather than a regular expression: this runs for every
    entry of site-packages on every start. The name is escaped (PEP 427), so
    the first hyphen ends it.
    """
    if not filename.endswith(".dist-info"):
        return None
    name, _, version = filename[: -len(".dist-info")].partition("-")
    return name.replace("_", "-").replace(".", "-").lower(), version


class MixedInstallationError(ImportError):
    """Another distribution has written files into one of our import folders.

    Defined here rather than in :mod:`channels.exceptions` because, when this
    is raised, ``channels/exceptions.py`` may be the other distribution's file.
    """


class InstalledDistribution:
    """One ``*.dist-info`` folder, read only as far as the check needs."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._headers: dict[str, list[str]] | None = None

    def __repr__(self) -> str:
        return f"<InstalledDistribution {self.path!r}>"

    def _read(self, filename: str) -> str:
        try:
            with open(os.path.join(self.path, filename), encoding="utf-8") as file:
                return file.read()
        except OSError:
            return ""

    def _metadata(self) -> dict[str, list[str]]:
        if self._headers is None:
            headers: dict[str, list[str]] = {}
            for line in self._read("METADATA").splitlines():
                if not line:
                    break  # the description follows the headers
                key, _, value = line.partition(":")
                headers.setdefault(key.strip().lower(), []).append(value.strip())
            self._headers = headers
        return self._headers

    def _described(self, header: str, part: int, default: str) -> str:
        """The METADATA *header*, else *part* of the folder name (0: name, 1: version)."""
        values = self._metadata().get(header)
        if values:
            return values[0]
        split = _split_dist_info(os.path.basename(self.path))
        return split[part] if split else default

    @property
    def name(self) -> str:
        return self._described("name", 0, os.path.basename(self.path))

    @property
    def version(self) -> str:
        return self._described("version", 1, "?")

    @property
    def installer(self) -> str:
        return self._read("INSTALLER").strip()

    def owns_files_in(self, import_name: str) -> bool:
        """Whether its ``RECORD`` lists a file inside the folder *import_name*."""
        prefix = f"{import_name}/"
        for line in self._read("RECORD").splitlines():
            # RECORD is CSV: a path that holds a comma is quoted.
            if line.lstrip('"').startswith(prefix):
                return True
        return False

    def is_ours(self) -> bool:
        """Ours by name, or a compatibility distribution (it requires one of ours)."""
        if canonical_name(self.name) in OUR_DISTRIBUTIONS:
            return True
        for requirement in self._metadata().get("requires-dist", []):
            # Only unconditional requirements count: "channels-server>=0.1",
            # not one that an extra or an environment marker adds.
            if ";" in requirement:
                continue
            match = re.match(_REQUIREMENT_NAME, requirement)
            if match is not None and canonical_name(match.group()) in OUR_DISTRIBUTIONS:
                return True
        return False


class MixedFolder:
    """One folder holding files of ours and of a foreign distribution."""

    def __init__(
        self,
        import_name: str,
        folder: str,
        ours: InstalledDistribution,
        foreign: tuple[InstalledDistribution, ...],
    ) -> None:
        self.import_name = import_name
        self.folder = folder
        self.ours = ours
        self.foreign = foreign


def _distributions(
    directory: str, wanted: frozenset[str]
) -> dict[str, list[InstalledDistribution]]:
    """The ``*.dist-info`` folders in *directory* whose name is in *wanted*, by name."""
    found: dict[str, list[InstalledDistribution]] = {}
    try:
        entries = os.scandir(directory)
    except OSError:
        return found
    with entries:
        for entry in entries:
            split = _split_dist_info(entry.name)
            if split is not None and split[0] in wanted:
                found.setdefault(split[0], []).append(InstalledDistribution(entry.path))
    return found


def find_mixed_folders(directory: str) -> list[MixedFolder]:
    """Every import folder of ours in *directory* that a foreign distribution wrote into.

    *directory* is a site-packages directory: where the import folders and
    the ``*.dist-info`` folders of the distributions that installed them lie.
    """
    everything = _WATCHED | {name for folder in _FOLDERS for name in folder.ours}
    found = _distributions(directory, everything)
    if not _WATCHED.intersection(found):
        # The usual case: no distribution of a watched name at all.
        return []
    mixed = []
    for folder in _FOLDERS:
        foreign = [
            distribution
            for name in folder.foreign
            for distribution in found.get(name, [])
            if distribution.owns_files_in(folder.import_name) and not distribution.is_ours()
        ]
        if not foreign:
            continue
        ours = [
            distribution
            for name in folder.ours
            for distribution in found.get(name, [])
            if distribution.owns_files_in(folder.import_name) and distribution.is_ours()
        ]
        if ours:
            path = os.path.join(directory, folder.import_name)
            mixed.append(MixedFolder(folder.import_name, path, ours[0], tuple(foreign)))
    return mixed


def repair_command(
    foreign: list[str], ours: list[InstalledDistribution], python: str | None = None
) -> str:
    """The shell command that removes the *foreign* distributions and restores *ours*.

    Uninstalling a foreign distribution deletes every file its record lists,
    including the ones it had overwritten in our folder, so ours are then
    reinstalled whole (``--no-deps``: nothing else needs to change). The
    installer that installed ours (its ``INSTALLER`` file) decides between pip
    and uv, as a virtualenv made by uv usually has no pip.
    """
    # Imported here: only a failing check needs it.
    import shlex

    python = shlex.quote(python or sys.executable)
    pinned = " ".join(sorted({f"{dist.name}=={dist.version}" for dist in ours}))
    installer = ours[0].installer if ours else ""
    if installer == "uv":
        install = f"uv pip install --python {python} --reinstall --no-deps {pinned}"
        if not foreign:
            return install
        return f"uv pip uninstall --python {python} {' '.join(sorted(foreign))} && {install}"
    install = f"{python} -m pip install --force-reinstall --no-deps {pinned}"
    if not foreign:
        return install
    return f"{python} -m pip uninstall -y {' '.join(sorted(foreign))} && {install}"


def _describe(mixed: list[MixedFolder], python: str | None) -> str:
    lines = []
    for entry in mixed:
        others = " and ".join(f"{dist.name} {dist.version}" for dist in entry.foreign)
        lines.append(
            f"{entry.folder} belongs to {entry.ours.name} {entry.ours.version}, but "
            f"{others} installed files into it too: the folder now holds a mixture of both, "
            f"and uninstalling either would delete files the other needs."
        )
    foreign = sorted({dist.name for entry in mixed for dist in entry.foreign})
    command = repair_command(foreign, [entry.ours for entry in mixed], python)
    lines.append(f"Repair it with:\n\n    {command}\n")
    lines.append(
        "This happens when a library that requires `channels`, `channels-redis` or `daphne` "
        "is installed next to channels-core. To install such a library, use the "
        "compatibility distributions or an override, as the 'Migrating' page of the "
        "channels-core documentation explains."
    )
    return "\n".join(lines)


def require_unmixed_installation(directory: str | None = None, python: str | None = None) -> None:
    """Raise :class:`MixedInstallationError` if any of our folders in *directory* is mixed.

    *directory* defaults to the one holding this ``channels`` package. Also
    refuses a ``channels`` package without its ``__init__.py`` (a namespace
    package): what is left after uninstalling a distribution that had
    overwritten ours.
    """
    if directory is None:
        directory = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    mixed = find_mixed_folders(directory)
    if mixed:
        raise MixedInstallationError(_describe(mixed, python), name=mixed[0].import_name)
    package = sys.modules.get("channels")
    if package is not None and getattr(package, "__file__", None) is None:
        ours = _distributions(directory, frozenset({"channels-core"})).get("channels-core", [])
        command = repair_command([], ours[:1], python) if ours else "pip install channels-core"
        raise MixedInstallationError(
            f"{os.path.join(directory, 'channels')} has lost channels-core's files "
            "(channels/__init__.py and others), typically because a distribution that had "
            "been installed over channels-core was uninstalled, taking them with it. "
            f"Repair it with:\n\n    {command}\n",
            name="channels",
        )


# Run once per process, by whichever of our packages is imported first.
require_unmixed_installation()
