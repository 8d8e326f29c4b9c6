"""Links: pipelined commands over one socket, and how they fail.

The happy paths run against a real redis-server; the faults against small
asyncio servers on loopback that misbehave for real (never answer, answer
garbage, hang up).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channels_redis.link import STREAM_ATTRIBUTES, Link, open_link
from channels_redis.link_pool import LinkCommands
from channels_redis.resp import pack_command


@pytest_asyncio.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=1.0)
    yield client
    await client.aclose()


@pytest.mark.asyncio
async def test_redis_py_keeps_the_stream_pair_where_links_take_it(redis_url: str) -> None:
    # open_link() takes the socket from private attributes of redis-py's
    # asyncio Connection: a redis-py release that moves them must fail here,
    # by name, rather than as broken connections.
    pool = redis.asyncio.ConnectionPool.from_url(redis_url)
    connection = pool.make_connection()
    await connection.connect()
    try:
        for name, kind in zip(
            STREAM_ATTRIBUTES, (asyncio.StreamReader, asyncio.StreamWriter), strict=True
        ):
            value = getattr(connection, name, None)
            if not isinstance(value, kind):
                pytest.fail(
                    f"redis-py {redis.__version__}: a connected {type(connection).__name__} "
                    f"has no {name} ({kind.__name__}) but {value!r}; channels_redis.link."
                    "open_link() takes the socket from it: update link.py and the redis "
                    "range in pyproject.toml"
                )
    finally:
        await connection.disconnect()
        await pool.disconnect()


class _RenamedStreams(redis.asyncio.Connection):
    """A redis-py connection as a release that renamed ``_reader`` would make it."""

    async def connect(self) -> None:
        await super().connect()
        self._stream_reader, self._reader = self._reader, None

    async def disconnect(self, *args: Any, **kwargs: Any) -> None:
        # Such a release would close its own stream pair, wherever it keeps it.
        self._reader = self._stream_reader
        await super().disconnect(*args, **kwargs)


@pytest.mark.asyncio
async def test_a_redis_py_without_the_stream_pair_is_named_in_the_error(redis_url: str) -> None:
    pool = redis.asyncio.ConnectionPool.from_url(redis_url, connection_class=_RenamedStreams)
    try:
        with pytest.raises(RedisConnectionError, match=r"has no _reader attribute"):
            await open_link(pool)
    finally:
        await pool.disconnect()


@pytest.mark.asyncio
async def test_many_commands_in_flight_on_one_link_get_their_own_replies(
    client: redis.asyncio.Redis,
) -> None:
    link = await open_link(client.connection_pool)
    try:
        futures = [link.send(pack_command(["ECHO", str(n)])) for n in range(500)]
        assert await asyncio.gather(*futures) == [str(n).encode() for n in range(500)]
        with pytest.raises(ResponseError, match="unknown command"):
            await link.send(pack_command(["NOSUCHCOMMAND"]))
        # An error reply fails one command, not the link.
        assert await link.send(pack_command(["PING"])) == b"PONG"
        assert link.usable
    finally:
        link.close()


@pytest.mark.asyncio
async def test_a_reply_handler_is_called_as_its_reply_is_read(
    client: redis.asyncio.Redis,
) -> None:
    link = await open_link(client.connection_pool)
    loop = asyncio.get_running_loop()
    handler_errors: list[Any] = []
    loop.set_exception_handler(lambda _, context: handler_errors.append(context))
    got: list[tuple[Any, Any]] = []
    try:
        link.send_then(pack_command(["ECHO", "a"]), lambda *answer: got.append(answer))
        link.send_then(pack_command(["NOSUCHCOMMAND"]), lambda *answer: got.append(answer))
        last = link.send(pack_command(["ECHO", "b"]))
        # Called while the replies are read: before a future's callbacks run.
        seen_by_then: list[Any] = []
        last.add_done_callback(lambda _: seen_by_then.extend(got))
        assert await last == b"b"
        assert seen_by_then[0] == (b"a", None)
        assert seen_by_then[1][0] is None
        assert isinstance(seen_by_then[1][1], ResponseError)

        # A handler that raises is reported, and the link reads on.
        def broken(reply: Any, failure: BaseException | None) -> None:
            raise RuntimeError("handler bug")

        link.send_then(pack_command(["ECHO", "c"]), broken)
        assert await link.send(pack_command(["ECHO", "d"])) == b"d"
        assert [type(context["exception"]) for context in handler_errors] == [RuntimeError]
        assert link.usable

        # A link that fails hands its waiting handlers the error.
        got.clear()
        link.send_then(
            pack_command(["BLPOP", "nothing-here", "5"]), lambda *answer: got.append(answer)
        )
        link.close()
        assert len(got) == 1
        assert got[0][0] is None
        assert isinstance(got[0][1], RedisConnectionError)
    finally:
        link.close()
        loop.set_exception_handler(None)


@pytest.mark.asyncio
@pytest.mark.parametrize("protocol", [2, 3])
async def test_links_do_the_handshake_of_the_url(redis_url: str, protocol: int) -> None:
    client = redis.asyncio.Redis.from_url(
        redis_url.rsplit("/", 1)[0] + "/5", client_name="me", protocol=protocol
    )
    link = await open_link(client.connection_pool)
    try:
        info = await link.send(pack_command(["CLIENT", "INFO"]))
        assert b" db=5 " in info
        assert b" name=me " in info
        assert f" resp={protocol}\n".encode() in info
        # Replies keep redis-py's undecoded shapes in either protocol.
        assert await link.send(pack_command(["HSET", "h", "f", "1"])) in (0, 1)
        assert await link.send(pack_command(["HGETALL", "h"])) in ([b"f", b"1"], {b"f": b"1"})
    finally:
        link.close()
        await client.aclose()


@pytest.mark.asyncio
async def test_a_cancelled_command_leaves_the_link_in_step(client: redis.asyncio.Redis) -> None:
    connections = LinkCommands(client)
    try:
        slow = asyncio.ensure_future(connections.execute("DEBUG", "SLEEP", "0.2"))
        await asyncio.sleep(0.05)
        slow.cancel()
        # The reply to the cancelled command is dropped; the next is ours.
        assert await connections.execute("ECHO", "next") == b"next"
    finally:
        await connections.aclose()


QUIET_HANDSHAKE: dict[str, Any] = {"protocol": 2}


async def read_command(reader: asyncio.StreamReader) -> list[bytes]:
    """The next command a client sends, answering redis-py's handshake on the way."""
    while True:
        count = int((await reader.readuntil(b"\r\n"))[1:-2])
        command = []
        for _ in range(count):
            length = int((await reader.readuntil(b"\r\n"))[1:-2])
            command.append((await reader.readexactly(length + 2))[:-2])
        if command[0].upper() != b"CLIENT":
            return command
        writer_of[reader].write(b"+OK\r\n")  # CLIENT SETINFO


writer_of: dict[asyncio.StreamReader, asyncio.StreamWriter] = {}


class MisbehavingServer:
    """A loopback server running *handler* per connection, shut down cleanly."""

    def __init__(
        self, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]
    ) -> None:
        self.handler = handler
        self.tasks: set[asyncio.Task[Any]] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> MisbehavingServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        writer_of[reader] = writer
        try:
            await self.handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer_of.pop(reader, None)
            writer.close()

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_a_server_that_never_answers_times_out_every_waiting_command() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_command(reader)

    async with MisbehavingServer(silent) as server:
        await never_answered(server.port)


async def never_answered(port: int) -> None:
    client = redis.asyncio.Redis(host="127.0.0.1", port=port, socket_timeout=0.3, **QUIET_HANDSHAKE)
    try:
        link = await open_link(client.connection_pool)
        first = link.send(pack_command(["PING"]))
        second = link.send(pack_command(["PING"]))
        started = asyncio.get_running_loop().time()
        for waiting in (first, second):
            with pytest.raises(RedisTimeoutError):
                await waiting
        assert 0.25 < asyncio.get_running_loop().time() - started < 2
        assert not link.usable
        with pytest.raises(RedisConnectionError):
            link.send(pack_command(["PING"]))
    finally:
        await client.aclose()


@pytest.mark.asyncio
async def test_a_blocking_command_may_take_its_block_time_and_the_timeout() -> None:
    async def late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert (await read_command(reader))[0] == b"BLMPOP"
        await asyncio.sleep(0.5)
        writer.write(b"*-1\r\n")
        await reader.read(-1)

    async with MisbehavingServer(late) as server:
        client = redis.asyncio.Redis(
            host="127.0.0.1", port=server.port, socket_timeout=0.3, **QUIET_HANDSHAKE
        )
        connections = LinkCommands(client)
        try:
            # 0.5 s is over the socket timeout, but inside block time + timeout.
            assert await connections.execute("BLMPOP", 0.4, 1, "k", "LEFT", "COUNT", 1) is None
        finally:
            await connections.aclose()
            await client.aclose()


@pytest.mark.asyncio
async def test_garbage_from_the_server_fails_the_link_clearly() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await read_command(reader) == [b"PING"]
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await reader.read(-1)

    async with MisbehavingServer(garbage) as server:
        client = redis.asyncio.Redis(
            host="127.0.0.1", port=server.port, socket_timeout=2, **QUIET_HANDSHAKE
        )
        try:
            link = await open_link(client.connection_pool)
            with pytest.raises(RedisConnectionError, match="unexpected byte b'H'"):
                await link.send(pack_command(["PING"]))
            assert not link.usable
        finally:
            await client.aclose()


@pytest.mark.asyncio
async def test_a_server_hanging_up_fails_the_commands_and_the_next_opens_a_new_link() -> None:
    connections_seen = []

    async def hang_up_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections_seen.append(writer)
        if len(connections_seen) == 1:
            await read_command(reader)
            writer.close()
            return
        while True:
            assert await read_command(reader) == [b"PING"]
            writer.write(b"+PONG\r\n")

    async with MisbehavingServer(hang_up_once) as server:
        client = redis.asyncio.Redis(
            host="127.0.0.1", port=server.port, socket_timeout=2, **QUIET_HANDSHAKE
        )
        connections = LinkCommands(client)
        try:
            with pytest.raises(RedisConnectionError, match="closed by server"):
                await connections.execute("PING")
            assert await connections.execute("PING") == b"PONG"
            assert len(connections_seen) == 2
        finally:
            await connections.aclose()
            await client.aclose()


def test_links_are_protocols() -> None:
    assert issubclass(Link, asyncio.Protocol)


@pytest.mark.asyncio
async def test_start_writes_on_a_ready_link_and_otherwise_waits_for_one(
    client: redis.asyncio.Redis,
) -> None:
    commands = LinkCommands(client)
    try:
        # No link yet: a task opens one, then writes.
        opening = commands.start("ECHO", "first")
        assert isinstance(opening, asyncio.Task)
        assert await opening == b"first"
        # The link is up: written at once, the reply a plain future.
        written = commands.start("ECHO", "second")
        assert not isinstance(written, asyncio.Task)
        assert await written == b"second"
        with pytest.raises(ResponseError):
            await commands.start("NO-SUCH-COMMAND")
    finally:
        await commands.aclose()


@pytest.mark.asyncio
async def test_each_client_gets_its_path_when_it_is_made() -> None:
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.sentinel import Sentinel

    from channels_redis.commands import ClusterCommands, RedisPyCommands, shard_commands
    from channels_redis.link_pool import SentinelLinkCommands

    # Nothing here connects: the path is chosen from the client's kind alone.
    server = redis.asyncio.Redis(host="127.0.0.1", port=1)
    sentinel = Sentinel([("127.0.0.1", 1)])
    master = sentinel.master_for("mymaster")
    cluster = RedisCluster(host="127.0.0.1", port=1)
    try:
        assert type(shard_commands(server)) is LinkCommands
        assert type(shard_commands(master)) is SentinelLinkCommands
        assert type(shard_commands(cluster)) is ClusterCommands
        assert type(shard_commands(server, link=False)) is RedisPyCommands
    finally:
        await server.aclose()
        await master.aclose()
        await cluster.aclose()
