"""Benchmark: channels-layers-redis against channels_redis 4.3.0, on one Redis.

    python bench/redis_layer.py                   # the full run (about 6 minutes)
    python bench/redis_layer.py --quick           # a smoke test (under a minute)
    python bench/redis_layer.py --json out.json   # also write every number
    python bench/redis_layer.py --layers pubsub --rounds 5
    python bench/redis_layer.py --redis-py        # also ours over redis-py's client

What it does, in one run:

1. starts its own ``redis-server`` on a free port, pinned to CPU 1;
2. makes (once, then reuses) a virtualenv with ``channels_redis==4.3.0`` from
   PyPI (``--original-venv`` to choose where; ``uv`` is used if present),
   which also brings the Channels release it depends on;
3. for each layer (``--layers``), runs the same workload in a child process
   pinned to CPU 0, once with ours (from this interpreter) and once with the
   original (from its virtualenv), on the same Redis, flushed between them;
   ``--rounds`` times, alternating which goes first, so that a slow moment of
   a shared machine does not land on one side only;
4. prints the medians side by side with the spread of the rounds, the
   ratio ours/original (above 1 is better for us, whatever the unit), and
   the issue's targets.

The layers, each ours against the original class of the same import path:

* ``core``: ``channels_redis.core.RedisChannelLayer``;
* ``pubsub``: ``channels_redis.pubsub.RedisPubSubChannelLayer``;
* ``inmemory``: ``channels.layers.InMemoryChannelLayer`` (channels-core
  against the Channels release channels_redis 4.3.0 installs).

The workload (``--worker`` runs it in the child):

* Redis itself, for scale: serial ``PING`` round trips through redis-py's
  asyncio client, and over a plain blocking socket (the round-trip limit).
* ``serial``: on one ``new_channel()``, ``send`` then ``receive``, one at a
  time: rate, p50 and p99 of the round trip.
* ``sequential``: one task awaiting each ``send`` in turn while another
  receives, the sender waiting only while 50 messages are unreceived (a
  consumer relaying what it gets): rate until all are received, p50 and p99
  of one awaited ``send``.
* ``inflight``: 50 tasks each sending and waiting for their own message, one
  receiving task: rate, p50 and p99 of the round trip.
* ``group_add`` per member (1,000 members, one after the other).
* ``group_send`` to groups of 1, 100 and 1,000 members, each member a
  ``new_channel()`` with a task waiting in ``receive()``: the time until
  every member has received, p50 over several rounds.

Every layer gets ``capacity=2000``: channels_redis counts the capacity of all
of a process's channels together, and would drop most of a 1,000-member
group_send at the default of 100. (channels_redis's Pub/Sub layer has no
capacity and ignores the option.)

``--json`` writes the machine, the versions, the date, every round of every
layer and the table's rows (medians, spreads, ratios): the input of the
documentation's plots.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ORIGINAL = "channels_redis==4.3.0"
LAYERS = ("core", "pubsub", "inmemory")
#: How many messages the sequential sender leaves unreceived at most.
WINDOW = 50


# -- the workload (runs in the child process) -----------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timings(
    count: int, elapsed: float, cpu_seconds: float, latencies: list[float]
) -> dict[str, float]:
    """A row's numbers; the CPU time (user and system) of the layer's process per
    message moves far less than the rate when other processes share the CPU."""
    return {
        "rate": count / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "cpu_us": cpu_seconds / count * 1e6,
    }


async def redis_ping_rate(url: str, count: int) -> float:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    await client.ping()
    started = time.perf_counter()
    for _ in range(count):
        await client.execute_command("PING")
    elapsed = time.perf_counter() - started
    await client.aclose()
    return count / elapsed


def socket_ping_rate(url: str, count: int) -> float:
    """Serial PINGs over a blocking socket: a round trip and nothing else."""
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    with socket.create_connection((host, int(port))) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.perf_counter()
        for _ in range(count):
            sock.sendall(b"PING\r\n")
            if sock.recv(64) != b"+PONG\r\n":
                raise RuntimeError("Redis did not answer PING with one +PONG")
        return count / (time.perf_counter() - started)


async def serial_round_trips(layer: Any, count: int) -> dict[str, float]:
    channel = await layer.new_channel()
    message = {"type": "bench.message", "text": "hello"}
    for _ in range(min(200, count)):
        await layer.send(channel, message)
        await layer.receive(channel)
    latencies = []
    cpu = time.process_time()
    started = time.perf_counter()
    for _ in range(count):
        sent = time.perf_counter()
        await layer.send(channel, message)
        await layer.receive(channel)
        latencies.append(time.perf_counter() - sent)
    elapsed = time.perf_counter() - started
    return timings(count, elapsed, time.process_time() - cpu, latencies)


async def sequential_sender(layer: Any, count: int, window: int) -> dict[str, float]:
    """One task awaiting each send, at most *window* messages unreceived."""
    channel = await layer.new_channel()
    message = {"type": "bench.message", "text": "hello"}
    received = 0
    room = asyncio.Event()

    async def receiver(total: int) -> None:
        nonlocal received
        for _ in range(total):
            await layer.receive(channel)
            received += 1
            room.set()

    async def run(total: int, latencies: list[float]) -> tuple[float, float]:
        nonlocal received
        received = 0
        receiving = asyncio.ensure_future(receiver(total))
        cpu = time.process_time()
        started = time.perf_counter()
        for sent in range(total):
            while sent - received >= window:
                room.clear()
                await room.wait()
            one = time.perf_counter()
            await layer.send(channel, message)
            latencies.append(time.perf_counter() - one)
        await asyncio.wait_for(receiving, 60)
        return time.perf_counter() - started, time.process_time() - cpu

    await run(min(500, count), [])  # warm up
    latencies: list[float] = []
    elapsed, cpu_seconds = await run(count, latencies)
    return timings(count, elapsed, cpu_seconds, latencies)


async def in_flight_round_trips(layer: Any, count: int, in_flight: int) -> dict[str, float]:
    channel = await layer.new_channel()
    waiting: dict[int, asyncio.Future[None]] = {}
    loop = asyncio.get_running_loop()

    async def receiver() -> None:
        while True:
            message = await layer.receive(channel)
            future = waiting.pop(message["id"], None)
            if future is not None and not future.done():
                future.set_result(None)

    latencies: list[float] = []
    per_sender = count // in_flight

    async def sender(number: int) -> None:
        for sequence in range(per_sender):
            identifier = number * per_sender + sequence
            future = waiting[identifier] = loop.create_future()
            sent = time.perf_counter()
            await layer.send(channel, {"type": "bench.message", "id": identifier})
            await future
            latencies.append(time.perf_counter() - sent)

    receiving = asyncio.ensure_future(receiver())
    # Warm up, then measure.
    await asyncio.gather(*(sender(number) for number in range(in_flight)))
    latencies.clear()
    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(sender(number) for number in range(in_flight)))
    elapsed = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu
    receiving.cancel()
    await asyncio.gather(receiving, return_exceptions=True)
    return timings(per_sender * in_flight, elapsed, cpu_seconds, latencies)


async def group_add_cost(layer: Any, members: int) -> dict[str, float]:
    channels = [await layer.new_channel() for _ in range(members)]
    durations = []
    started = time.perf_counter()
    for channel in channels:
        one = time.perf_counter()
        await layer.group_add("bench-group-add", channel)
        durations.append(time.perf_counter() - one)
    elapsed = time.perf_counter() - started
    for channel in channels:
        await layer.group_discard("bench-group-add", channel)
    return {
        "mean_ms": elapsed / members * 1000,
        "p50_ms": percentile(durations, 0.5) * 1000,
        "p99_ms": percentile(durations, 0.99) * 1000,
    }


async def group_send_until_received(layer: Any, members: int, rounds: int) -> dict[str, float]:
    group = f"bench-group-{members}"
    channels = [await layer.new_channel() for _ in range(members)]
    for channel in channels:
        await layer.group_add(group, channel)
    durations = []
    for round_number in range(rounds + 1):
        receivers = [asyncio.ensure_future(layer.receive(channel)) for channel in channels]
        await asyncio.sleep(0.05)  # every receiver is waiting
        started = time.perf_counter()
        await layer.group_send(group, {"type": "bench.group", "round": round_number})
        received = await asyncio.wait_for(asyncio.gather(*receivers), 60)
        elapsed = time.perf_counter() - started
        if any(message["round"] != round_number for message in received):
            raise RuntimeError("a member received the wrong message")
        if round_number:  # the first round warms up
            durations.append(elapsed)
    for channel in channels:
        await layer.group_discard(group, channel)
    return {
        "p50_ms": percentile(durations, 0.5) * 1000,
        "min_ms": min(durations) * 1000,
        "max_ms": max(durations) * 1000,
    }


def make_layer(kind: str, url: str, client: str) -> Any:
    """The layer *kind* of whichever package this interpreter imports."""
    if kind == "inmemory":
        from channels.layers import InMemoryChannelLayer

        return InMemoryChannelLayer(capacity=2000)
    if kind == "pubsub":
        from channels_redis.pubsub import RedisPubSubChannelLayer

        layer: Any = RedisPubSubChannelLayer(hosts=[url], capacity=2000)
    else:
        from channels_redis.core import RedisChannelLayer

        layer = RedisChannelLayer(hosts=[url], capacity=2000)
    if client == "redis-py":
        layer._link_to_servers = False
    return layer


async def run_workload(kind: str, url: str, quick: bool, client: str = "link") -> dict[str, Any]:
    layer = make_layer(kind, url, client)
    scale = 10 if kind == "inmemory" else 1  # the same seconds, roughly
    sizes = {"serial": 300, "sequential": 1000, "inflight": 2000, "group_add": 200, "rounds": 3}
    if not quick:
        sizes = {
            "serial": 5000,
            "sequential": 10_000,
            "inflight": 20_000,
            "group_add": 1000,
            "rounds": 15,
        }
    results: dict[str, Any] = {}
    if kind != "inmemory":
        results["redis_ping_rate"] = await redis_ping_rate(url, sizes["serial"])
        results["socket_ping_rate"] = socket_ping_rate(url, sizes["serial"])
    collections = sum(generation["collections"] for generation in gc.get_stats())
    results["serial"] = await serial_round_trips(layer, sizes["serial"] * scale)
    results["sequential"] = await sequential_sender(layer, sizes["sequential"] * scale, WINDOW)
    results["inflight"] = await in_flight_round_trips(layer, sizes["inflight"] * scale, 50)
    results["group_add"] = await group_add_cost(layer, sizes["group_add"])
    results["group_send"] = {}
    for members in (1, 100, 1000):
        rounds = sizes["rounds"] if members < 1000 else max(3, sizes["rounds"] // 2)
        results["group_send"][str(members)] = await group_send_until_received(
            layer, members, rounds
        )
    results["gc_collections"] = (
        sum(generation["collections"] for generation in gc.get_stats()) - collections
    )
    await layer.flush()
    close = getattr(layer, "close_pools", None)
    if close is not None:
        await close()
    return results


def installed_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for distribution in ("channels-layers-redis", "channels_redis", "channels-core", "channels"):
        try:
            found[distribution] = version(distribution)
        except PackageNotFoundError:
            pass
    try:
        found["redis-py"] = version("redis")
    except PackageNotFoundError:
        pass
    return found


def worker_main(arguments: argparse.Namespace) -> None:
    if arguments.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {arguments.cpu})
    results = asyncio.run(
        run_workload(arguments.layer, arguments.redis_url, arguments.quick, arguments.client)
    )
    results["versions"] = installed_versions()
    print(json.dumps(results))


# -- the driver -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(directory: Path, cpu: int | None) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not on PATH")
    port = free_port()
    process = subprocess.Popen(
        [
            *(binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "no", "--dir", str(directory)),
            *("--logfile", str(directory / "redis.log")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(process.pid, {cpu})
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                sys.exit("redis-server did not start")
            time.sleep(0.05)
    return process, f"redis://127.0.0.1:{port}/0"


def original_python(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if python.exists():
        return python
    print(f"Making a virtualenv with {ORIGINAL} in {venv} ...", file=sys.stderr)
    uv = shutil.which("uv")
    if uv:
        subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(venv)], check=True)
        subprocess.run([uv, "pip", "install", "-q", "--python", str(python), ORIGINAL], check=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", ORIGINAL], check=True)
    return python


def run_worker(
    python: Path, kind: str, url: str, quick: bool, cpu: int | None, client: str = "link"
) -> dict[str, Any]:
    command = [str(python), str(Path(__file__).resolve()), "--worker", "--redis-url", url]
    command += ["--layer", kind, "--client", client]
    if quick:
        command.append("--quick")
    if cpu is not None:
        command += ["--cpu", str(cpu)]
    # The child must import the layer of its own environment, never this checkout's.
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(command, capture_output=True, check=False, env=environment, text=True)
    if done.returncode != 0:
        sys.exit(f"the {kind} worker ({python}) failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def flush_redis(url: str) -> None:
    port = url.rsplit(":", 1)[1].split("/")[0]
    cli = shutil.which("redis-cli")
    if cli:
        subprocess.run([cli, "-p", port, "FLUSHALL"], check=True, capture_output=True)


def redis_version() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        return "?"
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    for word in done.stdout.split():
        if word.startswith("v="):
            return word[2:]
    return done.stdout.strip()


def machine() -> dict[str, Any]:
    from _machine import describe  # bench/, beside this script

    return {**describe(), "redis_server": redis_version()}


# -- the table ------------------------------------------------------------------------------

#: (row, metric path, unit, which is better); a row whose value a layer
#: lacks (Redis PINGs for the in-memory layer) is left out.
ROWS: list[tuple[str, tuple[str, ...], str, str]] = [
    ("Redis PING, serial (redis-py)", ("redis_ping_rate",), "/s", "higher"),
    ("Redis PING, serial (socket)", ("socket_ping_rate",), "/s", "higher"),
    ("round trips, serial", ("serial", "rate"), "/s", "higher"),
    ("  p50 latency", ("serial", "p50_ms"), "ms", "lower"),
    ("  p99 latency", ("serial", "p99_ms"), "ms", "lower"),
    ("  CPU per round trip", ("serial", "cpu_us"), "us", "lower"),
    (f"sequential sender, {WINDOW} unreceived", ("sequential", "rate"), "msg/s", "higher"),
    ("  p50 of one send", ("sequential", "p50_ms"), "ms", "lower"),
    ("  p99 of one send", ("sequential", "p99_ms"), "ms", "lower"),
    ("  CPU per message", ("sequential", "cpu_us"), "us", "lower"),
    ("round trips, 50 in flight", ("inflight", "rate"), "msg/s", "higher"),
    ("  p50 latency", ("inflight", "p50_ms"), "ms", "lower"),
    ("  p99 latency", ("inflight", "p99_ms"), "ms", "lower"),
    ("  CPU per message", ("inflight", "cpu_us"), "us", "lower"),
    ("group_add, mean per member", ("group_add", "mean_ms"), "ms", "lower"),
    *(
        (
            f"group_send to {members}, all received (p50)",
            ("group_send", members, "p50_ms"),
            "ms",
            "lower",
        )
        for members in ("1", "100", "1000")
    ),
]


def lookup(results: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = results
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value)


def summarise(runs: list[dict[str, Any]], path: tuple[str, ...]) -> dict[str, float] | None:
    values = [value for value in (lookup(run, path) for run in runs) if value is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def table_rows(kind: str, runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rows of one layer: medians and spreads per implementation, and the ratio."""
    rows = []
    for name, path, unit, better in ROWS:
        entry: dict[str, Any] = {
            "layer": kind,
            "row": name.strip(),
            "label": name,
            "metric": ".".join(path),
            "unit": unit,
            "better": better,
        }
        for implementation, results in runs.items():
            entry[implementation] = summarise(results, path)
        ours, theirs = entry.get("ours"), entry.get("original")
        if ours is None:
            continue
        entry["ratio"] = None
        if theirs and ours["median"] and theirs["median"]:
            # Above 1 means ours is better, whichever way the unit goes.
            quotient = ours["median"] / theirs["median"]
            entry["ratio"] = quotient if better == "higher" else 1 / quotient
        rows.append(entry)
    return rows


def spread(summary: dict[str, float] | None) -> str:
    if summary is None:
        return f"{'-':>12}{'':>17}"
    low, high = summary["min"], summary["max"]
    digits = 0 if summary["median"] >= 100 else 3
    return f"{summary['median']:12.{digits}f} [{low:7.{digits}f}-{high:7.{digits}f}]"


def report(layers: dict[str, dict[str, Any]], redis_py: bool) -> list[str]:
    lines = []
    for kind, data in layers.items():
        versions = data["versions"]
        lines.append("")
        lines.append(
            f"== {kind}: ours ({versions.get('ours', '?')}) against the original "
            f"({versions.get('original', 'not run')}); medians of {data['rounds']} "
            "rounds [min-max]"
        )
        header = f"{'':<38}{'ours':>29}{'original':>29}"
        if redis_py:
            header += f"{'ours, redis-py':>29}"
        lines.append(header + f" {'':<6}{'ours/orig':>10}")
        for row in data["rows"]:
            text = f"{row['label']:<38}{spread(row.get('ours'))}{spread(row.get('original'))}"
            if redis_py:
                text += spread(row.get("ours_redis_py"))
            ratio = f"{row['ratio']:9.2f}x" if row.get("ratio") else ""
            lines.append(text + f" {row['unit']:<6}{ratio:>10}")
    lines.append("")
    for found in checks(layers):
        measured = f"{found['value']:.2f}{found['unit']}"
        lines.append(f"{'met' if found['met'] else 'NOT met':>8}  {found['check']} ({measured})")
    return lines


def checks(layers: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets that this run can judge: what, the value measured, met or not."""

    def value(kind: str, metric: str, implementation: str = "ours") -> float | None:
        for row in layers.get(kind, {}).get("rows", []):
            if row["metric"] == metric and row.get(implementation):
                return float(row[implementation]["median"])
        return None

    def ratio(kind: str, metric: str) -> float | None:
        for row in layers.get(kind, {}).get("rows", []):
            if row["metric"] == metric:
                return row.get("ratio")
        return None

    found: list[dict[str, Any]] = []

    def check(name: str, measured: float, unit: str, met: bool) -> None:
        found.append({"check": name, "value": measured, "unit": unit, "met": met})

    for kind in ("core", "pubsub"):
        if kind not in layers:
            continue
        for metric, what in (("serial.rate", "serial"), ("sequential.rate", "sequential")):
            quotient = ratio(kind, metric)
            if quotient is not None:
                target = 1.5 if kind == "pubsub" else 1.0
                name = f"{kind} {what} >= {target}x the original"
                check(name, quotient, "x", quotient >= target)
        p50, p99 = value(kind, "serial.p50_ms"), value(kind, "serial.p99_ms")
        if p50 and p99:
            check(f"{kind} serial p99 <= 3x p50", p99 / p50, "x", p99 <= 3 * p50)
    if "core" in layers:
        ping, serial = value("core", "redis_ping_rate"), value("core", "serial.rate")
        sequential = value("core", "sequential.rate")
        if ping and serial:
            # Two awaited round trips per send-then-receive at most.
            share = serial / (ping / 2)
            check("core serial >= 0.8x the round-trip limit, PING/2", share, "x", share >= 0.8)
        if serial and sequential:
            quotient = sequential / serial
            check("core sequential >= 2x its serial rate", quotient, "x", quotient >= 2)
        fan_out = value("core", "group_send.1000.p50_ms")
        if fan_out is not None:
            check("core group_send to 1,000 <= 10 ms", fan_out, "ms", fan_out <= 10)
    return found


def run_all(
    arguments: argparse.Namespace, url: str, layer_cpu: int | None
) -> dict[str, dict[str, Any]]:
    ours_python = Path(sys.executable)
    original = None if arguments.skip_original else original_python(arguments.original_venv)
    implementations: list[tuple[str, Callable[[str], dict[str, Any]]]] = []

    def worker(python: Path, client: str = "link") -> Callable[[str], dict[str, Any]]:
        def run(kind: str) -> dict[str, Any]:
            result = run_worker(python, kind, url, arguments.quick, layer_cpu, client)
            flush_redis(url)
            return result

        return run

    implementations.append(("ours", worker(ours_python)))
    if original is not None:
        implementations.append(("original", worker(original)))
    if arguments.redis_py:
        implementations.append(("ours_redis_py", worker(ours_python, "redis-py")))
    kinds = [kind.strip() for kind in arguments.layers.split(",") if kind.strip()]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {kind: {} for kind in kinds}
    for round_number in range(arguments.rounds):
        # Ours first in even rounds, the original first in odd ones.
        order = implementations if round_number % 2 == 0 else implementations[::-1]
        for kind in kinds:
            for name, run in order:
                if kind == "inmemory" and name == "ours_redis_py":
                    continue  # no Redis client to choose
                progress = f"round {round_number + 1}/{arguments.rounds}: {kind}, {name}"
                print(progress, file=sys.stderr)
                runs[kind].setdefault(name, []).append(run(kind))
    layers: dict[str, dict[str, Any]] = {}
    for kind, by_implementation in runs.items():
        versions = {}
        for name, results in by_implementation.items():
            installed = results[0].get("versions", {})
            package = "channels" if kind == "inmemory" else "channels_redis"
            ours_package = "channels-core" if kind == "inmemory" else "channels-layers-redis"
            versions[name] = installed.get(ours_package) or installed.get(package, "?")
        layers[kind] = {
            "class": {
                "core": "channels_redis.core.RedisChannelLayer",
                "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "inmemory": "channels.layers.InMemoryChannelLayer",
            }[kind],
            "versions": versions,
            "rounds": arguments.rounds,
            "runs": by_implementation,
            "rows": table_rows(kind, by_implementation),
        }
    return layers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--layers",
        default=",".join(LAYERS),
        help=f"which layers, comma-separated (default: {','.join(LAYERS)})",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="paired rounds per layer (default: 3)"
    )
    parser.add_argument(
        "--original-venv",
        type=Path,
        default=Path(tempfile.gettempdir()) / "channels-bench-channels_redis-4.3.0",
        help="the virtualenv with channels_redis 4.3.0 (made if missing)",
    )
    parser.add_argument("--skip-original", action="store_true", help="only run our layers")
    parser.add_argument(
        "--redis-py",
        action="store_true",
        help="also run our Redis layers with redis-py's client instead of our link",
    )
    parser.add_argument("--layer", default="core", help=argparse.SUPPRESS)
    parser.add_argument("--client", default="link", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        worker_main(arguments)
        return
    unknown = set(arguments.layers.split(",")) - set(LAYERS)
    if unknown:
        parser.error(f"unknown layers {sorted(unknown)}: choose from {', '.join(LAYERS)}")
    if arguments.rounds < 1:
        parser.error("--rounds must be at least 1")

    cpus = os.cpu_count() or 1
    pinned = cpus >= 2 and hasattr(os, "sched_setaffinity")
    layer_cpu, redis_cpu = (0, 1) if pinned else (None, None)
    if layer_cpu is None:
        print("fewer than 2 CPUs (or no affinity): running unpinned", file=sys.stderr)
    started = datetime.datetime.now(datetime.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        process, url = start_redis(Path(directory), redis_cpu)
        try:
            layers = run_all(arguments, url, layer_cpu)
        finally:
            process.terminate()
            process.wait(timeout=10)
    print("\n".join(report(layers, arguments.redis_py)))
    if arguments.json:
        numbers = {
            "benchmark": "bench/redis_layer.py",
            "date": started.isoformat(timespec="seconds"),
            "seconds": round(
                (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()
            ),
            "quick": arguments.quick,
            "machine": machine(),
            "pinned": {"layer_cpu": layer_cpu, "redis_cpu": redis_cpu},
            "original": ORIGINAL,
            "layers": layers,
            "checks": checks(layers),
        }
        arguments.json.write_text(json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
