"""Build the compatibility wheels (``channels``, ``channels-redis``, ``daphne``) into a folder.

Usage::

    python tools/compat/build_wheels.py OUTDIR [--packages]

writes into OUTDIR:

* ``channels-4.99.0-py3-none-any.whl``, ``channels_redis-4.99.0-py3-none-any.whl``
  and ``daphne-4.99.0-py3-none-any.whl``, built from ``compat/*``;
* ``constraints.txt``, pinning exactly those three versions (``-c`` for pip
  and uv, so that PyPI's Channels, channels_redis and Daphne are never chosen);
* with ``--packages``, also the wheels of our four packages
  (channels-core, channels-layers-redis, channels-server, channels-testing),
  making OUTDIR a complete wheelhouse for ``--find-links``.

Wheels are built with ``uv build`` when uv is on PATH, else with
``python -m pip wheel`` (both fetch hatchling, the build backend). Prints the
paths of the files it wrote, one a line, and exits non-zero on failure.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPAT = ["channels", "channels-redis", "daphne"]
PACKAGES = ["channels-core", "channels-layers-redis", "channels-server", "channels-testing"]


def build_wheel(project: Path, outdir: Path) -> Path:
    """Build *project*'s wheel into *outdir* and return its path."""
    with tempfile.TemporaryDirectory(prefix="build-wheel-") as scratch:
        uv = shutil.which("uv")
        if uv is not None:
            command = [uv, "build", "--wheel", "--quiet", "--out-dir", scratch, str(project)]
        else:
            command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
            command += ["--wheel-dir", scratch, str(project)]
        subprocess.run(command, check=True)
        [wheel] = Path(scratch).glob("*.whl")
        target = outdir / wheel.name
        shutil.copyfile(wheel, target)
        return target


def wheel_version(wheel: Path) -> tuple[str, str]:
    """The distribution name and version in a wheel's file name (PEP 427)."""
    name, version = wheel.name.split("-")[:2]
    return name.replace("_", "-"), version


def build(outdir: Path, packages: bool = False) -> list[Path]:
    """Build the compatibility wheels (and with *packages*, ours) and the constraints file."""
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    pins = []
    for name in COMPAT:
        wheel = build_wheel(ROOT / "compat" / name, outdir)
        written.append(wheel)
        distribution, version = wheel_version(wheel)
        pins.append(f"{distribution}=={version}")
    if packages:
        written += [build_wheel(ROOT / "packages" / name, outdir) for name in PACKAGES]
    constraints = outdir / "constraints.txt"
    constraints.write_text(
        "# The compatibility distributions built by tools/compat/build_wheels.py:\n"
        "# with -c, pip and uv choose these and never PyPI's Channels, channels_redis\n"
        "# or Daphne, whose files would overwrite ours.\n" + "\n".join(pins) + "\n"
    )
    written.append(constraints)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="where to write the wheels and constraints.txt")
    parser.add_argument(
        "--packages",
        action="store_true",
        help="also build channels-core, channels-layers-redis, channels-server, channels-testing",
    )
    arguments = parser.parse_args(argv)
    for path in build(arguments.outdir, packages=arguments.packages):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
