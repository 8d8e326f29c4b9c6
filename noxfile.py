"""Development tasks: ``nox`` runs what CI runs; ``nox -l`` lists every session.

* ``tests``: each package's own tests, over Python and Django versions, in a
  fresh virtualenv holding that package with its ``tests`` extra and nothing
  else of ours beyond what those declarations pull in (checked before the
  tests run). The full matrix is ``nox -s tests``; plain ``nox`` runs the
  subset tagged ``ci``, which still covers every Django release and every
  Python version.
* ``isolated``: each package installed alone, with only its declared
  dependencies, into a fresh virtualenv; every module must import.
* ``lint``, ``typecheck``, ``docs``: ruff, mypy --strict, Sphinx with
  warnings as errors.
* ``compat``: libraries built on Channels (djangochannelsrestframework,
  channels-postgres, drf-spectacular-websocket, django-channels-jwt-stateless)
  run their own test suites, taken from their sdists, once
  on Channels 4.3.2 + Daphne + channels_redis from PyPI and once on our
  packages; it prints both counts and fails when a test that passes on
  Channels fails on ours (``tools/compat/run_third_party.py``; pins in
  ``tools/compat/third_party.txt``; needs PostgreSQL at 127.0.0.1:5432).
* ``lock`` (not run by default): regenerate ``locks/``, the pinned versions
  every session installs (``locks/constraints.txt``, the Django releases in
  ``locks/django.txt``, the build backend in ``locks/build.txt``) and those of
  nox and uv themselves (``locks/nox.txt``, which the README and ``.ci/run``
  install). Nothing else pins: a new release elsewhere reaches this
  repository only through this session and a commit.
* ``echo`` (not run by default): serve the echo example on
  http://127.0.0.1:8000.
* ``bench_consumer`` (not run by default): ``bench/consumer.py``.
* ``bench_plots`` (not run by default): the plots and tables of
  ``docs/performance.rst``, from the JSON in ``bench/results/``.
* ``latest`` (not run by default): every package's tests and the type check
  against the newest releases of everything (no lock), so that drift shows up
  as one red session before ``nox -s lock`` takes it in.
* ``typecheck_oldest``: mypy against the oldest redis-py and Django (stubs)
  the packages declare, beside ``typecheck`` on the locked releases.
* ``fuzz`` (not run by default): the long run of the live fuzz of
  channels-server's HTTP and WebSocket engines (the test suite runs it
  briefly, with a fixed seed); prints a table.
* ``soak`` (not run by default; run before each release): ``bench/soak.py``,
  10,000 idle WebSockets over the Redis layer for 10 minutes, 1,000
  connect/abort cycles, Redis killed and frozen under load.

Options after ``--``: ``nox -s tests -- --postgres`` runs the database tests
on PostgreSQL at 127.0.0.1:5432 instead of a SQLite file.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
from pathlib import Path

import nox
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")

nox.options.default_venv_backend = "uv|virtualenv"
# A missing interpreter skips its sessions with a message (locally and in
# CI); the ``ci`` subset below only uses interpreters CI machines have.
nox.options.error_on_missing_interpreters = False
nox.options.tags = ["ci"]

# Never let uv fetch interpreters from the network; use what is installed.
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
DJANGO_PYTHONS = {
    "4.2": ["3.10", "3.11", "3.12", "3.13"],
    "5.2": ["3.10", "3.11", "3.12", "3.13"],
    # Django 6 needs Python 3.12 or newer.
    "6.0": ["3.12", "3.13"],
    "6.1": ["3.12", "3.13"],
}
# Each package's tests, and the (python, django) pairs of the default run.
PACKAGES = {
    "channels-core": [("3.10", "4.2"), ("3.11", "5.2"), ("3.12", "6.0"), ("3.13", "6.1")],
    "channels-testing": [("3.11", "5.2"), ("3.13", "6.1")],
    "channels-layers-redis": [("3.10", "4.2"), ("3.13", "6.1")],
    "channels-server": [("3.10", "4.2"), ("3.12", "6.0")],
}
# Every package, for the sessions that install them all together.
ALL_PACKAGES = ["channels-core", "channels-testing", "channels-layers-redis", "channels-server"]
# What each package may import, to prove it installs alone.
IMPORT_NAMES = {
    "channels-core": "channels",
    "channels-testing": "channels_testing",
    "channels-layers-redis": "channels_redis",
    "channels-server": "channels_server",
}


def _link_pyenv_interpreters() -> None:
    """Make pyenv's interpreters findable as ``pythonX.Y`` for nox.

    pyenv's shims answer "command not found" for versions that are installed
    but not selected, which would make nox skip them. A directory of direct
    links, first on PATH for this process only, fixes that.
    """
    links = ROOT / ".nox" / "interpreters"
    found = False
    for version in PYTHONS:
        candidates = sorted(
            glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}"))
        )
        if not candidates:
            continue
        links.mkdir(parents=True, exist_ok=True)
        link = links / f"python{version}"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(candidates[-1])
        found = True
    if found:
        os.environ["PATH"] = f"{links}{os.pathsep}{os.environ.get('PATH', '')}"


_link_pyenv_interpreters()


def _group(name: str) -> list[str]:
    return nox.project.dependency_groups(PYPROJECT, name)


LOCKS = ROOT / "locks"
# Everything the sessions install, pinned (``nox -s lock`` writes these).
CONSTRAINTS = LOCKS / "constraints.txt"
BUILD_CONSTRAINTS = LOCKS / "build.txt"
DJANGO_RELEASES = LOCKS / "django.txt"
# What the sessions install beyond the packages' extras and the dependency
# groups; ``lock`` pins these too.
SESSION_EXTRAS = ["psycopg[binary]>=3.1", "uvicorn>=0.30", "websockets>=13"]


def _install(session: nox.Session, *arguments: str, constraints: Path = CONSTRAINTS) -> None:
    """``session.install`` within the lock: no version that was not pinned."""
    pins = ["-c", str(constraints)]
    if session.venv_backend == "uv":
        # Our packages are built from their folders; pin their build backend.
        pins += ["--build-constraint", str(BUILD_CONSTRAINTS)]
    session.install(*arguments, *pins)


def _pytest(
    session: nox.Session, package: str, *arguments: str, env: dict[str, str] | None = None
) -> None:
    """Run *package*'s own test suite in the session's virtualenv."""
    tests = str(ROOT / "packages" / package / "tests")
    session.run("python", "-m", "pytest", tests, "-p", "no:cacheprovider", *arguments, env=env)


def _django(version: str) -> str:
    """The pinned release of Django *version* (``4.2`` -> ``Django==4.2.30``)."""
    for line in DJANGO_RELEASES.read_text().splitlines():
        if line.startswith(f"Django=={version}."):
            return line.strip()
    raise ValueError(f"{DJANGO_RELEASES} pins no Django {version}: run nox -s lock")


def _declared_siblings(package: str, extras: frozenset[str]) -> dict[str, set[str]]:
    """Our packages that *package* (with *extras*) declares, transitively, with their extras.

    Read from the ``pyproject.toml`` files, so that what the sessions install
    is exactly what a user's ``pip install`` would pull in.
    """
    found: dict[str, set[str]] = {package: set(extras)}
    pending = [(package, extras)]
    while pending:
        name, wanted = pending.pop()
        project = nox.project.load_toml(ROOT / "packages" / name / "pyproject.toml")["project"]
        requirements = list(project.get("dependencies", []))
        for extra in wanted:
            requirements += project.get("optional-dependencies", {}).get(extra, [])
        for line in requirements:
            requirement = Requirement(line)
            sibling = canonicalize_name(requirement.name)
            if sibling not in ALL_PACKAGES:
                continue
            new = set(requirement.extras) - found.get(sibling, set())
            if sibling not in found or new:
                found.setdefault(sibling, set()).update(new)
                pending.append((sibling, frozenset(found[sibling])))
    return found


def _local_packages(*names: str, extras: tuple[str, ...] = ()) -> list[str]:
    """Install arguments for *names* and every sibling they declare, from their folders."""
    wanted: dict[str, set[str]] = {}
    for name in names:
        for sibling, sibling_extras in _declared_siblings(name, frozenset(extras)).items():
            wanted.setdefault(sibling, set()).update(sibling_extras)
    return [
        str(ROOT / "packages" / name) + (f"[{','.join(sorted(chosen))}]" if chosen else "")
        for name, chosen in sorted(wanted.items())
    ]


def _test_params() -> list[object]:
    params = []
    for package, ci_pairs in PACKAGES.items():
        for django, pythons in DJANGO_PYTHONS.items():
            for python in pythons:
                tags = ["ci"] if (python, django) in ci_pairs else []
                params.append(
                    nox.param(
                        python,
                        django,
                        package,
                        id=f"{package}-py{python}-django{django}",
                        tags=tags,
                    )
                )
    return params


@nox.session
@nox.parametrize(("python", "django", "package"), _test_params())
def tests(session: nox.Session, django: str, package: str) -> None:
    """Run one package's tests, with only what it declares, on one Python and Django.

    The virtualenv gets the package with its ``tests`` extra and nothing else
    of ours beyond what those declarations pull in: channels-core's tests run
    without channels-server or channels-layers-redis installed. The session
    checks that before running.
    """
    if package == "channels-server":
        _ensure_debian(session, NGHTTP2)
    siblings = _declared_siblings(package, frozenset({"tests"}))
    arguments = _local_packages(package, extras=("tests",))
    # A constraint, not a requirement: Django comes only through the
    # declared dependencies, at the release this session tests.
    constraints = Path(session.virtualenv.location) / "django-constraint.txt"
    constraints.write_text(_django(django) + "\n")
    arguments += ["-c", str(constraints)]
    _install(session, *arguments)
    session.run("python", str(ROOT / "tools" / "only_declared.py"), *sorted(siblings))
    env = {}
    args = list(session.posargs)
    if "--postgres" in args:
        args.remove("--postgres")
        _install(session, "psycopg[binary]>=3.1")
        env["CHANNELS_TEST_DATABASE"] = "postgres"
    _pytest(session, package, *args, env=env)


@nox.session(python="3.11", tags=["ci"])
@nox.parametrize("package", list(IMPORT_NAMES))
def isolated(session: nox.Session, package: str) -> None:
    """Install one package alone and import every module it ships.

    channels-server, which needs neither Django nor channels-core, then
    serves a bare ASGI application over HTTP and WebSocket.
    """
    _install(session, *_local_packages(package))
    session.run("python", str(ROOT / "tools" / "import_alone.py"), IMPORT_NAMES[package])
    if package == "channels-server":
        session.run("python", str(ROOT / "tools" / "serve_alone.py"))


@nox.session(python="3.11", tags=["ci"])
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole repository."""
    _install(session, *_group("lint"))
    session.run("ruff", "check", str(ROOT))
    session.run("ruff", "format", "--check", str(ROOT))


# The oldest releases our declarations allow, for ``typecheck(oldest)``: the
# sources must type-check against them too, not only against the lock.
OLDEST = ["redis==5.0.1", "django-stubs==4.2.7", "django-stubs-ext==4.2.7"]


def _typecheck(session: nox.Session, *pins: str, constraints: Path = CONSTRAINTS) -> None:
    _install(
        session,
        *_local_packages(*PACKAGES, extras=("tests",)),
        *_group("typecheck"),
        *pins,
        constraints=constraints,
    )
    _mypy(session)


def _mypy(session: nox.Session) -> None:
    """mypy --strict (the root configuration) over every package's sources."""
    sources = [str(ROOT / "packages" / package / "src") for package in PACKAGES]
    session.run("mypy", "--config-file", str(ROOT / "pyproject.toml"), *sources)


@nox.session(python="3.11", tags=["ci"])
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package's sources, with the locked releases."""
    _typecheck(session, _django("5.2"))


@nox.session(python="3.11", tags=["ci"])
def typecheck_oldest(session: nox.Session) -> None:
    """mypy --strict against the oldest redis-py and Django (stubs) we declare."""
    names = {Requirement(pin).name for pin in OLDEST}
    lock = Path(session.create_tmp()) / "constraints-oldest.txt"
    lock.write_text(
        "".join(
            line + "\n"
            for line in CONSTRAINTS.read_text().splitlines()
            if line.split("==")[0].strip() not in names
        )
    )
    _typecheck(session, *OLDEST, _django("4.2"), constraints=lock)


@nox.session(python="3.11", tags=["ci"])
def docs(session: nox.Session) -> None:
    """Build the Sphinx site with warnings as errors."""
    _install(session, *_local_packages(*PACKAGES), *_group("docs"))
    build = ROOT / "docs" / "_build"
    shutil.rmtree(build, ignore_errors=True)
    session.run(
        "sphinx-build", "-W", "--keep-going", "-b", "html", str(ROOT / "docs"), str(build / "html")
    )


# The integration suite: every package together, with the chat example.
INTEGRATION = [("3.10", "4.2"), ("3.11", "5.2"), ("3.12", "6.0"), ("3.13", "6.1")]
# Debian packages some sessions need, by a file each installs. CI machines
# start without them; the sessions install them (or fail saying why).
BROWSER = {"/usr/bin/chromium": "chromium", "/usr/bin/chromedriver": "chromium-driver"}
# An independent HTTP/2 client (nghttp) and load generator (h2load) for
# channels-server's HTTP/2 tests.
NGHTTP2 = {"/usr/bin/nghttp": "nghttp2-client", "/usr/bin/h2load": "nghttp2-client"}


def _ensure_debian(session: nox.Session, wanted: dict[str, str]) -> None:
    """Install the Debian packages of *wanted* whose file is missing; fail if impossible."""
    packages = sorted({package for path, package in wanted.items() if not Path(path).exists()})
    if not packages:
        return
    if shutil.which("apt-get") is None:
        session.error(f"{', '.join(packages)} missing and apt-get is not available")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run(*sudo, "apt-get", "update", "-q", external=True, env=env)
    session.run(
        *sudo,
        "apt-get",
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        *packages,
        external=True,
        env=env,
    )
    missing = [path for path in wanted if not Path(path).exists()]
    if missing:
        session.error(f"apt-get ran, but these are still missing: {missing}")


@nox.session(tags=["ci"])
@nox.parametrize(
    ("python", "django"),
    [nox.param(python, django, id=f"py{python}-django{django}") for python, django in INTEGRATION],
)
def integration(session: nox.Session, django: str) -> None:
    """The chat example over every package, installed from its folder, in a real browser."""
    _ensure_debian(session, BROWSER)
    _install(
        session,
        *_local_packages(*ALL_PACKAGES, extras=("tests",)),
        _django(django),
        *_group("integration"),
    )
    session.chdir(ROOT / "examples" / "chat")
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *session.posargs)


@nox.session(python="3.11", default=False)
def chat(session: nox.Session) -> None:
    """Serve the chat example at http://127.0.0.1:8000 (CONTROL-C to stop)."""
    _install(session, *_local_packages(*ALL_PACKAGES))
    session.chdir(ROOT / "examples" / "chat")
    session.run("python", "manage.py", "migrate", "--no-input", "-v", "0")
    session.run("channels-server", "-b", "127.0.0.1", "-p", "8000", "mysite.asgi:application")


@nox.session(python="3.11", default=False)
def echo(session: nox.Session) -> None:
    """Serve the echo example at http://127.0.0.1:8000 (CONTROL-C to stop)."""
    _install(session, *_local_packages("channels-core"), "uvicorn>=0.30", "websockets>=13")
    session.chdir(ROOT / "examples" / "echo")
    session.run("uvicorn", "echo_project.asgi:application", "--host", "127.0.0.1", "--port", "8000")


@nox.session(python="3.11", tags=["ci"])
def autobahn(session: nox.Session) -> None:
    """The Autobahn|Testsuite fuzzing client (cases 1-13; 12 and 13 compressed) against
    channels-server: no case may fail; prints the counts.

    wstest needs Python 2.7; the script finds it (pyenv's or python2.7 on
    PATH), builds its virtualenv, and says plainly when there is none.
    """
    _install(session, *_local_packages("channels-core", "channels-server"))
    session.run(
        "python",
        str(ROOT / "packages" / "channels-server" / "tests" / "autobahn" / "run.py"),
        *session.posargs,
    )


@nox.session(python="3.11", default=False)
def bench_consumer(session: nox.Session) -> None:
    """Consumer throughput and memory, side by side with channels 4.3.2."""
    _install(session, *_local_packages("channels-core", "channels-testing"), _django("5.2"))
    session.run("python", str(ROOT / "bench" / "consumer.py"), *session.posargs)


@nox.session(python="3.11", default=False)
def bench_plots(session: nox.Session) -> None:
    """Draw docs/performance.rst's plots and tables from the JSON in ``bench/results/``.

    Reads what ``bench/server.py --json`` and ``bench/redis_layer.py --json``
    wrote there and writes ``docs/_static/performance/`` (SVG figures and the
    generated ``.inc`` the page includes); it runs no benchmark itself.
    """
    _install(session, *_group("bench"))
    session.run("python", str(ROOT / "bench" / "plots.py"), *session.posargs)


COMPAT = ROOT / "tools" / "compat"


@nox.session(python="3.12", tags=["ci"])
def compat(session: nox.Session) -> None:
    """Third-party libraries' own tests on Channels 4.3.2 and on our packages, compared.

    The script builds both stacks in virtualenvs of its own under this
    session's, from pinned versions only (``tools/compat/third_party.txt``,
    ``constraints.txt``), and installs ours the way ``docs/migrating.rst``
    recommends, after ``tools/compat/check_install.py`` has checked those
    installations. Options after ``--`` go to run_third_party.py:
    ``--only NAME``, ``--stack ours``, ``--no-postgres``.
    """
    session.install("-r", str(COMPAT / "runner.txt"))
    # The documented installations themselves (pip and uv with the
    # compatibility wheels, uv's override, the mixed one and its repair).
    session.run("python", str(COMPAT / "check_install.py"))
    session.run(
        "python",
        str(COMPAT / "run_third_party.py"),
        "--workdir",
        str(Path(session.virtualenv.location) / "work"),
        *session.posargs,
    )


@nox.session(venv_backend="none", default=False)
def lock(session: nox.Session) -> None:
    """Pin every version the sessions install, from what PyPI serves today.

    One universal resolution (valid on every Python we support, with markers
    where versions differ) of our packages' extras, the dependency groups and
    the sessions' own extras, less our packages and Django, which each session
    pins to one release from ``locks/django.txt``. Review the diff and commit it.
    """
    import sys

    LOCKS.mkdir(exist_ok=True)
    work = Path(session.create_tmp())
    requirements = [
        str(ROOT / "packages" / name)
        + "["
        + ",".join(
            sorted(
                nox.project.load_toml(ROOT / "packages" / name / "pyproject.toml")["project"].get(
                    "optional-dependencies", {}
                )
            )
        )
        + "]"
        for name in ALL_PACKAGES
    ]
    for group in PYPROJECT.get("dependency-groups", {}):
        requirements += _group(group)
    requirements += SESSION_EXTRAS
    source = work / "requirements.in"
    source.write_text("\n".join(requirements) + "\n")
    uv = [sys.executable, "-m", "uv", "pip", "compile", "--quiet", "--universal"]
    uv += ["--python-version", min(PYTHONS), "--no-annotate"]
    uv += ["--custom-compile-command", "nox -s lock"]
    excluded = [*ALL_PACKAGES, "django"]
    session.run(
        *uv,
        *(f"--no-emit-package={name}" for name in excluded),
        str(source),
        "-o",
        str(CONSTRAINTS),
        external=True,
    )
    build = work / "build.in"
    build.write_text("hatchling\n")
    session.run(*uv, str(build), "-o", str(BUILD_CONSTRAINTS), external=True)
    tools = work / "nox.in"
    tools.write_text("nox\nuv\n")
    session.run(*uv, str(tools), "-o", str(LOCKS / "nox.txt"), external=True)
    releases = []
    for version in DJANGO_PYTHONS:
        major, minor = version.split(".")
        one = work / f"django-{version}.in"
        one.write_text(f"Django>={major}.{minor},<{major}.{int(minor) + 1}\n")
        pinned = work / f"django-{version}.txt"
        python = DJANGO_PYTHONS[version][-1]
        session.run(
            sys.executable,
            "-m",
            "uv",
            "pip",
            "compile",
            "--quiet",
            "--python-version",
            python,
            "--no-header",
            "--no-annotate",
            str(one),
            "-o",
            str(pinned),
            external=True,
        )
        for line in pinned.read_text().splitlines():
            if line.lower().startswith("django=="):
                releases.append("Django==" + line.split("==", 1)[1].strip())
    DJANGO_RELEASES.write_text(
        "# One pinned release per Django version the sessions test (nox -s lock).\n"
        + "\n".join(releases)
        + "\n"
    )


@nox.session(python="3.11", default=False)
def soak(session: nox.Session) -> None:
    """The soak run before each release: ``bench/soak.py`` (about 13 minutes; ``-- --quick``: 2).

    10,000 idle WebSockets over RedisChannelLayer for 10 minutes, 1,000
    connect/abort cycles, Redis killed and frozen under load; it prints a
    table and fails when a check does. Needs ``redis-server`` on PATH.
    """
    _install(
        session,
        *_local_packages("channels-layers-redis"),
        *_local_packages("channels-server", extras=("fast",)),
        _django("5.2"),
    )
    session.run("python", str(ROOT / "bench" / "soak.py"), *session.posargs)


@nox.session(python="3.11", default=False)
def fuzz(session: nox.Session) -> None:
    """The live fuzz of channels-server, long: about 10 minutes on 2 cores.

    Both HTTP engines and the WebSocket engine, on asyncio and uvloop, each
    against a real server on 127.0.0.1 (``tests/fuzz/test_live_fuzz.py``;
    the normal suite runs the same tests briefly, with a fixed seed). Random
    examples: ``CHANNELS_FUZZ_EXAMPLES`` per test (default 7000), and
    ``nox -s fuzz -- --hypothesis-seed=N`` replays a run. Prints a table.
    """
    _install(session, *_local_packages("channels-server", extras=("tests",)), _django("5.2"))
    report = Path(session.create_tmp()) / "fuzz-report.jsonl"
    report.unlink(missing_ok=True)
    examples = os.environ.get("CHANNELS_FUZZ_EXAMPLES", "7000")
    session.run(
        "python",
        "-m",
        "pytest",
        str(ROOT / "packages" / "channels-server" / "tests" / "fuzz"),
        "-p",
        "no:cacheprovider",
        "-q",
        *session.posargs,
        env={"CHANNELS_FUZZ_EXAMPLES": examples, "CHANNELS_FUZZ_REPORT": str(report)},
        success_codes=[0, 1],
    )
    rows = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    header = (
        f"{'fuzz':<10} {'parser':<10} {'loop':<8} {'cases':>7} {'valid':>6}"
        f" {'seconds':>8} {'slowest':>8}  outcome"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        engine = row["test"].removeprefix("test_").removesuffix("_engine_fuzz")
        lines.append(
            f"{engine:<10} {row['engine']:<10}"
            f" {row['loop']:<8} {row['cases']:>7} {row['valid_cases']:>6} {row['seconds']:>8}"
            f" {row['slowest_case']:>7}s  {row['outcome']}"
        )
    failures = sum(row["outcome"] != "passed" for row in rows)
    lines.append(f"{sum(row['cases'] for row in rows)} cases, {failures} failed test(s)")
    print("\n".join(lines))
    if failures or not rows:
        session.error("the live fuzz found a failure (see above)")


@nox.session(python=PYTHONS[-1], default=False)
def latest(session: nox.Session) -> None:
    """Every package's tests and mypy on the newest releases PyPI serves (no lock).

    Not part of CI: a new release of a dependency shows up here as one red
    session, to fix before ``nox -s lock`` pins it.
    """
    session.install(
        "--upgrade", *_local_packages(*ALL_PACKAGES, extras=("tests",)), *_group("typecheck")
    )
    _mypy(session)
    for package in ALL_PACKAGES:
        _pytest(session, package, "-q", *session.posargs)
