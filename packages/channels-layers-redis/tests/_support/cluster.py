"""A three-master Redis Cluster, no replicas."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from .servers import RedisProcess, free_port, require_binary, running


def _node(directory: Path) -> RedisProcess:
    return RedisProcess(
        directory,
        "--cluster-enabled",
        "yes",
        # A free port for the cluster bus too (by default the port + 10000).
        "--cluster-port",
        str(free_port()),
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "2000",
    )


@contextlib.contextmanager
def cluster_running(directory: Path) -> Iterator[list[RedisProcess]]:
    """Three nodes joined into one cluster, once every slot is served."""
    nodes = [_node(directory) for _ in range(3)]
    with running(*nodes):
        subprocess.run(
            [
                require_binary("redis-cli"),
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 20
        while "cluster_state:ok" not in nodes[0].cli("CLUSTER", "INFO"):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not become ready")
            time.sleep(0.1)
        yield nodes
