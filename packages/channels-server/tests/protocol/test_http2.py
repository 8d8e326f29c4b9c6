"""The HTTP/2 engine without sockets: h2's client side talks to HTTP2Connection in memory."""

from __future__ import annotations

import struct
import sys
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
from h2.settings import SettingCodes
from hypothesis import given, settings
from hypothesis import strategies as st

from channels_server import Config
from channels_server.errors import ConfigurationError
from channels_server.protocol.http2 import (
    CONTROL_BURST,
    CONTROL_RATE,
    MAX_CONTINUATIONS,
    RESET_LIMIT,
    RESET_WINDOW,
    STREAM_WINDOW,
    BodyReceived,
    ConnectionEnded,
    HTTP2Connection,
    HTTP2Limits,
    RequestEnded,
    RequestReceived,
    RequestRefused,
    StreamCancelled,
)
from channels_server.protocol.versions import http2_enabled

PROTOCOL_ERROR = 0x1
REFUSED_STREAM = 0x7
FRAME_SIZE_ERROR = 0x6
ENHANCE_YOUR_CALM = 0xB


class Pair:
    """A client (h2, client side) and the server engine, wired in memory."""

    def __init__(self, settings: dict[int, int] | None = None, **limits: Any) -> None:
        self.now = 1000.0
        self.server = HTTP2Connection(HTTP2Limits(**limits), b"test", self.now)
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.client = h2.connection.H2Connection(config=config)
        if settings:
            self.client.local_settings.update(settings)  # type: ignore[arg-type]
            self.client.local_settings.acknowledge()
        self.client.initiate_connection()
        self.client_events: list[Any] = []
        self.exchange()

    def exchange(self) -> list[Any]:
        """Move bytes both ways until both sides are quiet; the server's events."""
        events: list[Any] = []
        while True:
            to_server = self.client.data_to_send()
            if to_server:
                events += self.server.receive_data(to_server, self.now)
            to_client = self.server.data_to_send()
            if to_client:
                self.client_events += self.client.receive_data(to_client)
            if not to_server and not to_client:
                return events

    def raw(self, data: bytes) -> list[Any]:
        events = self.server.receive_data(data, self.now)
        to_client = self.server.data_to_send()
        if to_client:
            self.client_events += self.client.receive_data(to_client)
        return events

    def request(
        self, method: bytes = b"GET", path: bytes = b"/", headers: Any = (), **options: Any
    ) -> int:
        stream_id = self.client.get_next_available_stream_id()
        fields = [
            (b":method", method),
            (b":scheme", b"http"),
            (b":authority", b"example.com"),
            (b":path", path),
            *headers,
        ]
        self.client.send_headers(stream_id, fields, **options)
        return stream_id

    def of_client(self, kind: type) -> list[Any]:
        return [event for event in self.client_events if isinstance(event, kind)]


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream_id)
        + payload
    )


def test_a_request_becomes_a_head_without_pseudo_headers() -> None:
    pair = Pair()
    stream_id = pair.request(
        b"POST", b"/p?q", headers=[(b"content-type", b"text/plain"), (b"host", b"example.com")]
    )
    pair.client.send_data(stream_id, b"abc", end_stream=True)
    events = pair.exchange()
    received, body, ended = events
    assert isinstance(received, RequestReceived)
    head = received.head
    assert (head.method, head.target, head.http_version) == (b"POST", b"/p?q", b"2")
    # :authority first, as host, replacing the host header (www spec).
    assert head.headers == [(b"host", b"example.com"), (b"content-type", b"text/plain")]
    assert head.has_body
    assert not received.end_stream
    assert received.protocol is None
    assert isinstance(body, BodyReceived)
    assert body.data == b"abc"
    assert isinstance(ended, RequestEnded)


def test_a_response_with_a_body_in_frames() -> None:
    pair = Pair()
    stream_id = pair.request(end_stream=True)
    pair.exchange()
    pair.server.respond(
        stream_id, 201, [(b"x-a", b"1"), (b"Connection", b"close")], end_stream=False
    )
    pair.server.send_data(stream_id, b"hello", end_stream=True)
    pair.exchange()
    (response,) = pair.of_client(h2.events.ResponseReceived)
    headers = dict(response.headers)
    assert headers[b":status"] == b"201"
    assert headers[b"x-a"] == b"1"
    assert b"connection" not in headers  # connection-specific: dropped (RFC 9113 §8.2.2)
    assert headers[b"server"] == b"test"
    assert b"".join(event.data for event in pair.of_client(h2.events.DataReceived)) == b"hello"
    assert pair.of_client(h2.events.StreamEnded)


@pytest.mark.parametrize(
    ("method", "extra", "status"),
    [
        (b"BREW", [], b"501"),
        (b"CONNECT", [], b"501"),
        (b"GET", [(b"x-h", b"%d" % n) for n in range(101)], b"431"),
        (b"GET", [(b"x-h", b"a\x1cb")], b"400"),
    ],
)
def test_refused_requests_never_reach_the_application(
    method: bytes, extra: list[tuple[bytes, bytes]], status: bytes
) -> None:
    pair = Pair()
    if method == b"CONNECT":
        stream_id = pair.client.get_next_available_stream_id()
        pair.client.send_headers(
            stream_id, [(b":method", b"CONNECT"), (b":authority", b"x:1")], end_stream=True
        )
    else:
        stream_id = pair.request(method, headers=extra, end_stream=True)
    (refused,) = pair.exchange()
    # Only reported, for the logs: no stream for an application.
    assert isinstance(refused, RequestRefused)
    assert refused.error.status_code == int(status)
    assert refused.method == method
    (response,) = pair.of_client(h2.events.ResponseReceived)
    assert dict(response.headers)[b":status"] == status
    assert not pair.server.active


def test_extended_connect_is_a_websocket_request() -> None:
    pair = Pair()
    assert pair.client.remote_settings.enable_connect_protocol == 1
    stream_id = pair.client.get_next_available_stream_id()
    pair.client.send_headers(
        stream_id,
        [
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", b"http"),
            (b":path", b"/chat"),
            (b":authority", b"example.com"),
            (b"sec-websocket-version", b"13"),
        ],
    )
    (received,) = pair.exchange()
    assert isinstance(received, RequestReceived)
    assert received.protocol == b"websocket"
    assert received.head.target == b"/chat"


def test_send_waits_for_the_clients_window() -> None:
    pair = Pair(settings={SettingCodes.INITIAL_WINDOW_SIZE: 100})
    stream_id = pair.request(end_stream=True)
    pair.exchange()
    pair.server.respond(stream_id, 200, [], end_stream=False)
    pair.server.send_data(stream_id, b"x" * 1000, end_stream=True)
    pair.exchange()
    assert pair.server.pending(stream_id) == 900
    pair.server.drained.clear()
    # The client opens the window: the rest goes out, and the stream is drained.
    pair.client.increment_flow_control_window(900, stream_id)
    pair.exchange()
    assert pair.server.pending(stream_id) == 0
    assert stream_id in pair.server.drained
    received = b"".join(event.data for event in pair.of_client(h2.events.DataReceived))
    assert received == b"x" * 1000


def test_received_body_is_acknowledged_only_when_taken() -> None:
    pair = Pair()
    stream_id = pair.request(b"POST")
    for start in range(0, STREAM_WINDOW, 16384):
        pair.client.send_data(stream_id, b"x" * min(16384, STREAM_WINDOW - start))
    events = pair.exchange()
    assert sum(len(event.data) for event in events if isinstance(event, BodyReceived)) == 65535
    # The application has not taken it: the client may send nothing more.
    assert pair.client.local_flow_control_window(stream_id) == 0
    pair.server.acknowledge(stream_id, STREAM_WINDOW)
    pair.exchange()
    assert pair.client.local_flow_control_window(stream_id) == STREAM_WINDOW


def test_body_over_the_limit_is_413() -> None:
    pair = Pair(max_body_size=10)
    stream_id = pair.request(b"POST", headers=[(b"content-length", b"11")])
    pair.exchange()
    (response,) = pair.of_client(h2.events.ResponseReceived)
    assert dict(response.headers)[b":status"] == b"413"
    pair = Pair(max_body_size=10)
    stream_id = pair.request(b"POST")
    pair.client.send_data(stream_id, b"x" * 11)
    events = pair.exchange()
    assert any(isinstance(event, StreamCancelled) for event in events)
    (response,) = pair.of_client(h2.events.ResponseReceived)
    assert dict(response.headers)[b":status"] == b"413"


def test_overlong_frame_is_refused_from_its_header() -> None:
    pair = Pair()
    # The header of a 16 MiB frame: refused before any of its payload arrives.
    (ended,) = pair.raw(struct.pack(">I", 0xFFFFFF)[1:] + b"\x00\x00\x00\x00\x00\x01")
    assert isinstance(ended, ConnectionEnded)
    assert ended.error_code == FRAME_SIZE_ERROR
    (goaway,) = pair.of_client(h2.events.ConnectionTerminated)
    assert goaway.error_code == FRAME_SIZE_ERROR


def test_header_block_over_the_limit_across_continuations() -> None:
    pair = Pair(max_header_size=1000)
    pair.raw(frame(0x1, 0x0, 1, b"\x82" * 600))
    (ended,) = pair.raw(frame(0x9, 0x0, 1, b"\x82" * 700))
    assert isinstance(ended, ConnectionEnded)
    assert ended.error_code == ENHANCE_YOUR_CALM


def test_too_many_continuation_frames() -> None:
    pair = Pair()
    events = pair.raw(frame(0x1, 0x0, 1, b"\x82") + frame(0x9, 0x0, 1) * MAX_CONTINUATIONS)
    assert events == []
    (ended,) = pair.raw(frame(0x9, 0x0, 1))
    assert isinstance(ended, ConnectionEnded)
    assert ended.error_code == ENHANCE_YOUR_CALM


def test_control_frames_at_a_steady_rate_are_fine_a_flood_is_not() -> None:
    pair = Pair()
    ping = frame(0x6, 0x0, 0, b"12345678")
    for _ in range(3 * CONTROL_BURST // int(CONTROL_RATE)):
        # CONTROL_RATE a second, for three times as long as the burst lasts: never over.
        pair.now += 1
        assert pair.raw(ping * int(CONTROL_RATE)) == []
    (ended,) = pair.raw(ping * (CONTROL_BURST + 1))
    assert isinstance(ended, ConnectionEnded)
    assert ended.error_code == ENHANCE_YOUR_CALM


def test_resets_are_counted_within_a_window() -> None:
    pair = Pair()

    def reset_streams(count: int) -> list[Any]:
        events = []
        for _ in range(count):
            stream_id = pair.request(end_stream=True)
            pair.client.reset_stream(stream_id)
            events += pair.exchange()
            # (The transport releases a stream once its application task ends.)
            pair.server.release(stream_id)
        return [event for event in events if isinstance(event, ConnectionEnded)]

    for _ in range(3):
        # RESET_LIMIT resets per window, window after window: allowed.
        assert reset_streams(RESET_LIMIT) == []
        pair.now += RESET_WINDOW + 1
    (ended,) = reset_streams(RESET_LIMIT + 1)
    assert ended.error_code == ENHANCE_YOUR_CALM


def test_reset_streams_count_against_the_limit_until_released() -> None:
    pair = Pair(max_concurrent_streams=2)
    first = pair.request(end_stream=True)
    second = pair.request(end_stream=True)
    pair.exchange()
    # A response that has ended frees its slot (the client sees the stream closed) ...
    pair.server.respond(second, 200, [], end_stream=True)
    pair.exchange()
    pair.request(end_stream=True)
    assert [type(event) for event in pair.exchange()] == [RequestReceived]
    # ... a stream the client reset does not, while its application task runs.
    pair.client.reset_stream(first)
    assert [type(event) for event in pair.exchange()] == [StreamCancelled]
    fourth = pair.request(end_stream=True)
    assert pair.exchange() == []
    (reset,) = pair.of_client(h2.events.StreamReset)
    assert reset.stream_id == fourth
    assert reset.error_code == REFUSED_STREAM
    pair.server.release(first)
    pair.request(end_stream=True)
    assert [type(event) for event in pair.exchange()] == [RequestReceived]


def test_stop_accepting_then_goaway() -> None:
    pair = Pair()
    first = pair.request(end_stream=True)
    pair.exchange()
    pair.server.stop_accepting()
    late = pair.request(end_stream=True)
    assert pair.exchange() == []
    assert [event.stream_id for event in pair.of_client(h2.events.StreamReset)] == [late]
    pair.server.respond(first, 200, [], end_stream=True)
    pair.server.release(first)
    assert pair.server.idle
    pair.server.goaway()
    pair.exchange()
    (goaway,) = pair.of_client(h2.events.ConnectionTerminated)
    assert goaway.error_code == 0
    assert goaway.last_stream_id == first


def test_a_client_protocol_error_ends_the_connection() -> None:
    pair = Pair()
    # DATA on stream 0 is a connection error (RFC 9113 §6.1).
    (ended,) = pair.raw(frame(0x0, 0x1, 0, b"x"))
    assert isinstance(ended, ConnectionEnded)
    assert ended.error_code == PROTOCOL_ERROR


def test_http2_on_without_h2_stops_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    import channels_server.protocol as protocol_package

    # h2 cannot be uninstalled for one test: its import is made to fail instead.
    for name in [name for name in sys.modules if name == "h2" or name.startswith("h2.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "channels_server.protocol.http2")
    monkeypatch.delattr(protocol_package, "http2")
    with pytest.raises(ConfigurationError, match=r"pip install 'channels-server\[http2\]'"):
        http2_enabled(Config(http2="on"))
    assert http2_enabled(Config(http2="auto")) is False
    assert http2_enabled(Config(http2="off")) is False


def test_http2_auto_with_h2_is_on() -> None:
    assert http2_enabled(Config(http2="auto")) is True
    assert http2_enabled(Config(http2="on")) is True


frames_strategy = st.lists(
    st.tuples(
        st.integers(0, 12),  # frame type: the ten known and a few unknown
        st.integers(0, 255),  # flags
        st.sampled_from([0, 1, 3, 5, 2, 0x7FFFFFFF]),  # stream id
        st.binary(max_size=64),
    ),
    max_size=30,
)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(frames=frames_strategy, garbage=st.binary(max_size=40))
def test_hostile_frames_never_raise(
    frames: list[tuple[int, int, int, bytes]], garbage: bytes
) -> None:
    pair = Pair()
    stream_id = pair.request(b"POST", end_stream=False)
    pair.exchange()
    data = b"".join(frame(kind, flags, stream, payload) for kind, flags, stream, payload in frames)
    ended = False
    for piece in (data[: len(data) // 2], data[len(data) // 2 :], garbage):
        events = pair.server.receive_data(piece, pair.now)
        if ended:
            assert events == []
        ended = ended or any(isinstance(event, ConnectionEnded) for event in events)
        for event in events:
            if isinstance(event, BodyReceived):
                pair.server.acknowledge(event.stream_id, event.size)
        pair.server.data_to_send()
    # The engine still answers (or has ended) without raising.
    pair.server.respond(stream_id, 200, [], end_stream=False)
    pair.server.send_data(stream_id, b"x" * 100, end_stream=True)
    pair.server.data_to_send()
