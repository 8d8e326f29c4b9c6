"""Benchmark: channels-layers-redis against channels_redis 4.3.0, on one Redis.

    python bench/redis_layer.py                 # the full run (a few minutes)
    python bench/redis_layer.py --quick         # a smoke test (seconds)
    python bench/redis_layer.py --json out.json # also write the numbers
    python bench/redis_layer.py --redis-py      # also ours over redis-py's client

What it does, in one run:

1. starts its own ``redis-server`` on a free port, pinned to CPU 1;
2. makes (once, then reuses) a virtualenv with ``channels_redis==4.3.0`` from
   PyPI (``--original-venv`` to choose where; ``uv`` is used if present);
3. runs the same workload in a child process for each layer, pinned to CPU 0
   (our layer from this interpreter, the original from its virtualenv), on
   the same Redis, flushed between them;
4. prints both side by side, with the issue's targets.

With ``--redis-py`` our layer runs a second time with every command going
through redis-py's asyncio client instead of our pipelined link (the layer's
private ``_link_to_servers = False``; sends still batched the same way), and
a third column says how many times faster the link is.

The workload (``--worker`` runs it in the child):

* Redis itself: serial ``PING`` round trips through redis-py, for scale.
* Round trips on one process-specific channel (``new_channel()``): ``send``
  then ``receive``, one at a time; and with 50 in flight (50 tasks each
  sending and waiting for their own message, one receiving task) -- rate,
  p50 and p99 latency.
* ``group_add`` per member (1,000 members, one after the other).
* ``group_send`` to groups of 1, 100 and 1,000 members, each member a
  ``new_channel()`` with a task waiting in ``receive()``: the time until
  every member has received, p50 over several rounds.

Both layers get ``capacity=2000``: channels_redis counts the capacity of all
of a process's channels together, and would drop most of a 1,000-member
group_send at the default of 100.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ORIGINAL = "channels_redis==4.3.0"
TARGETS = {
    "serial_ratio": 10.0,  # our serial round trips / the original's
    "inflight_rate": 20_000.0,  # messages per second with 50 in flight
    "group_send_1000_ms": 10.0,
    "group_add_ms": 0.2,
}


# -- the workload (runs in the child process) -----------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


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


async def serial_round_trips(layer: Any, count: int) -> dict[str, float]:
    channel = await layer.new_channel()
    message = {"type": "bench.message", "text": "hello"}
    for _ in range(min(200, count)):
        await layer.send(channel, message)
        await layer.receive(channel)
    latencies = []
    started = time.perf_counter()
    for _ in range(count):
        sent = time.perf_counter()
        await layer.send(channel, message)
        await layer.receive(channel)
        latencies.append(time.perf_counter() - sent)
    elapsed = time.perf_counter() - started
    return {
        "rate": count / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


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
    started = time.perf_counter()
    await asyncio.gather(*(sender(number) for number in range(in_flight)))
    elapsed = time.perf_counter() - started
    receiving.cancel()
    await asyncio.gather(receiving, return_exceptions=True)
    done = per_sender * in_flight
    return {
        "rate": done / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


async def group_add_cost(layer: Any, members: int) -> dict[str, float]:
    channels = [await layer.new_channel() for _ in range(members)]
    timings = []
    started = time.perf_counter()
    for channel in channels:
        one = time.perf_counter()
        await layer.group_add("bench-group-add", channel)
        timings.append(time.perf_counter() - one)
    elapsed = time.perf_counter() - started
    for channel in channels:
        await layer.group_discard("bench-group-add", channel)
    return {
        "mean_ms": elapsed / members * 1000,
        "p50_ms": percentile(timings, 0.5) * 1000,
        "p99_ms": percentile(timings, 0.99) * 1000,
    }


async def group_send_until_received(layer: Any, members: int, rounds: int) -> dict[str, float]:
    group = f"bench-group-{members}"
    channels = [await layer.new_channel() for _ in range(members)]
    for channel in channels:
        await layer.group_add(group, channel)
    timings = []
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
            timings.append(elapsed)
    for channel in channels:
        await layer.group_discard(group, channel)
    return {
        "p50_ms": percentile(timings, 0.5) * 1000,
        "min_ms": min(timings) * 1000,
        "max_ms": max(timings) * 1000,
    }


async def run_workload(url: str, quick: bool, client: str = "link") -> dict[str, Any]:
    from channels_redis.core import RedisChannelLayer

    layer = RedisChannelLayer(hosts=[url], capacity=2000)
    if client == "redis-py":
        layer._link_to_servers = False  # type: ignore[attr-defined]
    sizes = {"serial": 300, "inflight": 2000, "group_add": 200, "rounds": 3}
    if not quick:
        sizes = {"serial": 5000, "inflight": 50_000, "group_add": 1000, "rounds": 15}
    results: dict[str, Any] = {}
    results["redis_ping_rate"] = await redis_ping_rate(url, sizes["serial"])
    results["serial"] = await serial_round_trips(layer, sizes["serial"])
    results["inflight"] = await in_flight_round_trips(layer, sizes["inflight"], 50)
    results["group_add"] = await group_add_cost(layer, sizes["group_add"])
    results["group_send"] = {}
    for members in (1, 100, 1000):
        rounds = sizes["rounds"] if members < 1000 else max(3, sizes["rounds"] // 2)
        results["group_send"][str(members)] = await group_send_until_received(
            layer, members, rounds
        )
    await layer.flush()
    close = getattr(layer, "close_pools", None)
    if close is not None:
        await close()
    return results


def worker_main(arguments: argparse.Namespace) -> None:
    if arguments.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {arguments.cpu})
    results = asyncio.run(run_workload(arguments.redis_url, arguments.quick, arguments.client))
    import channels_redis

    results["version"] = getattr(channels_redis, "__version__", "?")
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
    python: Path, url: str, quick: bool, cpu: int | None, client: str = "link"
) -> dict[str, Any]:
    command = [str(python), str(Path(__file__).resolve()), "--worker", "--redis-url", url]
    command += ["--client", client]
    if quick:
        command.append("--quick")
    if cpu is not None:
        command += ["--cpu", str(cpu)]
    # The child must import the layer of its own environment, never this checkout's.
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(command, capture_output=True, check=False, env=environment, text=True)
    if done.returncode != 0:
        sys.exit(f"the worker failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def flush_redis(url: str) -> None:
    port = url.rsplit(":", 1)[1].split("/")[0]
    cli = shutil.which("redis-cli")
    if cli:
        subprocess.run([cli, "-p", port, "FLUSHALL"], check=True, capture_output=True)


def report(
    ours: dict[str, Any], original: dict[str, Any] | None, redis_py: dict[str, Any] | None = None
) -> list[str]:
    lines = []

    def row(name: str, key: tuple[str, ...], unit: str, better: str, target: str = "") -> None:
        def get(results: dict[str, Any] | None) -> float | None:
            value: Any = results
            for part in key:
                if value is None:
                    return None
                value = value.get(part)
            return float(value) if value is not None else None

        def times(mine: float | None, theirs: float | None, digits: int) -> str:
            if not mine or not theirs:
                return ""
            factor = mine / theirs if better == "higher" else theirs / mine
            return f"{factor:8.{digits}f}x"

        mine, theirs, slower = get(ours), get(original), get(redis_py)
        ratio = times(mine, theirs, 1)
        theirs_text = f"{theirs:12.3f}" if theirs is not None else f"{'-':>12}"
        if redis_py is None:
            lines.append(f"{name:<42}{mine:12.3f}{theirs_text} {unit:<8}{ratio:>10}  {target}")
            return
        slower_text = f"{slower:12.3f}" if slower is not None else f"{'-':>12}"
        link_ratio = times(mine, slower, 2)
        lines.append(
            f"{name:<42}{mine:12.3f}{slower_text}{theirs_text} {unit:<8}{link_ratio:>10}"
            f"{ratio:>10}  {target}"
        )

    version = original.get("version", "?") if original else "not run"
    if redis_py is None:
        lines.append(f"{'':<42}{'ours':>12}{'4.3.0' if original else '':>12}")
    else:
        lines.append(
            f"{'':<42}{'ours':>12}{'redis-py':>12}{'4.3.0' if original else '':>12}"
            f" {'':<8}{'link/r-py':>10}{'ours/4.3.0' if original else '':>10}"
        )
    lines.append(f"{'(channels_redis ' + str(version) + ')':<42}")
    row("Redis PING, serial (redis-py)", ("redis_ping_rate",), "/s", "higher")
    row("round trips, serial", ("serial", "rate"), "/s", "higher", ">= 10x the original")
    row("  p50 latency", ("serial", "p50_ms"), "ms", "lower")
    row("  p99 latency", ("serial", "p99_ms"), "ms", "lower")
    row("round trips, 50 in flight", ("inflight", "rate"), "msg/s", "higher", ">= 20,000/s")
    row("  p50 latency", ("inflight", "p50_ms"), "ms", "lower")
    row("  p99 latency", ("inflight", "p99_ms"), "ms", "lower")
    row("group_add, mean per member", ("group_add", "mean_ms"), "ms", "lower", "<= 0.2 ms")
    for members in ("1", "100", "1000"):
        target = "<= 10 ms" if members == "1000" else ""
        row(
            f"group_send to {members}, all received (p50)",
            ("group_send", members, "p50_ms"),
            "ms",
            "lower",
            target,
        )
    checks = {
        "serial round trips >= 10x": original is not None
        and ours["serial"]["rate"] >= TARGETS["serial_ratio"] * original["serial"]["rate"],
        "50 in flight >= 20,000/s": ours["inflight"]["rate"] >= TARGETS["inflight_rate"],
        "group_send to 1,000 <= 10 ms": ours["group_send"]["1000"]["p50_ms"]
        <= TARGETS["group_send_1000_ms"],
        "group_add <= 0.2 ms": ours["group_add"]["mean_ms"] <= TARGETS["group_add_ms"],
    }
    lines.append("")
    for name, passed in checks.items():
        lines.append(f"{'met' if passed else 'NOT met':>8}  {name}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--original-venv",
        type=Path,
        default=Path(tempfile.gettempdir()) / "channels-bench-channels_redis-4.3.0",
        help="the virtualenv with channels_redis 4.3.0 (made if missing)",
    )
    parser.add_argument("--skip-original", action="store_true", help="only run our layer")
    parser.add_argument(
        "--redis-py",
        action="store_true",
        help="also run our layer with redis-py's client instead of our link",
    )
    parser.add_argument("--client", default="link", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        worker_main(arguments)
        return

    cpus = os.cpu_count() or 1
    pinned = cpus >= 2 and hasattr(os, "sched_setaffinity")
    layer_cpu, redis_cpu = (0, 1) if pinned else (None, None)
    if layer_cpu is None:
        print("fewer than 2 CPUs (or no affinity): running unpinned", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        process, url = start_redis(Path(directory), redis_cpu)
        try:
            original = None
            if not arguments.skip_original:
                python = original_python(arguments.original_venv)
                original = run_worker(python, url, arguments.quick, layer_cpu)
                flush_redis(url)
            redis_py = None
            if arguments.redis_py:
                redis_py = run_worker(
                    Path(sys.executable), url, arguments.quick, layer_cpu, "redis-py"
                )
                flush_redis(url)
            ours = run_worker(Path(sys.executable), url, arguments.quick, layer_cpu)
        finally:
            process.terminate()
            process.wait(timeout=10)
    print("\n".join(report(ours, original, redis_py)))
    if arguments.json:
        numbers = {"ours": ours, "original": original, "ours_redis_py": redis_py}
        arguments.json.write_text(json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
