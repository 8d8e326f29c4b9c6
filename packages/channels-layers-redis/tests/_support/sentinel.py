"""A master, its replica, and one Sentinel (quorum 1) watching them."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .servers import RedisProcess, free_port, require_binary, running

MASTER_NAME = "testmaster"


def _write_config(directory: Path, port: int, master: RedisProcess) -> Path:
    config = directory / "sentinel.conf"
    config.write_text(
        f"port {port}\n"
        "bind 127.0.0.1\n"
        f"dir {directory}\n"
        f"logfile {directory / 'sentinel.log'}\n"
        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master.port} 1\n"
        f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
        f"sentinel failover-timeout {MASTER_NAME} 5000\n"
    )
    return config


def _wait_until_watched(sentinel: RedisProcess, replica: RedisProcess) -> None:
    """Until the Sentinel knows the master and its replica, and the replica has synced."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        out = sentinel.cli("SENTINEL", "REPLICAS", MASTER_NAME)
        if str(replica.port) in out and "s_down" not in out:
            break
        time.sleep(0.1)
    else:
        raise RuntimeError("the Sentinel never saw the replica")
    while "master_link_status:up" not in replica.cli("INFO", "replication"):
        if time.monotonic() > deadline:
            raise RuntimeError("the replica never synced with its master")
        time.sleep(0.05)


@contextlib.contextmanager
def sentinel_running(directory: Path) -> Iterator[dict[str, Any]]:
    """The setup the Sentinel tests use: ``sentinels``, ``master_name``, and the
    ``master``, ``replica`` and ``sentinel`` processes."""
    # Replicas sync at once (Redis waits 5 s for more replicas by default).
    master = RedisProcess(directory, "--repl-diskless-sync-delay", "0")
    replica = RedisProcess(directory, "--repl-diskless-sync-delay", "0")
    replica.extra += ["--replicaof", "127.0.0.1", str(master.port)]
    sentinel_port = free_port()
    sentinel_dir = directory / f"sentinel-{sentinel_port}"
    sentinel_dir.mkdir()
    config = _write_config(sentinel_dir, sentinel_port, master)
    with running(master, replica):
        process = subprocess.Popen(
            [require_binary("redis-server"), str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # A RedisProcess over the Sentinel's process, for its port and redis-cli.
            sentinel = RedisProcess(directory, port=sentinel_port)
            sentinel.process = process
            sentinel.wait_until_up()
            _wait_until_watched(sentinel, replica)
            yield {
                "sentinels": [("127.0.0.1", sentinel_port)],
                "master_name": MASTER_NAME,
                "master": master,
                "replica": replica,
                "sentinel": sentinel,
            }
        finally:
            process.terminate()
            process.wait(timeout=5)
