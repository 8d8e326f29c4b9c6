#!/usr/bin/env python3
"""Run the test suites of libraries built on Channels against two stacks and compare.

Stacks (each a fresh virtualenv under the work directory):

* ``channels``: Channels 4.3.2, Daphne and channels_redis from PyPI;
* ``ours``: our packages from ``packages/*``, installed the way
  ``docs/migrating.rst`` recommends (see ``_install_ours``).

Each library's tests come unchanged from its published source distribution
(``pip download --no-binary NAME --no-deps``, hash-checked), plus what that
sdist leaves out but its tests import (``support/<name>/``). Every version
installed is pinned by ``third_party.txt`` and ``constraints.txt``.

The run prints passed/failed/skipped/errors per library per stack, and exits 1
when a test that passed on Channels does not pass on ours, unless
``known_differences.toml`` lists it with a reason.

Usage::

    python tools/compat/run_third_party.py [--workdir DIR] [--only NAME] [--no-postgres]
    python tools/compat/run_third_party.py --lock   # regenerate constraints.txt

Needs ``uv`` on PATH and ``pip`` importable by the running interpreter (for
``pip download``); the test virtualenvs use the running interpreter's Python.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
THIRD_PARTY = HERE / "third_party.txt"
CONSTRAINTS = HERE / "constraints.txt"
# The build backend of our packages and of the compatibility wheels, given to
# every uv command (UV_BUILD_CONSTRAINT), so that a new hatchling cannot
# change what gets built either.
BUILD_CONSTRAINTS = HERE / "build_constraints.txt"
KNOWN_DIFFERENCES = HERE / "known_differences.toml"
SUPPORT = HERE / "support"
BUILD_WHEELS = HERE / "build_wheels.py"

# The distributions our packages stand in for: only the reference stack gets them.
REFERENCE = {"channels", "daphne", "channels-redis"}
OUR_PACKAGES = ["channels-core", "channels-testing", "channels-server", "channels-layers-redis"]
STACKS = ["channels", "ours"]
# Per test; the whole pytest run also has a ceiling (RUN_TIMEOUT).
TEST_TIMEOUT = 120
RUN_TIMEOUT = 900
POSTGRES = ("127.0.0.1", 5432)


@dataclass
class Library:
    """How to run one library's tests once its sdist is unpacked."""

    name: str
    # pytest arguments after the common ones, relative to the unpacked sdist.
    pytest_args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    needs_postgres: bool = False


LIBRARIES = [
    Library(
        "djangochannelsrestframework",
        # setup.cfg's [tool:pytest] applies (loop scope); pytest-django reads the settings.
        ["tests"],
        env={"DJANGO_SETTINGS_MODULE": "compat_settings"},
    ),
    Library(
        "channels-postgres",
        # Its pyproject's addopts turn coverage reports on; what remains of
        # them is "-p no:django" (test_core.py sets Django up itself), and
        # asyncio_mode = "auto" is kept from its configuration.
        ["-o", "addopts=", "-p", "no:django", "tests"],
        env={"DJANGO_SETTINGS_MODULE": "compat_settings"},
        needs_postgres=True,
    ),
    # Both configure themselves (conftest.py / pyproject's pytest section).
    Library("drf-spectacular-websocket", ["tests"]),
    Library("django-channels-jwt-stateless", ["tests"]),
]


# -- reading the pins -------------------------------------------------------


def _requirement_lines(path: Path) -> list[str]:
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def _name(line: str) -> str:
    return canonicalize_name(Requirement(line).name)


def _pinned_version(name: str) -> str:
    for line in _requirement_lines(THIRD_PARTY):
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == canonicalize_name(name):
            specifiers = list(requirement.specifier)
            if len(specifiers) != 1 or specifiers[0].operator != "==":
                raise SystemExit(f"{THIRD_PARTY}: {name} must be pinned with ==, not {line!r}")
            return specifiers[0].version
    raise SystemExit(f"{THIRD_PARTY} does not pin {name}")


def _sdist_hash(name: str) -> str:
    marker = "# sdist-sha256:"
    for raw in THIRD_PARTY.read_text().splitlines():
        if raw.startswith(marker):
            listed, digest = raw[len(marker) :].split()
            if canonicalize_name(listed) == canonicalize_name(name):
                return digest
    raise SystemExit(f"{THIRD_PARTY} has no '{marker} {name} <hash>' line")


def _filtered(path: Path, keep: Callable[[str], bool], target: Path) -> Path:
    target.write_text("".join(f"{line}\n" for line in _requirement_lines(path) if keep(line)))
    return target


# -- processes ----------------------------------------------------------------


def _run(
    command: list[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, cwd=cwd, env=env, check=True)


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        raise SystemExit("uv is not on PATH (pip install uv)")
    return uv


def _venv(location: Path) -> Path:
    """A fresh virtualenv with the running interpreter's Python; returns its python."""
    shutil.rmtree(location, ignore_errors=True)
    _run([_uv(), "venv", "-q", "--python", sys.executable, str(location)])
    return location / "bin" / "python"


def _pip_install(python: Path, *arguments: str) -> None:
    _run([_uv(), "pip", "install", "-q", "--python", str(python), *arguments])


# -- the two stacks -----------------------------------------------------------


def _install_reference(python: Path, work: Path) -> None:
    _pip_install(python, "-r", str(THIRD_PARTY), "-c", str(CONSTRAINTS))


def _install_ours(python: Path, work: Path) -> None:
    """Our packages from their folders, with the libraries and their test tools.

    This is the installation that ``docs/migrating.rst`` recommends:
    ``build_wheels.py`` builds the compatibility distributions named
    ``channels``, ``daphne`` and ``channels-redis`` (4.99.0: no files of their
    own but ``daphne``'s shim, depending on our packages) and a constraints
    file pinning them; with ``--find-links`` and that file they satisfy the
    libraries' requirements on Channels, and PyPI's Channels is never chosen.
    The three names are installed here as the reference stack installs the
    originals.
    """

    def not_reference(line: str) -> bool:
        return _name(line) not in REFERENCE

    requirements = _filtered(THIRD_PARTY, not_reference, work / "ours-requirements.txt")
    constraints = _filtered(CONSTRAINTS, not_reference, work / "ours-constraints.txt")
    folders = [str(ROOT / "packages" / name) for name in OUR_PACKAGES]
    wheels = work / "compat-wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    _run([sys.executable, str(BUILD_WHEELS), str(wheels)])
    # uv's cache could serve a wheel built by an earlier run under the same
    # name and version (4.99.0, 0.1.0); these must be the ones just built.
    refresh = [f"--refresh-package={name}" for name in [*OUR_PACKAGES, *sorted(REFERENCE)]]
    _pip_install(
        python, *refresh, *folders, *sorted(REFERENCE), "--find-links", str(wheels),
        "-c", str(wheels / "constraints.txt"), "-r", str(requirements), "-c", str(constraints),
    )  # fmt: skip


# Which distribution must provide each import package, per stack.
PROVIDERS = {
    "channels": {"channels": "channels", "channels_redis": "channels-redis"},
    "ours": {"channels": "channels-core", "channels_redis": "channels-layers-redis"},
}


def _check_stack(python: Path, stack: str) -> None:
    """Check which distributions provide ``channels`` and ``channels_redis``.

    A stack must be what the table says it is: a stray PyPI Channels in the
    "ours" stack (or the reverse) would make the comparison meaningless.
    """
    probe = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({k: sorted(v) for k, v in m.packages_distributions().items()}))"
    )
    output = subprocess.run(
        [str(python), "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    owners = json.loads(output)
    for package, expected in PROVIDERS[stack].items():
        found = [canonicalize_name(name) for name in owners.get(package, [])]
        print(f"[{stack}] {package} is provided by {', '.join(found) or 'nothing'}", flush=True)
        if found != [expected]:
            raise SystemExit(f"the {stack} stack must get {package} from {expected} only")


INSTALLERS = {"channels": _install_reference, "ours": _install_ours}


# -- sdists -------------------------------------------------------------------


def _download(name: str, into: Path) -> Path:
    version = _pinned_version(name)
    into.mkdir(parents=True, exist_ok=True)
    request = into / f"{name}.txt"
    request.write_text(f"{name}=={version} --hash=sha256:{_sdist_hash(name)}\n")
    # --no-binary NAME rather than :all:, which would also build the sdist's
    # build requirements from source (strawberry's needs a Rust toolchain).
    _run(
        [
            sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", name,
            "--require-hashes", "-r", str(request), "-d", str(into),
        ]
    )  # fmt: skip
    matches = [
        path
        for path in into.iterdir()
        if path.name.endswith(".tar.gz")
        and canonicalize_name(path.name[: -len(".tar.gz")].rsplit("-", 1)[0]) == name
    ]
    if len(matches) != 1:
        raise SystemExit(f"expected one sdist of {name} in {into}, found {matches}")
    digest = hashlib.sha256(matches[0].read_bytes()).hexdigest()
    if digest != _sdist_hash(name):
        raise SystemExit(f"{matches[0]}: sha256 {digest} is not the pinned one")
    return matches[0]


def _unpack(sdist: Path, name: str, into: Path) -> Path:
    """The sdist's tree at *into*, with ``support/<name>`` laid over it."""
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(into, filter="data")
    (top,) = list(into.iterdir())
    support = SUPPORT / name.replace("-", "_")
    if support.is_dir():
        for source in sorted(support.rglob("*")):
            if source.is_dir() or "__pycache__" in source.parts:
                continue
            target = top / source.relative_to(support)
            if target.exists():
                raise SystemExit(
                    f"{name}'s sdist now ships {target.relative_to(top)}: remove "
                    f"{source.relative_to(ROOT)} and check the tests still run"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    return top


# -- PostgreSQL ---------------------------------------------------------------


def _postgres_reachable() -> bool:
    try:
        with socket.create_connection(POSTGRES, timeout=2):
            return True
    except OSError:
        return False


@contextmanager
def _postgres_database(python: Path, name: str) -> Iterator[None]:
    """A database of its own for one run, created and dropped through psycopg."""
    admin = (
        "import sys, psycopg\n"
        "with psycopg.connect(host=sys.argv[1], port=sys.argv[2], user='postgres', "
        "dbname='postgres', autocommit=True) as c:\n"
        "    c.execute(f'DROP DATABASE IF EXISTS {sys.argv[4]} WITH (FORCE)')\n"
        "    if sys.argv[3] == 'create':\n"
        "        c.execute(f'CREATE DATABASE {sys.argv[4]}')\n"
    )
    host, port = POSTGRES
    _run([str(python), "-c", admin, host, str(port), "create", name])
    try:
        yield
    finally:
        _run([str(python), "-c", admin, host, str(port), "drop", name])


# -- running and reading results ------------------------------------------


@dataclass
class Result:
    outcomes: dict[str, str]  # test id -> passed / failed / skipped / error
    returncode: int
    seconds: float
    note: str = ""

    def count(self, outcome: str) -> int:
        return sum(1 for value in self.outcomes.values() if value == outcome)


def _read_junit(path: Path) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    if not path.exists():
        return outcomes
    for case in ET.parse(path).getroot().iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        tags = {child.tag for child in case}
        if "failure" in tags:
            outcome = "failed"
        elif "error" in tags:
            outcome = "error"
        elif "skipped" in tags:
            outcome = "skipped"
        else:
            outcome = "passed"
        # A teardown error is a second entry for a test: keep the worse outcome.
        if outcomes.get(test_id) in ("failed", "error"):
            continue
        outcomes[test_id] = outcome
    return outcomes


def _run_library(library: Library, python: Path, tree: Path, stack: str, work: Path) -> Result:
    junit = work / f"{stack}-{library.name}.xml"
    junit.unlink(missing_ok=True)
    env = dict(os.environ)
    # Only the library's own tree on the path, for its tests' helpers and
    # settings (and, where the sdist is not a src layout, its own copy of the
    # library, the same release as the installed wheel); nothing of this
    # repository: Channels comes from the stack's virtualenv.
    env.pop("PYTHONPATH", None)
    env.update(library.env)
    env["PYTHONPATH"] = str(tree)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [
        str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE",
        f"--junitxml={junit}", "-o", "junit_family=xunit2", f"--timeout={TEST_TIMEOUT}",
        *library.pytest_args,
    ]  # fmt: skip
    started = time.monotonic()

    def run() -> int:
        print(f"\n===== {library.name} on {stack} =====", flush=True)
        print("+", " ".join(command), flush=True)
        try:
            return subprocess.run(command, cwd=tree, env=env, timeout=RUN_TIMEOUT).returncode
        except subprocess.TimeoutExpired:
            print(f"{library.name} on {stack}: stopped after {RUN_TIMEOUT} s", flush=True)
            return -1

    if library.needs_postgres:
        database = f"channels_compat_{stack}_{os.getpid()}"
        env["CHANNELS_COMPAT_PG_NAME"] = database
        with _postgres_database(python, database):
            # Both DATABASES entries name this database: one migrate creates
            # the layer's tables and the trigger that sends NOTIFY.
            migrate = (
                "import django; django.setup(); from django.core.management import call_command; "
                "call_command('migrate', verbosity=0)"
            )
            _run([str(python), "-c", migrate], cwd=tree, env=env)
            returncode = run()
    else:
        returncode = run()
    result = Result(_read_junit(junit), returncode, time.monotonic() - started)
    if returncode == -1:
        result.note = f"stopped after {RUN_TIMEOUT} s"
    elif not result.outcomes:
        result.note = f"no results (pytest exit code {returncode})"
    return result


# -- comparing --------------------------------------------------------------


def _known_differences() -> dict[tuple[str, str], str]:
    data = tomllib.loads(KNOWN_DIFFERENCES.read_text()) if KNOWN_DIFFERENCES.exists() else {}
    known = {}
    for entry in data.get("difference", []):
        library, test, reason = entry.get("library"), entry.get("test"), entry.get("reason")
        if not (library and test and reason and reason.strip()):
            raise SystemExit(
                f"{KNOWN_DIFFERENCES}: every [[difference]] needs library, test and reason"
            )
        known[(canonicalize_name(library), test)] = reason.strip()
    return known


def _table(results: dict[tuple[str, str], Result]) -> str:
    header = ("library", "stack", "passed", "failed", "skipped", "errors", "seconds", "note")
    rows = [header]
    for (library, stack), result in results.items():
        rows.append(
            (
                library,
                stack,
                str(result.count("passed")),
                str(result.count("failed")),
                str(result.count("skipped")),
                str(result.count("error")),
                f"{result.seconds:.0f}",
                result.note,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _compare(results: dict[tuple[str, str], Result], libraries: list[Library]) -> int:
    known = _known_differences()
    used: set[tuple[str, str]] = set()
    regressions: list[str] = []
    allowed: list[str] = []
    problems: list[str] = []
    for library in libraries:
        reference = results.get((library.name, "channels"))
        ours = results.get((library.name, "ours"))
        if reference is None or ours is None:
            continue
        if reference.count("passed") == 0:
            problems.append(f"{library.name}: no test passed on Channels 4.3.2 (harness broken?)")
        for test, outcome in sorted(reference.outcomes.items()):
            if outcome != "passed":
                continue
            on_ours = ours.outcomes.get(test, "missing")
            if on_ours == "passed":
                continue
            key = (library.name, test)
            if key in known:
                used.add(key)
                allowed.append(f"  {library.name} {test}: {on_ours} (known: {known[key]})")
            else:
                regressions.append(
                    f"  {library.name} {test}: passed on Channels, {on_ours} on ours"
                )
        for test, outcome in sorted(reference.outcomes.items()):
            if outcome != "passed":
                print(f"note: {library.name} {test} is {outcome} on Channels 4.3.2 (not compared)")
    stale = [
        f"  {library} {test}"
        for (library, test) in sorted(known)
        if (library, test) not in used and any(name == library for name, _ in results)
    ]
    print("\n" + _table(results))
    if allowed:
        print("\nAllowed differences (known_differences.toml):\n" + "\n".join(allowed))
    if stale:
        print("\nknown_differences.toml entries that no longer differ (remove them):")
        print("\n".join(stale))
    if problems:
        print("\n" + "\n".join(problems))
    if regressions:
        print("\nPassed on Channels 4.3.2 but not on ours:\n" + "\n".join(regressions))
    failed = bool(regressions or problems)
    print("\ncompat: " + ("FAILED" if failed else "ok"), flush=True)
    return 1 if failed else 0


# -- entry points -------------------------------------------------------------


def _lock() -> int:
    """Regenerate constraints.txt: every distribution either stack installs.

    One resolution of third_party.txt together with our packages' folders, so
    that both stacks get the same Django, asgiref, pytest...; our packages
    themselves are left out (they always come from their folders), and so are
    the compatibility distributions (build_wheels.py pins those).
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    folders = [str(ROOT / "packages" / name) for name in OUR_PACKAGES]
    with tempfile.TemporaryDirectory(prefix="compat-lock-") as scratch:
        compiled = Path(scratch) / "constraints.txt"
        wanted = Path(scratch) / "wanted.txt"
        wanted.write_text(
            "".join(f"{line}\n" for line in _requirement_lines(THIRD_PARTY) + folders)
        )
        _run(
            [
                _uv(), "pip", "compile", "-q", "--python-version", version, "--no-header",
                "--no-annotate", str(wanted), "-o", str(compiled),
            ]
        )  # fmt: skip
        pins = [
            line
            for line in _requirement_lines(compiled)
            if canonicalize_name(line.split("@")[0].split("==")[0].strip()) not in OUR_PACKAGES
            and not line.startswith(("/", "file:"))
        ]
    CONSTRAINTS.write_text(
        "# Exact versions of everything `nox -s compat` installs from PyPI, for both\n"
        f"# stacks, on Python {version}. Generated from third_party.txt and packages/*\n"
        "# by `python tools/compat/run_third_party.py --lock`; do not edit by hand.\n"
        + "".join(f"{pin}\n" for pin in pins)
    )
    print(f"wrote {CONSTRAINTS} ({len(pins)} pins)")
    with tempfile.TemporaryDirectory(prefix="compat-lock-") as scratch:
        backend = Path(scratch) / "backend.txt"
        backends = set()
        for name in OUR_PACKAGES:
            backends.update(_build_requires(ROOT / "packages" / name))
        for project in sorted((ROOT / "compat").glob("*/pyproject.toml")):
            backends.update(_build_requires(project.parent))
        backend.write_text("".join(f"{line}\n" for line in sorted(backends)))
        compiled = Path(scratch) / "build.txt"
        _run(
            [
                _uv(), "pip", "compile", "-q", "--python-version", version, "--no-header",
                "--no-annotate", str(backend), "-o", str(compiled),
            ]
        )  # fmt: skip
        pins = _requirement_lines(compiled)
    BUILD_CONSTRAINTS.write_text(
        "# Exact versions of the build backend that builds our packages and the\n"
        "# compatibility wheels in `nox -s compat`. Generated by\n"
        "# `python tools/compat/run_third_party.py --lock`; do not edit by hand.\n"
        + "".join(f"{pin}\n" for pin in pins)
    )
    print(f"wrote {BUILD_CONSTRAINTS} ({len(pins)} pins)")
    return 0


def _build_requires(project: Path) -> list[str]:
    data = tomllib.loads((project / "pyproject.toml").read_text())
    return list(data.get("build-system", {}).get("requires", []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="where virtualenvs and sdists go")
    parser.add_argument("--only", action="append", help="run only this library (repeatable)")
    parser.add_argument(
        "--stack", action="append", choices=STACKS, help="run only this stack (repeatable)"
    )
    parser.add_argument(
        "--no-postgres",
        action="store_true",
        help="leave out the libraries whose tests need PostgreSQL at 127.0.0.1:5432",
    )
    parser.add_argument("--lock", action="store_true", help="regenerate constraints.txt and stop")
    options = parser.parse_args(argv)
    if options.lock:
        return _lock()

    libraries = [
        library
        for library in LIBRARIES
        if not options.only or library.name in {canonicalize_name(n) for n in options.only}
    ]
    if options.no_postgres:
        libraries = [library for library in libraries if not library.needs_postgres]
    if any(library.needs_postgres for library in libraries) and not _postgres_reachable():
        raise SystemExit(
            "PostgreSQL is not accepting connections at 127.0.0.1:5432 (user postgres); "
            "start it, or pass --no-postgres to leave channels-postgres out"
        )
    stacks = options.stack or STACKS
    os.environ["UV_BUILD_CONSTRAINT"] = str(BUILD_CONSTRAINTS)
    work = options.workdir or Path(tempfile.mkdtemp(prefix="channels-compat-"))
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"work directory: {work}", flush=True)

    sdists = {library.name: _download(library.name, work / "sdists") for library in libraries}
    results: dict[tuple[str, str], Result] = {}
    for stack in stacks:
        python = _venv(work / f"venv-{stack}")
        INSTALLERS[stack](python, work)
        _check_stack(python, stack)
        freeze = subprocess.run(
            [_uv(), "pip", "freeze", "--python", str(python)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        (work / f"{stack}-freeze.txt").write_text(freeze)
        for library in libraries:
            tree = _unpack(sdists[library.name], library.name, work / stack / library.name)
            results[(library.name, stack)] = _run_library(library, python, tree, stack, work)
    # Order the table by library, then stack.
    results = dict(sorted(results.items(), key=lambda item: (item[0][0], STACKS.index(item[0][1]))))
    if set(stacks) != set(STACKS):
        print("\n" + _table(results))
        return 0
    return _compare(results, libraries)


if __name__ == "__main__":
    sys.exit(main())
