"""Fixtures for the channels_redis tests: real Redis servers on free ports.

The servers, Sentinel, Cluster and TLS setups live in ``_support/``; here
each gets its name and its lifetime. Every server is a ``redis-server``
(and ``redis-cli``) from ``PATH``: a missing binary fails the tests that
need it, for a skip would let CI pass without ever talking to Redis.

* ``redis_server``: one plain server for the session (TCP and a Unix
  socket); ``redis_url`` empties it before each test and gives its URL;
  ``redis_client`` is a redis-py client of it.
* ``shard_servers`` / ``shard_urls``: two more plain servers, for sharding.
* ``restartable_redis``: a server of the test's own, to kill and restart, or
  to freeze and thaw.
* ``redis_without_blmpop``, ``redis_without_info``: servers with a command
  renamed away.
* ``sentinel_setup`` / ``own_sentinel_setup``: a master, a replica and a
  Sentinel watching them (the second for one test, which may fail over).
* ``cluster_nodes`` / ``cluster_urls``: a three-master Redis Cluster.
* ``tls_redis``: a server that speaks TLS only, with a throwaway CA.
* ``made_layers``: layers of any class on the session server, closed after
  the test; ``clients_of``: plain redis-py clients of some URLs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio

from channels_testing._support_loader import support_loader

# ``--import-mode=importlib`` puts no test folder on ``sys.path``.
_support = support_loader(__file__, "channels_redis_test_support")


servers = _support("servers")
layers = _support("layers")
RedisProcess = servers.RedisProcess


@pytest.fixture(autouse=True)
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test whose layers logged an error (receive loops log and go on)."""
    yield
    errors = layers.logged_errors(caplog.get_records("call"))
    assert not errors, "channels_redis logged errors:\n" + errors


@pytest.fixture
def send_while_loop_is_held() -> Callable[[Callable[..., Any], str, str, int], None]:
    """Send *count* messages to *channel* from another thread, with a layer of
    its own, while the calling event loop is held up (this call blocks it):
    what Redis hands the test's layers meanwhile waits unread in their sockets."""
    return layers.send_from_another_thread


@pytest_asyncio.fixture
async def made_layers(redis_url: str) -> AsyncIterator[Any]:
    """``made_layers(LayerClass, **options)``: a layer on the session server
    (or on ``hosts=`` given), closed after the test."""
    made = layers.MadeLayers([redis_url])
    yield made
    await made.close()


@pytest.fixture
def check_channels_and_groups() -> Callable[[Any, str], Awaitable[None]]:
    """``await check_channels_and_groups(layer, name)``: a group message and a
    message to ``<name>.plain`` both reach *layer* (the group: ``<name>-group``)."""
    return layers.check_channels_and_groups


@pytest_asyncio.fixture
async def clients_of() -> AsyncIterator[Callable[[list[str]], list[redis.asyncio.Redis]]]:
    """``clients_of(urls)``: plain redis-py clients of *urls*, closed after the test,
    to look at (or spoil) what the layers stored."""
    opened: list[redis.asyncio.Redis] = []

    def open_clients(urls: list[str]) -> list[redis.asyncio.Redis]:
        clients = [redis.asyncio.Redis.from_url(url) for url in urls]
        opened.extend(clients)
        return clients

    yield open_clients
    await layers.close_clients(opened)


@pytest.fixture(scope="session")
def redis_directory() -> Iterator[Path]:
    with servers.short_temporary_directory() as directory:
        yield directory


@pytest.fixture(scope="session")
def redis_server(redis_directory: Path) -> Iterator[RedisProcess]:
    server = servers.RedisProcess(redis_directory)
    server.extra = ["--unixsocket", str(server.directory / "redis.sock")]
    with servers.running(server):
        yield server


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> str:
    """The session server's URL, emptied for this test."""
    return redis_server.flush()


@pytest_asyncio.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain redis-py client of the session server, to look at what the layer stored."""
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def shard_servers(redis_directory: Path) -> Iterator[list[RedisProcess]]:
    with (
        servers.one_server(redis_directory) as first,
        servers.one_server(redis_directory) as second,
    ):
        yield [first, second]


@pytest.fixture
def shard_urls(shard_servers: list[RedisProcess]) -> list[str]:
    return [server.flush() for server in shard_servers]


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A server for this test alone, which it may kill and start again (same port)."""
    with servers.one_server(tmp_path) as server:
        yield server


@pytest.fixture(scope="session")
def redis_without_blmpop(redis_directory: Path) -> Iterator[str]:
    """A server that behaves like Redis 6 for the receive loop: it has no BLMPOP."""
    with servers.one_server(redis_directory, "--rename-command", "BLMPOP", "") as server:
        yield server.url


@pytest.fixture(scope="session")
def redis_without_info(redis_directory: Path) -> Iterator[str]:
    """A server whose INFO command is renamed away (some hosted Redis hide it)."""
    with servers.one_server(redis_directory, "--rename-command", "INFO", "") as server:
        yield server.url


@pytest.fixture(scope="session")
def sentinel_setup(redis_directory: Path) -> Iterator[dict[str, Any]]:
    with _support("sentinel").sentinel_running(redis_directory) as setup:
        yield setup


@pytest.fixture
def own_sentinel_setup(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A Sentinel setup for one test, which may fail the master over."""
    with _support("sentinel").sentinel_running(tmp_path) as setup:
        yield setup


@pytest.fixture(scope="session")
def cluster_nodes(redis_directory: Path) -> Iterator[list[RedisProcess]]:
    with _support("cluster").cluster_running(redis_directory) as nodes:
        yield nodes


@pytest.fixture
def cluster_urls(cluster_nodes: list[RedisProcess]) -> list[str]:
    return [node.flush() for node in cluster_nodes]


@pytest.fixture(scope="session")
def tls_redis(redis_directory: Path) -> Iterator[dict[str, Any]]:
    # Imported here: only the TLS tests need the cryptography package.
    with _support("tls").tls_running(redis_directory) as setup:
        yield setup
