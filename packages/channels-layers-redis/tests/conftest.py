"""Real Redis servers for the tests, started on free ports in temporary directories.

Every fixture here runs ``redis-server`` (and ``redis-cli`` for the Cluster)
from ``PATH``. A missing binary fails the tests that need it: a skip would let
CI pass without ever talking to Redis.

* ``redis_server``: one plain server for the session; ``redis_url`` empties
  it before each test and gives its URL.
* ``shard_servers``: two more plain servers, for sharding.
* ``restartable_redis``: a server of the test's own, to kill and restart, or
  to freeze and thaw.
* ``sentinel_setup``: a master, a replica and a Sentinel watching them.
* ``cluster_nodes``: a three-master Redis Cluster.
* ``tls_redis``: a server that speaks TLS only, with a throwaway CA.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio


@pytest.fixture(autouse=True)
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test whose layers logged an error (receive loops log and go on)."""
    yield
    errors = [
        record
        for record in caplog.get_records("call")
        if record.name.startswith("channels_redis") and record.levelno >= logging.ERROR
    ]
    assert not errors, "channels_redis logged errors:\n" + "\n".join(
        f"{record.getMessage()}\n{record.exc_text or ''}" for record in errors
    )


@pytest.fixture
def send_while_loop_is_held() -> Callable[[Callable[..., Any], str, str, int], None]:
    """Send *count* messages to *channel* from another thread, with a layer of
    its own, while the calling event loop is held up (this call blocks it):
    what Redis hands the test's layers meanwhile waits unread in their sockets."""

    def send(layer_class: Callable[..., Any], url: str, channel: str, count: int) -> None:
        async def send_all() -> None:
            sender = layer_class(hosts=[url], capacity=10_000)
            old = [{"type": "old", "n": n} for n in range(count)]
            await asyncio.gather(*(sender.send(channel, message) for message in old))
            await sender.close_pools()

        thread = threading.Thread(target=asyncio.run, args=(send_all(),))
        thread.start()
        thread.join()

    return send


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH: these tests need a real Redis (apt install redis-server)",
            pytrace=False,
        )
    return path


class RedisProcess:
    """A ``redis-server`` child process on a fixed port of its own."""

    def __init__(self, directory: Path, *extra: str, port: int | None = None) -> None:
        self.binary = require_binary("redis-server")
        self.port = port or free_port()
        self.directory = directory / f"redis-{self.port}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.extra = list(extra)
        self.process: subprocess.Popen[bytes] | None = None
        self.tls = "--tls-port" in self.extra

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        listen = (
            ["--port", "0", "--tls-port", str(self.port)]
            if self.tls
            else ["--port", str(self.port)]
        )
        return [
            self.binary,
            *listen,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--logfile",
            str(self.directory / "redis.log"),
            *[arg for arg in self.extra if arg != "--tls-port"],
        ]

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.wait_until_up()

    def wait_until_up(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} did not start in {timeout}s")

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def freeze(self) -> None:
        """Stop the server's process (SIGSTOP): connections stay open, nothing answers."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server go on (SIGCONT) with what it was sent meanwhile."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.thaw()  # a stopped process would not act on SIGTERM
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cli(self, *args: str) -> str:
        """Run a command with redis-cli and return its output."""
        cli = require_binary("redis-cli")
        tls: list[str] = []
        if self.tls:
            certs = self.directory.parent / "certs"
            tls = [
                "--tls",
                "--cacert",
                str(certs / "ca.crt"),
                "--cert",
                str(certs / "client.crt"),
                "--key",
                str(certs / "client.key"),
            ]
        done = subprocess.run(
            [cli, "-h", "127.0.0.1", "-p", str(self.port), *tls, *args],
            capture_output=True,
            check=True,
            timeout=30,
        )
        return done.stdout.decode()


@pytest.fixture(scope="session")
def redis_directory() -> Iterator[Path]:
    # Unix socket paths must stay under 108 bytes: a deep TMPDIR (nox sets
    # one inside the session's virtualenv) would make redis-server refuse.
    parent = None if len(tempfile.gettempdir()) < 40 else "/tmp"
    directory = Path(tempfile.mkdtemp(prefix="channels-redis-tests-", dir=parent))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def running(*servers: RedisProcess) -> Iterator[None]:
    started: list[RedisProcess] = []
    try:
        for server in servers:
            server.start()
            started.append(server)
        yield
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def redis_server(redis_directory: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(redis_directory)
    server.extra = ["--unixsocket", str(server.directory / "redis.sock")]
    with running(server):
        yield server


@pytest_asyncio.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain redis-py client of the session server, to look at what the layer stored."""
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> str:
    """The session server's URL, emptied for this test."""
    redis_server.cli("FLUSHALL")
    return redis_server.url


@pytest.fixture(scope="session")
def shard_servers(redis_directory: Path) -> Iterator[list[RedisProcess]]:
    servers = [RedisProcess(redis_directory), RedisProcess(redis_directory)]
    with running(*servers):
        yield servers


@pytest.fixture
def shard_urls(shard_servers: list[RedisProcess]) -> list[str]:
    for server in shard_servers:
        server.cli("FLUSHALL")
    return [server.url for server in shard_servers]


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A server for this test alone, which it may kill and start again (same port)."""
    server = RedisProcess(tmp_path)
    with running(server):
        yield server


@pytest.fixture(scope="session")
def redis_without_blmpop(redis_directory: Path) -> Iterator[str]:
    """A server that behaves like Redis 6 for the receive loop: it has no BLMPOP."""
    server = RedisProcess(redis_directory, "--rename-command", "BLMPOP", "")
    with running(server):
        yield server.url


@pytest.fixture(scope="session")
def redis_without_info(redis_directory: Path) -> Iterator[str]:
    """A server whose INFO command is renamed away (some hosted Redis hide it)."""
    server = RedisProcess(redis_directory, "--rename-command", "INFO", "")
    with running(server):
        yield server.url


@contextlib.contextmanager
def sentinel_running(directory: Path) -> Iterator[dict[str, Any]]:
    """A master, its replica, and one Sentinel (quorum 1) watching them."""
    # Replicas sync at once (Redis waits 5 s for more replicas by default).
    master = RedisProcess(directory, "--repl-diskless-sync-delay", "0")
    replica = RedisProcess(directory, "--repl-diskless-sync-delay", "0")
    replica.extra += ["--replicaof", "127.0.0.1", str(master.port)]
    sentinel_port = free_port()
    sentinel_dir = directory / f"sentinel-{sentinel_port}"
    sentinel_dir.mkdir()
    config = sentinel_dir / "sentinel.conf"
    config.write_text(
        f"port {sentinel_port}\n"
        "bind 127.0.0.1\n"
        f"dir {sentinel_dir}\n"
        f"logfile {sentinel_dir / 'sentinel.log'}\n"
        f"sentinel monitor testmaster 127.0.0.1 {master.port} 1\n"
        "sentinel down-after-milliseconds testmaster 1000\n"
        "sentinel failover-timeout testmaster 5000\n"
    )
    with running(master, replica):
        sentinel = subprocess.Popen(
            [require_binary("redis-server"), str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            probe = RedisProcess(directory, port=sentinel_port)
            probe.process = sentinel
            probe.wait_until_up()
            # Wait until the Sentinel knows the master and its replica.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                out = probe.cli("SENTINEL", "REPLICAS", "testmaster")
                if str(replica.port) in out and "s_down" not in out:
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError("the Sentinel never saw the replica")
            while "master_link_status:up" not in replica.cli("INFO", "replication"):
                if time.monotonic() > deadline:
                    raise RuntimeError("the replica never synced with its master")
                time.sleep(0.05)
            yield {
                "sentinels": [("127.0.0.1", sentinel_port)],
                "master_name": "testmaster",
                "master": master,
                "replica": replica,
                "sentinel": probe,
            }
        finally:
            sentinel.terminate()
            sentinel.wait(timeout=5)


@pytest.fixture(scope="session")
def sentinel_setup(redis_directory: Path) -> Iterator[dict[str, Any]]:
    with sentinel_running(redis_directory) as setup:
        yield setup


@pytest.fixture
def own_sentinel_setup(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A Sentinel setup for one test, which may fail the master over."""
    with sentinel_running(tmp_path) as setup:
        yield setup


@pytest.fixture(scope="session")
def cluster_nodes(redis_directory: Path) -> Iterator[list[RedisProcess]]:
    nodes = [
        RedisProcess(
            redis_directory,
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
        for _ in range(3)
    ]
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


@pytest.fixture
def cluster_urls(cluster_nodes: list[RedisProcess]) -> list[str]:
    for node in cluster_nodes:
        node.cli("FLUSHALL")
    return [node.url for node in cluster_nodes]


def _write_certificates(directory: Path) -> None:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "channels-redis test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        # Python 3.13 verifies strictly (VERIFY_X509_STRICT): a CA needs key
        # usage and a subject key identifier, a leaf an authority key identifier.
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    for name, usage in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / f"{name}.key").write_bytes(key_pem(key))


@pytest.fixture(scope="session")
def tls_redis(redis_directory: Path) -> Iterator[dict[str, Any]]:
    certs = redis_directory / "certs"
    _write_certificates(certs)
    server = RedisProcess(
        redis_directory,
        "--tls-port",
        "--tls-cert-file",
        str(certs / "server.crt"),
        "--tls-key-file",
        str(certs / "server.key"),
        "--tls-ca-cert-file",
        str(certs / "ca.crt"),
        "--tls-auth-clients",
        "optional",
    )
    with running(server):
        yield {
            "url": f"rediss://127.0.0.1:{server.port}/0",
            "ca": str(certs / "ca.crt"),
            "cert": str(certs / "client.crt"),
            "key": str(certs / "client.key"),
            "server": server,
        }
