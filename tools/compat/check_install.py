"""Install our packages next to libraries that require Channels, the recommended ways, for real.

Usage::

    python tools/compat/check_install.py [--python PYTHON] [--wheelhouse DIR]
                                         [--scenario NAME ...] [--keep]

Each scenario makes a fresh virtualenv with ``uv venv`` in a temporary
directory, installs into it, and asserts what a user relies on:

``pip-compat``
    pip, ``--find-links`` the wheelhouse, ``-c constraints.txt``:
    our packages, ``channels[daphne]``, ``channels-redis[cryptography]`` and
    djangochannelsrestframework (a real library from PyPI, pinned).
``uv-compat``
    the same with ``uv pip install``, and strawberry-graphql[channels].
``uv-override``
    ``uv pip install --override`` dropping ``channels``, ``channels-redis`` and
    ``daphne`` from every requirement, with no compatibility wheels.
``pip-broken`` / ``uv-broken``
    the failure the check in ``channels._installation`` exists for: real
    Channels 4.3.2 and channels_redis 4.3.0 from PyPI installed over ours.
    Importing must stop with MixedInstallationError; the repair command it
    prints, run as printed, must leave a working installation.
``uv-broken-theirs-first``
    the other order: real Channels first, channels-core over it.

Asserted after every installation that should work: no distribution but
ours owns a file in ``channels/``, ``channels_redis/``, ``channels_server/``
or ``daphne/``; ``import channels, channels_redis, channels_server`` works;
the library imports in a Django project; ``manage.py check`` passes; the
``runserver`` command is channels-server's; and with the compatibility
``daphne``, ``daphne --help`` is channels-server's and ``daphne`` serves the
project (an HTTP request answered on a free port).

Options:

``--python``
    the interpreter for the virtualenvs: a path, or a version that uv finds
    installed (it never downloads one). Default: the one running this script.
``--wheelhouse``
    a folder made by ``tools/compat/build_wheels.py`` (compatibility wheels
    and constraints.txt). Default: built into a temporary directory. Our own
    packages are built from ``packages/*`` into the temporary directory
    unless the wheelhouse already holds their wheels.
``--scenario``
    run only these (repeatable); default: all.
``--keep``
    keep the temporary directory (its path is printed) for inspection.

Needs ``uv`` on PATH and access to PyPI. Ends with the line
``N passed, N failed`` and exits non-zero if any scenario failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import build_wheels  # noqa: E402  (this folder, put on sys.path above)

# The real libraries from PyPI, pinned, that declare ``channels``.
DRF_CHANNELS = "djangochannelsrestframework==1.3.0"
STRAWBERRY = "strawberry-graphql[channels]==0.341.2"
# The originals, as a user would get them by accident.
REAL = ["channels==4.3.2", "channels-redis==4.3.0"]
OURS = ["channels-core", "channels-layers-redis", "channels-server"]
OUR_WHEELS = [*build_wheels.COMPAT, *build_wheels.PACKAGES]
FOLDERS = ["channels", "channels_redis", "channels_server", "daphne"]
OWNERS = {
    "channels": "channels-core",
    "channels_redis": "channels-layers-redis",
    "channels_server": "channels-server",
}
# What any installer may not drop: uv's override syntax for "never required".
OVERRIDES = "\n".join(
    f"{name}; sys_platform == 'never'" for name in ("channels", "channels-redis", "daphne")
)
TIMEOUT = 900


class Failure(Exception):
    """A scenario's assertion failed; the message says what and shows the output."""


class Venv:
    """One throwaway virtualenv and the commands run in it."""

    def __init__(self, path: Path, uv: str) -> None:
        self.path = path
        self.uv = uv
        self.python = str(path / "bin" / "python")
        self.bin = path / "bin"

    def run(
        self,
        *command: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, "VIRTUAL_ENV": str(self.path), **(env or {})}
        environment["PATH"] = f"{self.bin}{os.pathsep}{environment.get('PATH', '')}"
        # The scenarios decide where packages come from, not the machine's
        # pip configuration or the caller's virtualenv.
        environment.pop("PYTHONPATH", None)
        shown = " ".join(command)
        # A script given with -c is shown by its first line.
        print(f"  $ {shown.strip().splitlines()[0]}", flush=True)
        result = subprocess.run(
            list(command),
            cwd=cwd,
            env=environment,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        if check and result.returncode != 0:
            raise Failure(
                f"{shown} exited {result.returncode}\n{result.stdout[-3000:]}\n"
                f"{result.stderr[-3000:]}"
            )
        return result

    def pip(self, *arguments: str, env: Mapping[str, str] | None = None) -> None:
        self.run(self.python, "-m", "pip", "install", "--quiet", *arguments, env=env)

    def uv_pip(self, *arguments: str, env: Mapping[str, str] | None = None) -> None:
        # uv's cache would serve a wheel of ours built earlier under the same
        # name and version; these must be the ones just built.
        refresh = [f"--refresh-package={name}" for name in OUR_WHEELS]
        self.run(
            self.uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            self.python,
            *refresh,
            *arguments,
            env=env,
        )


# What is asserted in a virtualenv.

OWNERS_SCRIPT = """
import json, sys
from importlib import metadata
owners = {}
for dist in metadata.distributions():
    for path in dist.files or ():
        if len(path.parts) > 1 and path.parts[0] in FOLDERS:
            owners.setdefault(path.parts[0], set()).add(f"{dist.metadata['Name']} {dist.version}")
print(json.dumps({folder: sorted(names) for folder, names in owners.items()}))
"""


def folder_owners(venv: Venv) -> dict[str, list[str]]:
    """Every distribution that lists a file in one of our folders, by folder."""
    script = f"FOLDERS = {FOLDERS!r}\n{OWNERS_SCRIPT}"
    result = venv.run(venv.python, "-c", script)
    owners: dict[str, list[str]] = json.loads(result.stdout)
    return owners


def assert_only_ours(venv: Venv, daphne: bool) -> None:
    owners = folder_owners(venv)
    for folder, distribution in OWNERS.items():
        names = [entry.split()[0] for entry in owners.get(folder, [])]
        if names != [distribution]:
            raise Failure(f"{folder}/ is owned by {owners.get(folder)}, not only {distribution}")
    daphne_owners = owners.get("daphne", [])
    expected = ["daphne 4.99.0"] if daphne else []
    if daphne_owners != expected:
        raise Failure(f"daphne/ is owned by {daphne_owners}, expected {expected}")
    print(f"  ok: our folders are ours alone: {owners}")


def assert_imports(venv: Venv) -> None:
    result = venv.run(
        venv.python,
        "-c",
        "import channels, channels_redis, channels_server, channels.layers, channels.consumer; "
        "print(channels.__version__, channels_redis.__version__, channels_server.__version__)",
    )
    print(f"  ok: import channels, channels_redis, channels_server: {result.stdout.strip()}")


def assert_mixed_error(venv: Venv) -> str:
    """Importing stops with MixedInstallationError; returns the repair command it prints."""
    # Not plain "channels" or "channels_redis": when theirs were installed
    # over ours, those __init__ modules are theirs and check nothing; every
    # consumer and every layer imports channels.layers, which is still ours.
    for module in ("channels.layers", "channels_redis.core", "channels_server"):
        result = venv.run(venv.python, "-c", f"import {module}", check=False)
        if result.returncode == 0 or "MixedInstallationError" not in result.stderr:
            raise Failure(
                f"import {module} did not stop with MixedInstallationError:\n{result.stderr}"
            )
    message = result.stderr
    match = re.search(r"Repair it with:\n\n    (.+)\n", message)
    if match is None:
        raise Failure(f"no repair command in the error:\n{message}")
    start = message.index("channels._installation.MixedInstallationError")
    print("  ok: importing stops with:")
    print(textwrap.indent(message[start:].strip(), "    | "))
    return match.group(1)


def write_project(root: Path, server_app: str, library: str) -> Path:
    """A Django project with *server_app* first in INSTALLED_APPS and a consumer of *library*."""
    project = root / "project"
    (project / "mysite").mkdir(parents=True)
    (project / "manage.py").write_text(
        textwrap.dedent(
            """
            import os, sys
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
            from django.core.management import execute_from_command_line
            execute_from_command_line(sys.argv)
            """
        )
    )
    (project / "mysite" / "__init__.py").write_text("")
    (project / "mysite" / "settings.py").write_text(
        textwrap.dedent(
            f"""
            SECRET_KEY = "check-install"
            DEBUG = True
            ALLOWED_HOSTS = ["127.0.0.1"]
            INSTALLED_APPS = [
                {server_app!r},
                "django.contrib.contenttypes",
                "django.contrib.auth",
                "django.contrib.staticfiles",
                "channels",
            ]
            ROOT_URLCONF = "mysite.urls"
            ASGI_APPLICATION = "mysite.asgi.application"
            DATABASES = {{
                "default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
            }}
            STATIC_URL = "static/"
            USE_TZ = True
            CHANNEL_LAYERS = {{
                "default": {{
                    "BACKEND": "channels_redis.core.RedisChannelLayer",
                    "CONFIG": {{"hosts": [("127.0.0.1", 6379)]}},
                }}
            }}
            """
        )
    )
    (project / "mysite" / "urls.py").write_text(
        textwrap.dedent(
            """
            from django.http import HttpResponse
            from django.urls import path
            urlpatterns = [path("", lambda request: HttpResponse("served by ours"))]
            """
        )
    )
    # The library's consumer is imported (and routed) by the ASGI module, as a
    # project using the library does.
    consumers = {
        "djangochannelsrestframework": "djangochannelsrestframework.consumers.AsyncAPIConsumer",
        "strawberry": "strawberry.channels.GraphQLWSConsumer",
        "none": "channels.generic.websocket.AsyncWebsocketConsumer",
    }
    module, _, name = consumers[library].rpartition(".")
    (project / "mysite" / "asgi.py").write_text(
        textwrap.dedent(
            f"""
            import os
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
            from django.core.asgi import get_asgi_application
            django_application = get_asgi_application()
            from django.urls import path
            from channels.generic.websocket import AsyncWebsocketConsumer
            from channels.routing import ProtocolTypeRouter, URLRouter
            from {module} import {name} as LIBRARY_CONSUMER
            application = ProtocolTypeRouter({{
                "http": django_application,
                "websocket": URLRouter([path("ws/", AsyncWebsocketConsumer.as_asgi())]),
            }})
            """
        )
    )
    return project


RUNSERVER_SCRIPT = """
import django, json
django.setup()
from django.core.management import get_commands, load_command_class
from channels_server.management.commands.runserver import Command
import mysite.asgi
app = get_commands()["runserver"]
command = load_command_class(app, "runserver")
print(json.dumps({"app": app, "ours": isinstance(command, Command),
                  "consumer": mysite.asgi.LIBRARY_CONSUMER.__module__}))
"""


def assert_project(venv: Venv, root: Path, server_app: str, library: str) -> None:
    project = write_project(root, server_app, library)
    settings = {"DJANGO_SETTINGS_MODULE": "mysite.settings"}
    result = venv.run(venv.python, "manage.py", "check", cwd=project)
    print(f"  ok: manage.py check: {result.stdout.strip()}")
    result = venv.run(venv.python, "-c", RUNSERVER_SCRIPT, cwd=project, env=settings)
    found = json.loads(result.stdout)
    if found["app"] != server_app or not found["ours"]:
        raise Failure(f"runserver is not channels-server's: {found}")
    print(f"  ok: runserver comes from {server_app!r} and is channels-server's; {found}")
    if server_app == "daphne":
        assert_daphne_serves(venv, project)
        assert_staticfiles_order_checked(venv, project)


def assert_staticfiles_order_checked(venv: Venv, project: Path) -> None:
    """With ``daphne`` below staticfiles, ``manage.py check`` fails with ``daphne.E001``."""
    settings = project / "mysite" / "settings.py"
    text = settings.read_text()
    settings.write_text(
        text + '\nINSTALLED_APPS.remove("daphne")\nINSTALLED_APPS.append("daphne")\n'
    )
    try:
        result = venv.run(venv.python, "manage.py", "check", cwd=project, check=False)
    finally:
        settings.write_text(text)
    if result.returncode == 0 or "daphne.E001" not in result.stderr:
        raise Failure(f"daphne below staticfiles passed the checks:\n{result.stderr}")
    print("  ok: daphne below django.contrib.staticfiles fails the check daphne.E001")


def assert_daphne_help(venv: Venv) -> None:
    result = venv.run(str(venv.bin / "daphne"), "--help")
    if "usage: channels-server" not in result.stdout or "--websocket_timeout" not in result.stdout:
        raise Failure(f"daphne --help is not channels-server's:\n{result.stdout}")
    print("  ok: daphne --help is channels-server's command line")


def assert_daphne_serves(venv: Venv, project: Path) -> None:
    """``daphne -p 0 mysite.asgi:application`` answers an HTTP request."""
    command = [str(venv.bin / "daphne"), "-b", "127.0.0.1", "-p", "0", "mysite.asgi:application"]
    print(f"  $ {' '.join(command)}", flush=True)
    environment = {**os.environ, "VIRTUAL_ENV": str(venv.path)}
    environment.pop("PYTHONPATH", None)
    process = subprocess.Popen(
        command, cwd=project, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        # Wait for the announcement, but not forever.
        ready, _, _ = select.select([process.stdout], [], [], 60)
        line = process.stdout.readline().decode() if ready else ""
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if match is None:
            process.kill()
            _, errors = process.communicate(timeout=30)
            raise Failure(f"daphne did not announce its port: {line!r}\n{errors.decode()}")
        url = f"http://127.0.0.1:{match.group(1)}/"
        with urllib.request.urlopen(url, timeout=30) as response:
            body = response.read().decode()
            server = response.headers.get("server", "")
        if body != "served by ours":
            raise Failure(f"GET {url} answered {body!r}")
        print(f"  ok: daphne served GET {url}: {body!r} (server: {server!r})")
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def assert_library_imports(venv: Venv, root: Path, modules: Sequence[str]) -> None:
    project = root / "project"
    code = "import django; django.setup(); " + "; ".join(f"import {m}" for m in modules)
    venv.run(
        venv.python, "-c", code, cwd=project, env={"DJANGO_SETTINGS_MODULE": "mysite.settings"}
    )
    print(f"  ok: the library imports: {', '.join(modules)}")


# The scenarios.


class Context:
    def __init__(self, root: Path, python: str, uv: str, wheelhouse: Path, ours: Path) -> None:
        self.root = root
        self.python = python
        self.uv = uv
        self.wheelhouse = wheelhouse
        self.ours = ours
        self.constraints = wheelhouse / "constraints.txt"

    def venv(self, name: str, seed: bool) -> Venv:
        path = self.root / name / "venv"
        command = [self.uv, "venv", "--quiet", "--python", self.python, str(path)]
        if seed:
            command.insert(3, "--seed")  # pip in the virtualenv
        subprocess.run(command, check=True, timeout=TIMEOUT)
        return Venv(path, self.uv)

    def links(self) -> list[str]:
        return ["--find-links", str(self.wheelhouse), "--find-links", str(self.ours)]


def pip_compat(context: Context) -> None:
    venv = context.venv("pip-compat", seed=True)
    venv.pip(
        *context.links(),
        "-c",
        str(context.constraints),
        *OURS,
        "channels[daphne]",
        "channels-redis[cryptography]",
        DRF_CHANNELS,
    )
    venv.run(venv.python, "-m", "pip", "check")
    assert_only_ours(venv, daphne=True)
    assert_imports(venv)
    assert_daphne_help(venv)
    root = context.root / "pip-compat"
    assert_project(venv, root, "daphne", "djangochannelsrestframework")
    assert_library_imports(venv, root, ["djangochannelsrestframework.consumers"])


def uv_compat(context: Context) -> None:
    venv = context.venv("uv-compat", seed=False)
    venv.uv_pip(
        *context.links(),
        "-c",
        str(context.constraints),
        *OURS,
        "daphne",
        "channels-redis",
        DRF_CHANNELS,
        STRAWBERRY,
    )
    venv.run(context.uv, "pip", "check", "--python", venv.python)
    assert_only_ours(venv, daphne=True)
    assert_imports(venv)
    assert_daphne_help(venv)
    root = context.root / "uv-compat"
    assert_project(venv, root, "daphne", "strawberry")
    assert_library_imports(
        venv, root, ["strawberry.channels", "djangochannelsrestframework.consumers"]
    )


def uv_override(context: Context) -> None:
    venv = context.venv("uv-override", seed=False)
    overrides = context.root / "uv-override" / "overrides.txt"
    overrides.write_text(OVERRIDES + "\n")
    # Our own packages only: the compatibility wheels are not needed here.
    venv.uv_pip(
        "--find-links",
        str(context.ours),
        "--override",
        str(overrides),
        *OURS,
        DRF_CHANNELS,
        STRAWBERRY,
    )
    assert_only_ours(venv, daphne=False)
    assert_imports(venv)
    root = context.root / "uv-override"
    assert_project(venv, root, "channels_server", "djangochannelsrestframework")
    assert_library_imports(
        venv, root, ["strawberry.channels", "djangochannelsrestframework.consumers"]
    )


def _repair(venv: Venv, command: str, installer: str, ours: Path) -> None:
    # The command as printed, in a shell; our wheels are found through the
    # installer's own environment variable, as a user's index would be.
    variable = "UV_FIND_LINKS" if installer == "uv" else "PIP_FIND_LINKS"
    venv.run("bash", "-c", command, env={variable: str(ours)})
    print(f"  ok: the repair command ran: {command}")


def _broken(context: Context, name: str, installer: str, theirs_first: bool) -> None:
    venv = context.venv(name, seed=installer == "pip")
    install = venv.pip if installer == "pip" else venv.uv_pip
    ours = ["--find-links", str(context.ours), *OURS]
    if theirs_first:
        install(*REAL)
        install(*ours)
    else:
        install(*ours)
        install(*REAL)
    owners = folder_owners(venv)
    print(f"  the silent mix, as {installer} left it: {owners}")
    command = assert_mixed_error(venv)
    expected = "uv pip uninstall" if installer == "uv" else "-m pip uninstall -y channels"
    if expected not in command:
        raise Failure(f"the repair command is not for {installer}: {command}")
    _repair(venv, command, installer, context.ours)
    assert_only_ours(venv, daphne=False)
    assert_imports(venv)
    assert_project(venv, context.root / name, "channels_server", "none")


def pip_broken(context: Context) -> None:
    _broken(context, "pip-broken", "pip", theirs_first=False)


def uv_broken(context: Context) -> None:
    _broken(context, "uv-broken", "uv", theirs_first=False)


def uv_broken_theirs_first(context: Context) -> None:
    _broken(context, "uv-broken-theirs-first", "uv", theirs_first=True)


SCENARIOS: dict[str, Callable[[Context], None]] = {
    "pip-compat": pip_compat,
    "uv-compat": uv_compat,
    "uv-override": uv_override,
    "pip-broken": pip_broken,
    "uv-broken": uv_broken,
    "uv-broken-theirs-first": uv_broken_theirs_first,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter for the venvs")
    parser.add_argument("--wheelhouse", type=Path, help="made by tools/compat/build_wheels.py")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    arguments = parser.parse_args(argv)
    # Use the interpreters this machine has; never download one.
    os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
    uv = shutil.which("uv")
    if uv is None:
        print("check_install: uv is not on PATH", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="check-install-"))
    passed, failed = [], []
    try:
        wheelhouse = arguments.wheelhouse or root / "wheelhouse"
        if arguments.wheelhouse is None:
            build_wheels.build(wheelhouse)
        if not (wheelhouse / "constraints.txt").is_file():
            print(f"check_install: {wheelhouse}/constraints.txt is missing", file=sys.stderr)
            return 2
        ours = root / "ours"
        ours.mkdir()
        for name in build_wheels.PACKAGES:
            prefix = name.replace("-", "_") + "-"
            existing = sorted(wheelhouse.glob(f"{prefix}*.whl"))
            if existing:
                shutil.copyfile(existing[-1], ours / existing[-1].name)
            else:
                build_wheels.build_wheel(build_wheels.ROOT / "packages" / name, ours)
        context = Context(root, arguments.python, uv, wheelhouse, ours)
        for name in arguments.scenario or list(SCENARIOS):
            (root / name).mkdir(exist_ok=True)
            print(f"== {name}", flush=True)
            started = time.monotonic()
            try:
                SCENARIOS[name](context)
            except (Failure, subprocess.SubprocessError, OSError) as exc:
                print(f"FAILED {name}: {exc}", flush=True)
                failed.append(name)
            else:
                print(f"PASSED {name} ({time.monotonic() - started:.0f} s)", flush=True)
                passed.append(name)
    finally:
        if arguments.keep:
            print(f"kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{len(passed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
