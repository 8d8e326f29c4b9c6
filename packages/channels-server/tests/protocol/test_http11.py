"""The sans-IO HTTP/1.1 engine: no sockets, no event loop."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels_server.errors import ApplicationError, HTTPProtocolError
from channels_server.protocol.fast_http11 import HTTPToolsConnection
from channels_server.protocol.http11 import (
    END_OF_REQUEST,
    KNOWN_METHODS,
    NEED_DATA,
    PAUSED,
    PEER_CLOSED,
    HTTP11Connection,
    HTTPEngine,
    HTTPLimits,
    RequestHead,
    error_response,
    simple_response,
)
from channels_server.protocol.state import RequestPhase

fixtures = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


@pytest.fixture(params=[HTTP11Connection, HTTPToolsConnection], ids=["h11", "httptools"])
def engine(request: pytest.FixtureRequest) -> type[HTTPEngine]:
    """Every test runs against both parsers: they must behave the same."""
    return request.param  # type: ignore[no-any-return]


def feed(engine: HTTPEngine, *chunks: bytes) -> list[Any]:
    events: list[Any] = []
    for chunk in chunks:
        engine.receive_data(chunk)
        while True:
            event = engine.next_event()
            if event is NEED_DATA:
                break
            events.append(event)
            if event is PAUSED or event is PEER_CLOSED:
                return events
    return events


def refused(engine_class: Any, data: bytes, **limits: int) -> HTTPProtocolError:
    engine = engine_class(HTTPLimits(**limits))
    with pytest.raises(HTTPProtocolError) as info:
        feed(engine, data)
    assert engine.phase is RequestPhase.CLOSED
    assert engine.keep_alive is False
    return info.value


# -- requests ----------------------------------------------------------------------------------


def test_simple_get(engine: Any) -> None:
    engine = engine()
    events = feed(engine, b"GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nX-Thing: 1\r\n\r\n")
    head, end = events
    assert isinstance(head, RequestHead)
    assert head.method == b"GET"
    assert head.target == b"/a/b?c=d"
    assert head.http_version == b"1.1"
    assert head.headers == [(b"host", b"example.com"), (b"x-thing", b"1")]
    assert head.keep_alive is True
    assert head.expect_continue is False
    assert head.upgrade is None
    assert end is END_OF_REQUEST
    assert engine.request_complete


@pytest.mark.parametrize("method", sorted(KNOWN_METHODS - {b"CONNECT"}))
def test_every_known_method_is_accepted(method: bytes, engine: Any) -> None:
    (head, *_) = feed(engine(), method + b" / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.method == method


@pytest.mark.parametrize("method", [b"get", b"FOO", b"BREW", b"Post"])
def test_unknown_methods_are_501(method: bytes, engine: Any) -> None:
    """Methods are case-sensitive (RFC 9110 §9.1): "get" is not GET."""
    error = refused(engine, method + b" / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert error.status_code == 501


def test_bytes_one_at_a_time_give_the_same_events(engine: Any) -> None:
    request = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    engine = engine()
    events = feed(engine, *[request[i : i + 1] for i in range(len(request))])
    assert isinstance(events[0], RequestHead)
    assert b"".join(event for event in events if isinstance(event, bytes)) == b"hello"
    assert events[-1] is END_OF_REQUEST


def test_body_chunks_are_bytes_not_bytearray(engine: Any) -> None:
    events = feed(engine(), b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    assert type(events[1]) is bytes


def test_chunked_request_body_is_decoded(engine: Any) -> None:
    events = feed(
        engine(),
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
    )
    assert b"".join(event for event in events if isinstance(event, bytes)) == b"abcdefg"
    assert events[-1] is END_OF_REQUEST


@pytest.mark.parametrize(
    ("request_bytes", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", False),
    ],
)
def test_keep_alive(request_bytes: bytes, keep_alive: bool, engine: Any) -> None:
    head = feed(engine(), request_bytes)[0]
    assert head.keep_alive is keep_alive


def test_expect_continue(engine: Any) -> None:
    head = feed(
        engine(),
        b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
    )[0]
    assert head.expect_continue is True


def test_upgrade_needs_connection_upgrade(engine: Any) -> None:
    without = feed(engine(), b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")[0]
    assert without.upgrade is None
    engine = engine()
    events = feed(
        engine,
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\n"
        b"Connection: keep-alive, Upgrade\r\n\r\n"
        b"\x81\x00",
    )
    assert events[0].upgrade == b"websocket"
    assert events[1] is END_OF_REQUEST
    assert events[2] is PAUSED
    assert engine.upgrade() == b"\x81\x00"
    assert engine.phase is RequestPhase.UPGRADED


def test_pipelined_requests_wait_for_the_response(engine: Any) -> None:
    engine = engine()
    events = feed(engine, b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert [type(event) for event in events[:2]] == [RequestHead, type(END_OF_REQUEST)]
    assert events[0].target == b"/1"
    assert events[2] is PAUSED
    engine.start_next_request()
    assert engine.phase is RequestPhase.HEAD
    second = feed(engine, b"")
    assert second[0].target == b"/2"


def test_start_next_request_with_nothing_buffered_is_idle(engine: Any) -> None:
    engine = engine()
    feed(engine, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    engine.start_next_request()
    assert engine.phase is RequestPhase.IDLE
    assert engine.head is None


def test_eof_between_requests(engine: Any) -> None:
    engine = engine()
    assert feed(engine, b"") == [PEER_CLOSED]
    assert engine.next_event() is PEER_CLOSED


def test_eof_in_the_middle_of_a_head_is_no_error(engine: Any) -> None:
    engine = engine()
    assert feed(engine, b"GET / HTTP/1.1\r\nHo", b"") == [PEER_CLOSED]


def test_phase_follows_the_request(engine: Any) -> None:
    engine = engine()
    assert engine.phase is RequestPhase.IDLE
    feed(engine, b"POST / HTTP/1.1\r\n")
    assert engine.phase is RequestPhase.HEAD
    feed(engine, b"Host: x\r\nContent-Length: 2\r\n\r\n")
    assert engine.phase is RequestPhase.BODY
    feed(engine, b"ab")
    assert engine.phase is RequestPhase.COMPLETE


# -- refused requests --------------------------------------------------------------------------


def test_request_line_too_long_is_414(engine: Any) -> None:
    error = refused(
        engine, b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: x\r\n\r\n", max_request_line_size=100
    )
    assert error.status_code == 414


def test_request_line_longer_than_the_whole_head_limit_is_414(engine: Any) -> None:
    error = refused(
        engine, b"GET /" + b"a" * 3000, max_request_line_size=1000, max_header_size=2000
    )
    assert error.status_code == 414


def test_header_block_too_large_is_431(engine: Any) -> None:
    error = refused(
        engine,
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 3000 + b"\r\n\r\n",
        max_header_size=2000,
        max_request_line_size=100,
    )
    assert error.status_code == 431


def test_too_many_headers_is_431(engine: Any) -> None:
    headers = b"".join(b"X-%d: 1\r\n" % index for index in range(11))
    error = refused(
        engine, b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n", max_header_count=10
    )
    assert error.status_code == 431
    head = feed(
        engine(HTTPLimits(max_header_count=12)),
        b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n",
    )[0]
    assert len(head.headers) == 12


def test_content_length_with_transfer_encoding_is_400(engine: Any) -> None:
    error = refused(
        engine,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
    )
    assert error.status_code == 400
    assert "Content-Length together with Transfer-Encoding" in error.reason


def test_transfer_encoding_in_http_10_is_400(engine: Any) -> None:
    error = refused(engine, b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert error.status_code == 400


def test_unknown_transfer_coding_is_501(engine: Any) -> None:
    assert (
        refused(
            engine, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
        ).status_code
        == 501
    )


def test_conflicting_content_lengths_are_400(engine: Any) -> None:
    error = refused(
        engine, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
    )
    assert error.status_code == 400


def test_missing_or_duplicate_host_is_400(engine: Any) -> None:
    assert refused(engine, b"GET / HTTP/1.1\r\n\r\n").status_code == 400
    assert refused(engine, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status_code == 400


def test_unsupported_http_version_is_505(engine: Any) -> None:
    assert refused(engine, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n").status_code == 505


@pytest.mark.parametrize(
    "garbage",
    [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"GET\r\n\r\n", b"GET / FOO\r\n\r\n"],
)
def test_garbage_is_400(garbage: bytes, engine: Any) -> None:
    assert refused(engine, garbage).status_code == 400


@pytest.mark.parametrize(
    "control",
    [
        b"\x00",
        b"\x01",
        b"\x08",
        b"\x0b",
        b"\x0c",
        b"\x1c",
        b"\x1d",
        b"\x1e",
        b"\x1f",
        b"\x7f",
        b"\x85",
    ],
)
def test_control_characters_in_header_values_are_400(control: bytes, engine: Any) -> None:
    error = refused(engine, b"GET / HTTP/1.1\r\nHost: x\r\nX-Evil: a" + control + b"b\r\n\r\n")
    assert error.status_code == 400


@pytest.mark.parametrize("control", [b"\x00", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x85"])
def test_control_characters_in_header_names_are_400(control: bytes, engine: Any) -> None:
    assert (
        refused(
            engine, b"GET / HTTP/1.1\r\nHost: x\r\nX-Ev" + control + b"il: a\r\n\r\n"
        ).status_code
        == 400
    )


def test_tabs_and_high_bytes_other_than_nel_are_accepted(engine: Any) -> None:
    head = feed(engine(), b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\tb \xc3\xa9\r\n\r\n")[0]
    assert (b"x-a", b"a\tb \xc3\xa9") in head.headers


def test_after_a_refusal_the_engine_reports_closed(engine: Any) -> None:
    engine = engine()
    with pytest.raises(HTTPProtocolError):
        feed(engine, b"NOT HTTP\r\n\r\n")
    assert engine.next_event() is PEER_CLOSED


# -- responses ---------------------------------------------------------------------------------


def respond(
    engine_class: Any,
    request: bytes,
    status: int,
    headers: list[tuple[bytes, bytes]],
    *bodies: bytes,
    **options: Any,
) -> tuple[HTTPEngine, bytes]:
    engine = engine_class(server_header=b"server: test\r\n")
    feed(engine, request)
    parts = list(bodies) or [b""]
    data = engine.start_response(status, headers, parts[0], more_body=len(parts) > 1, **options)
    for index, part in enumerate(parts[1:], start=2):
        data += engine.send_body(part)
        if index == len(parts):
            data += engine.end_response()
    return engine, data


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def test_single_body_gets_a_content_length(http: SimpleNamespace, engine: Any) -> None:
    engine, data = respond(engine, GET, 200, [(b"content-type", b"text/plain")], b"hello")
    (response,) = http.parse(data)
    assert response.status == 200
    assert response.header(b"content-length") == b"5"
    assert response.header(b"transfer-encoding") is None
    assert response.header(b"server") == b"test"
    assert response.header(b"date") is not None
    assert response.body == b"hello"
    assert engine.keep_alive is True


def test_streamed_body_is_chunked(http: SimpleNamespace, engine: Any) -> None:
    _, data = respond(engine, GET, 200, [], b"one", b"", b"two", b"three")
    assert b"transfer-encoding: chunked" in data
    (response,) = http.parse(data)
    assert response.body == b"onetwothree"


def test_streamed_body_to_http_10_ends_with_the_connection(
    http: SimpleNamespace, engine: Any
) -> None:
    engine, data = respond(engine, b"GET / HTTP/1.0\r\n\r\n", 200, [], b"one", b"two")
    assert b"transfer-encoding" not in data
    assert b"connection: close" in data
    assert data.endswith(b"onetwo")
    assert engine.keep_alive is False


def test_head_response_has_no_body(http: SimpleNamespace, engine: Any) -> None:
    _, data = respond(engine, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", 200, [], b"hello")
    assert data.endswith(b"\r\n\r\n")
    (response,) = http.parse(data, method=b"HEAD")
    assert response.header(b"content-length") == b"5"
    assert response.body == b""


def test_head_with_declared_length_keeps_it(engine: Any) -> None:
    _, data = respond(
        engine, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", 200, [(b"content-length", b"99")], b""
    )
    assert b"content-length: 99\r\n" in data
    assert data.endswith(b"\r\n\r\n")


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(status: int, engine: Any) -> None:
    _, data = respond(engine, GET, status, [], b"ignored")
    assert data.endswith(b"\r\n\r\n")
    assert b"ignored" not in data
    assert b"transfer-encoding" not in data


def test_application_transfer_encoding_is_ignored(http: SimpleNamespace, engine: Any) -> None:
    _, data = respond(engine, GET, 200, [(b"transfer-encoding", b"gzip")], b"x")
    assert b"gzip" not in data
    assert http.parse(data)[0].body == b"x"


def test_application_connection_close_is_honoured(engine: Any) -> None:
    engine, data = respond(engine, GET, 200, [(b"connection", b"close")], b"x")
    assert data.count(b"connection: close") == 1
    assert engine.keep_alive is False


def test_close_option_adds_connection_close(engine: Any) -> None:
    engine, data = respond(engine, GET, 200, [], b"x", close=True)
    assert b"connection: close" in data
    assert engine.keep_alive is False


def test_application_date_and_server_win(engine: Any) -> None:
    _, data = respond(engine, GET, 200, [(b"date", b"yesterday"), (b"server", b"mine")], b"")
    assert b"date: yesterday" in data
    assert b"server: mine" in data
    assert b"server: test" not in data


def test_declared_content_length_is_enforced(engine: Any) -> None:
    engine = engine()
    feed(engine, GET)
    with pytest.raises(ApplicationError, match="longer than its Content-Length"):
        engine.start_response(200, [(b"content-length", b"2")], b"abc", more_body=False)


def test_short_body_makes_the_connection_unusable(engine: Any) -> None:
    engine = engine()
    feed(engine, GET)
    engine.start_response(200, [(b"content-length", b"10")], b"abc", more_body=True)
    engine.end_response()
    assert engine.body_shortfall == 7
    assert engine.keep_alive is False


def test_trailers_are_sent_after_the_last_chunk(http: SimpleNamespace, engine: Any) -> None:
    engine = engine()
    feed(engine, GET)
    data = engine.start_response(200, [], b"body", more_body=True)
    data += engine.end_response([(b"x-checksum", b"abc")])
    assert data.endswith(b"0\r\nx-checksum: abc\r\n\r\n")
    assert http.parse(data)[0].body == b"body"


@pytest.mark.parametrize(
    ("status", "headers", "match"),
    [
        (200.0, [], "status must be an int"),
        (99, [], "status must be an int"),
        (101, [], "status must be an int"),
        (600, [], "status must be an int"),
        (200, [("a", "b")], "must be bytes"),
        (200, [(b"bad name", b"x")], "Invalid response header name"),
        (200, [(b"x", b"a\r\nInjected: 1")], "control character"),
        (200, [(b"x", b"a\x00")], "control character"),
        (200, [(b"content-length", b"-1")], "Invalid Content-Length"),
        (200, [(b"content-length", b"1"), (b"content-length", b"2")], "Conflicting"),
        (200, [b"abc"], "pair"),
        (200, 5, "iterable"),
    ],
)
def test_invalid_responses_are_application_errors(
    status: Any, headers: Any, match: str, engine: Any
) -> None:
    engine = engine()
    feed(engine, GET)
    with pytest.raises(ApplicationError, match=match):
        engine.start_response(status, headers, b"", more_body=False)


def test_repeated_heads_are_answered_alike_and_invalid_ones_never_slip_through(
    engine: Any, http: SimpleNamespace
) -> None:
    """Checked heads are remembered: repeats must be identical, and a remembered
    valid head must not vouch for an invalid one that compares equal to it."""
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"2")]
    responses = []
    for status in (200, 404, 200, 404):
        server = engine()
        feed(server, GET)
        responses.append(server.start_response(status, list(headers), b"ok", more_body=False))

    def undated(data: bytes) -> bytes:
        return re.sub(rb"date: [^\r]*\r\n", b"", data)

    assert [http.parse(data)[0].status for data in responses] == [200, 404, 200, 404]
    assert undated(responses[0]) == undated(responses[2])
    # 200.0 == 200 and (b"x", b"y") pairs as lists are equal to remembered keys.
    for status, pairs in [(200.0, headers), (200, [list(pair) for pair in headers])]:
        server = engine()
        feed(server, GET)
        if isinstance(status, float):
            with pytest.raises(ApplicationError, match="status must be an int"):
                server.start_response(status, pairs, b"ok", more_body=False)
        else:
            data = server.start_response(status, pairs, b"ok", more_body=False)
            assert undated(data) == undated(responses[0])
    # The framing decided from a remembered head follows this request (HEAD: no body).
    server = engine()
    feed(server, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = server.start_response(200, list(headers), b"", more_body=False)
    assert data.endswith(b"\r\n\r\n")
    assert b"content-length: 2\r\n" in data


def test_error_response_closes(http: SimpleNamespace) -> None:
    data = error_response(431, "Request header fields too large", b"server: s\r\n")
    (response,) = http.parse(data)
    assert response.status == 431
    assert response.header(b"connection") == b"close"
    assert b"Request header fields too large" in response.body


def test_simple_response_checks_the_length() -> None:
    assert simple_response(403, [], b"no").endswith(b"\r\n\r\nno")
    with pytest.raises(ApplicationError, match="does not match"):
        simple_response(403, [(b"content-length", b"5")], b"no")


# -- the in-memory client/server pair ----------------------------------------------------------


def test_pair_keep_alive_round_trips(pairs: SimpleNamespace, engine: Any) -> None:
    pair = pairs.http(engine)
    for number in range(3):
        pair.send(
            h11.Request(
                method="POST", target=f"/{number}", headers=[("Host", "x"), ("Content-Length", "2")]
            )
        )
        pair.send(h11.Data(data=b"hi"), h11.EndOfMessage())
        events = pair.server_events()
        assert events[0].target == f"/{number}".encode()
        data = pair.server.start_response(200, [], b"ok%d" % number, more_body=False)
        client_events = pair.deliver(data)
        assert isinstance(client_events[0], h11.Response)
        assert bytes(client_events[1].data) == b"ok%d" % number
        pair.client.start_next_cycle()
        pair.server.start_next_request()


# -- hypothesis ----------------------------------------------------------------------------------


@fixtures
@given(data=st.data())
def test_any_valid_request_is_parsed_exactly(
    data: st.DataObject, strategies: SimpleNamespace, engine: Any
) -> None:
    method = data.draw(strategies.methods)
    path = data.draw(strategies.paths | strategies.percent_encoded_paths)
    query = data.draw(strategies.queries)
    target = path + ("?" + query if query else "")
    headers = data.draw(strategies.headers)
    body = data.draw(strategies.bodies)
    use_chunked = data.draw(st.booleans())
    raw_headers = [(b"Host", b"example.com")] + [(k.encode(), v.encode()) for k, v in headers]
    if use_chunked:
        raw_headers.append((b"Transfer-Encoding", b"chunked"))
        encoded = strategies.chunked(body, data.draw(st.lists(st.integers(1, 500), max_size=5)))
    else:
        raw_headers.append((b"Content-Length", str(len(body)).encode()))
        encoded = body
    request = (
        f"{method} {target} HTTP/1.1\r\n".encode()
        + b"".join(name + b": " + value + b"\r\n" for name, value in raw_headers)
        + b"\r\n"
        + encoded
    )
    pieces = strategies.split_bytes(request, data.draw(strategies.split_points))
    parser = engine(HTTPLimits(max_header_size=65536, max_request_line_size=65536))
    events = feed(parser, *pieces)
    head = events[0]
    assert isinstance(head, RequestHead)
    assert head.method == method.encode()
    assert head.target == target.encode()
    assert head.headers == [(name.lower(), value.strip()) for name, value in raw_headers]
    assert b"".join(event for event in events if isinstance(event, bytes)) == body
    # CONNECT (like an upgrade) pauses the engine after the request.
    assert [event for event in events if event is not PAUSED][-1] is END_OF_REQUEST


@fixtures
@given(data=st.data())
def test_a_forbidden_byte_anywhere_in_a_value_is_refused(
    data: st.DataObject, strategies: SimpleNamespace, engine: Any
) -> None:
    name = data.draw(strategies.header_names)
    value = data.draw(strategies.header_values.filter(bool)).encode()
    position = data.draw(st.integers(0, len(value)))
    bad = data.draw(strategies.forbidden_bytes)
    line = name.encode() + b": x" + value[:position] + bad + value[position:] + b"x\r\n"
    error = refused(engine, b"GET / HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n")
    assert error.status_code == 400


@fixtures
@given(garbage=st.binary(max_size=300), split=st.lists(st.integers(0, 300), max_size=4))
def test_arbitrary_bytes_only_ever_raise_protocol_errors(
    garbage: bytes, split: list[int], strategies: SimpleNamespace, engine: Any
) -> None:
    parser = engine(HTTPLimits(max_request_line_size=100, max_header_size=200))
    statuses: list[int] = []
    try:
        feed(parser, *strategies.split_bytes(garbage, split), b"")
    except HTTPProtocolError as error:
        statuses.append(error.status_code)
    assert all(400 <= status <= 505 for status in statuses)


@fixtures
@given(
    status=st.integers(200, 599),
    headers=st.lists(
        st.tuples(
            st.sampled_from(["x-a", "x-b", "content-type"]),
            st.text("abc ;=/", max_size=10).map(str.strip),
        ),
        max_size=5,
    ),
    chunks=st.lists(st.binary(max_size=200), min_size=1, max_size=5),
    http_10=st.booleans(),
)
def test_any_response_round_trips_through_an_independent_parser(
    status: int,
    headers: list[tuple[str, str]],
    chunks: list[bytes],
    http_10: bool,
    http: SimpleNamespace,
    engine: Any,
) -> None:
    request = b"GET / HTTP/1.0\r\n\r\n" if http_10 else GET
    encoded = [(name.encode(), value.encode()) for name, value in headers]
    _, data = respond(engine, request, status, encoded, *chunks)
    (response,) = http.parse(data)
    assert response.status == status
    for name, value in encoded:
        assert (name, value) in response.headers
    expected = b"" if status in (204, 304) else b"".join(chunks)
    assert response.body == expected


def test_repeated_response_headers_frame_the_same_every_time(engine: Any) -> None:
    """Checked header lines are cached; framing headers must never come from the cache."""
    headers = [
        (b"content-type", b"text/plain"),
        (b"content-length", b"5"),
        (b"server", b"mine"),
        (b"date", b"today"),
        (b"connection", b"close"),
        (b"transfer-encoding", b"gzip"),
    ]
    for _ in range(3):
        parser, data = respond(engine, GET, 200, headers, b"hello")
        head = data.split(b"\r\n\r\n")[0].lower()
        assert head.count(b"content-length:") == 1
        assert head.count(b"server:") == 1
        assert head.count(b"date:") == 1
        assert head.count(b"connection: close") == 1
        assert b"transfer-encoding" not in head
        assert parser.keep_alive is False


def test_remembered_response_heads_are_bounded_and_keep_the_newest() -> None:
    """An application sending endless distinct headers costs a bounded memo,
    and what it sends now stays remembered (the oldest entries go first)."""
    from channels_server.protocol import http11

    heads = http11._HEADS
    lines = http11._HEADER_LINES
    for number in range(max(http11._HEADS_SIZE, http11._HEADER_LINES_SIZE) + 10):
        pair = (b"x-number", str(number).encode())
        checked = http11._check_response_head(200, [pair])
        assert checked.lines[-1] == b"x-number: %d\r\n" % number
    assert len(heads) == http11._HEADS_SIZE
    assert len(lines) == http11._HEADER_LINES_SIZE
    assert (200, ((b"x-number", b"0"),)) not in heads
    assert (200, (pair,)) in heads
    assert pair in lines
    # A remembered head is the same as a checked one.
    assert http11._check_response_head(200, [pair]) == checked
