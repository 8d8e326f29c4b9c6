"""What an open WebSocket holds while nothing happens (bench/server.py, the idle rows).

Thousands of open sockets per process are the common case: the engine of a
socket that has received nothing holds no parser, and once the parser is
made the close handshake behaves as before.
"""

from __future__ import annotations

import gc
import tracemalloc
from types import SimpleNamespace

import pytest
from wsproto.events import CloseConnection, Ping, TextMessage
from wsproto.utilities import LocalProtocolError

from channels_server.protocol.websocket import CloseReceived, WebSocketConnection


def _bytes_per_engine(count: int = 200) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        engines = [WebSocketConnection(1 << 20, 1 << 20) for _ in range(count)]
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert len(engines) == count
    return grown / count


def test_an_engine_that_received_nothing_is_small() -> None:
    # wsproto's Connection with its event deque and frame parser took about
    # 1.6 KiB per socket; the engine alone is a slotted object.
    assert _bytes_per_engine() < 200
    assert not hasattr(WebSocketConnection(100, 100), "__dict__")


def test_the_server_closes_an_engine_that_received_nothing(pairs: SimpleNamespace) -> None:
    pair = pairs.websocket()
    frame = pair.server.close(1001, "going away")
    (received,) = pair.client_receives(frame)
    assert (received.code, received.reason) == (1001, "going away")
    events, reply = pair.server.receive_data(pair.client.send(received.response()))
    assert isinstance(events[0], CloseReceived)
    assert reply == b""
    assert pair.server.closed


def test_a_ping_while_our_close_is_out_is_not_answered(pairs: SimpleNamespace) -> None:
    pair = pairs.websocket()
    pair.client_receives(pair.server.close(1000))
    # The client pings before it has read our close frame: the server waits
    # for its close (wsproto's Connection raised on the pong it tried to send).
    # (A masked ping with an all-zero key: wsproto's client would not send it.)
    events, reply = pair.server.receive_data(b"\x89\x81\x00\x00\x00\x00?")
    assert (events, reply) == ([], b"")
    events, _ = pair.server.receive_data(pair.client.send(CloseConnection(code=1000)))
    assert isinstance(events[0], CloseReceived)
    assert pair.server.closed


def test_pings_go_out_only_while_open(pairs: SimpleNamespace) -> None:
    pair = pairs.websocket()
    (ping,) = pair.client_receives(pair.server.ping())
    assert isinstance(ping, Ping)
    events, _ = pair.client_sends(TextMessage(data="after the ping"))
    assert events == ["after the ping"]
    pair.server.close(1000)
    with pytest.raises(LocalProtocolError):
        pair.server.ping()
