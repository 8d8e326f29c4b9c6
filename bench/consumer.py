"""Consumer benchmark: channels-core against the original channels 4.3.2, side by side.

    python bench/consumer.py [--rounds N] [--messages N] [--instances N]

(or ``python3 -m nox -s bench_consumer``). Builds two virtualenvs under
``bench/.venvs/`` on first use — ours (``packages/channels-core``) and the
original (``channels==4.3.2`` from PyPI) — with the same Python and Django,
then runs ``_consumer_workload.py`` in each, alternating, for every
combination of consumer (``AsyncWebsocketConsumer`` / ``WebsocketConsumer``
echo) and setup (with the in-memory channel layer configured, and without a
layer). It prints the median of the rounds and the ratios.

Targets (issue: foundation): at least 2x the original's throughput, at most
0.6x its memory per live instance.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENVS = HERE / ".venvs"
DJANGO = "Django>=5.2,<5.3"
IMPLEMENTATIONS = {
    "ours": [str(ROOT / "packages" / "channels-core")],
    "original": ["channels==4.3.2"],
}


def python_of(name: str) -> Path:
    return VENVS / name / "bin" / "python"


def ensure_venv(name: str, requirements: list[str], refresh: bool) -> Path:
    python = python_of(name)
    if refresh or not python.exists():
        subprocess.run(
            ["uv", "venv", "-q", "--clear", "-p", sys.executable, str(VENVS / name)], check=True
        )
        subprocess.run(
            ["uv", "pip", "install", "-q", "--python", str(python), DJANGO, *requirements],
            check=True,
        )
    return python


def run_workload(python: Path, kind: str, layer: str, messages: int, instances: int) -> dict:
    env = dict(os.environ, PYTHONHASHSEED="0")
    output = subprocess.run(
        [
            str(python),
            str(HERE / "_consumer_workload.py"),
            kind,
            layer,
            str(messages),
            str(instances),
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=HERE,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def _median(samples: list[dict], key: str) -> float:
    return statistics.median(sample[key] for sample in samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--refresh", action="store_true", help="rebuild the virtualenvs")
    args = parser.parse_args()

    pythons = {
        name: ensure_venv(name, requirements, args.refresh or name == "ours")
        for name, requirements in IMPLEMENTATIONS.items()
    }
    rows = []
    for layer in ("layer", "none"):
        for kind in ("async", "sync"):
            messages = args.messages if kind == "async" else args.messages // 4
            samples: dict[str, list[dict]] = {name: [] for name in pythons}
            for _ in range(args.rounds):
                for name, python in pythons.items():
                    samples[name].append(
                        run_workload(python, kind, layer, messages, args.instances)
                    )
            rate = {
                n: statistics.median(s["messages_per_second"] for s in samples[n]) for n in samples
            }
            memory = {
                n: statistics.median(s["bytes_per_instance"] for s in samples[n]) for n in samples
            }
            rows.append((kind, layer, rate, memory))

    consumer_names = {"async": "AsyncWebsocketConsumer", "sync": "WebsocketConsumer"}
    print(f"Python {sys.version.split()[0]}, {DJANGO}; medians of {args.rounds} rounds")
    print()
    header = (
        "| consumer | channel layer | ours msg/s | original msg/s | ratio | "
        "ours B/instance | original B/instance | ratio |"
    )
    print(header)
    print("|" + "---|" * 8)
    for kind, layer, rate, memory in rows:
        print(
            f"| {consumer_names[kind]} echo | {'in-memory' if layer == 'layer' else 'none'} "
            f"| {rate['ours']:,.0f} | {rate['original']:,.0f} "
            f"| {rate['ours'] / rate['original']:.2f}x "
            f"| {memory['ours']:,.0f} | {memory['original']:,.0f} "
            f"| {memory['ours'] / memory['original']:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
