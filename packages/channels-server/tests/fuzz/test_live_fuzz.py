"""Hostile bytes against a live server: both HTTP engines, the WebSocket engine, both loops.

A real server runs in a thread on 127.0.0.1 (port 0); each hypothesis example
opens a connection, writes a case (requests or a handshake and frames,
valid or broken, cut into several writes), then reads until the server
closes. The properties, for every case:

* no crash: nothing is logged at ERROR (an unhandled exception in the
  server, a task that died, the loop's exception handler) and the server
  thread is still serving;
* no hang: the server answers and closes, or closes, within a bounded time
  once the client has said everything (the client half-closes when the
  server goes quiet);
* nothing after a refusal: a response the server writes itself (4xx, 5xx)
  is the last thing on the connection, and says ``connection: close``;
* no extra response: never more final responses than the bytes can hold
  requests (an unsolicited 400 for a stray empty line is one), and over a
  WebSocket never more messages than the client sent data frames, nothing
  after the server's close frame, and every server frame well-formed;
* an error the server writes never repeats a line of the request;
* valid input is answered exactly: each valid request by the application,
  in order, with its path and body size; over a valid WebSocket, every
  message echoed, every ping answered, the client's close answered with 1000;
* the server still answers a normal request on a new connection.

The run in the normal suite is short and always the same (a fixed seed).
``CHANNELS_FUZZ_EXAMPLES=N`` runs N random examples per test instead
(``nox -s fuzz``); ``CHANNELS_FUZZ_REPORT=path`` appends one JSON line per
test with what it ran, for the session's table.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import select
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, seed, settings

from channels_server import Config
from channels_server.server import ServerThread

# conftest.py loads tests/_support as this package before any test module
# is collected (under --import-mode=importlib no test folder is importable).
strategies = importlib.import_module("channels_server_test_support.fuzz_strategies")

LONG_RUN = os.environ.get("CHANNELS_FUZZ_EXAMPLES")
REPORT = os.environ.get("CHANNELS_FUZZ_REPORT")

fuzz_settings = settings(
    max_examples=int(LONG_RUN) if LONG_RUN else 120,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fuzz(test: Any) -> Any:
    """The fuzz settings; the short run always draws the same examples (a fixed seed).

    (A seed rather than ``derandomize``, whose seed is taken from the test's
    source, so that editing a check does not change what the suite runs.)
    """
    test = fuzz_settings(test)
    return test if LONG_RUN else seed(20261205)(test)


# Once the client has sent everything: how long the server may stay silent
# before the client half-closes, and how long it then has to close.
QUIET = 0.1
CLOSE_WITHIN = 5.0
CLIENT_CLOSE = strategies.frame(0x8, struct.pack("!H", 1000))

# Close codes a server may send (RFC 6455 §7.4.1; 1004-1006 and 1015 never go on the wire).
SENDABLE_CLOSE_CODES = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}


class Violation(AssertionError):
    """A property of the live fuzz does not hold for this case."""


# -- the server under test -------------------------------------------------------------------


async def application(echo: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    """HTTP: read the body, answer 200 with no body; WebSocket: *echo* (accept and echo)."""
    if scope["type"] == "http":
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        # Content-Length 0 frames the answer the same for every method.
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", b"0"),
                    (b"x-path", scope["raw_path"] or b"-"),
                    (b"x-received", str(received).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})
    elif scope["type"] == "websocket":
        await echo(scope, receive, send)


class ErrorLog(logging.Handler):
    """Every record at ERROR or above, from any logger (the server's, asyncio's)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[str]:
        found = [self.format(record) for record in self.records]
        self.records.clear()
        return found


@dataclass
class LiveServer:
    """The server under test, what it logged, and counts for the report."""

    thread: ServerThread
    port: int
    errors: ErrorLog
    stats: Counter[str] = field(default_factory=Counter)

    def check_alive(self) -> None:
        """Nothing logged at ERROR, the thread running, a normal request answered."""
        logged = self.errors.take()
        if logged:
            raise Violation("the server logged errors:\n" + "\n".join(logged))
        if not self.thread.is_alive():
            raise Violation("the server thread has stopped")
        # A normal request on a new connection is still answered.
        with socket.create_connection(("127.0.0.1", self.port), timeout=CLOSE_WITHIN) as sock:
            sock.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data, _ = read_until_closed(sock, half_close_when_quiet=False)
        responses, _ = parse_http(data)
        if [response.status for response in responses] != [200]:
            raise Violation(f"a normal request after the case was answered {data[:300]!r}")


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["h11", "httptools"])
def fuzz_server(request: pytest.FixtureRequest, loop_name: str, apps: SimpleNamespace) -> Any:
    errors = ErrorLog()
    root = logging.getLogger()
    root.addHandler(errors)
    config = Config(
        endpoints=("tcp:port=0:interface=127.0.0.1",),
        http=request.param,
        loop=loop_name,  # type: ignore[arg-type]
        lifespan="off",
        # Small limits, so that cases reach them with few bytes.
        max_request_line_size=1024,
        max_header_size=4096,
        max_header_count=20,
        websocket_max_message_size=65536,
        websocket_max_frame_size=65536,
        # Short timers, so that a connection a case left open goes soon;
        # no case waits for one (the client half-closes instead).
        header_timeout=2,
        keep_alive_timeout=2,
        body_timeout=2,
        websocket_connect_timeout=2,
    )
    thread = ServerThread(functools.partial(application, apps.echo), config)
    thread.start()
    address = thread.wait_ready()[0]
    assert isinstance(address, tuple)
    server = LiveServer(thread, address[1], errors)
    started = time.monotonic()
    try:
        yield server
    finally:
        thread.stop()
        root.removeHandler(errors)
        if REPORT:
            record = {
                "test": request.node.originalname,
                "engine": request.param,
                "loop": loop_name,
                "cases": server.stats["cases"],
                "seconds": round(time.monotonic() - started, 1),
                "slowest_case": round(server.stats["slowest_ms"] / 1000, 3),
                "outcome": "failed" if server.stats["failed"] else "passed",
                "valid_cases": server.stats["valid cases"],
                "statuses": {
                    key.removeprefix("status="): value
                    for key, value in server.stats.items()
                    if key.startswith("status=")
                },
            }
            with open(REPORT, "a", encoding="utf-8") as report:
                report.write(json.dumps(record) + "\n")


# -- the client side ---------------------------------------------------------------------------


def send_pieces(sock: socket.socket, pieces: list[bytes], pause: float) -> bool:
    """Write each piece; ``False`` once the server has closed its side for reading."""
    for piece in pieces:
        try:
            sock.sendall(piece)
        except OSError:
            return False
        if pause:
            # Not synchronisation: a gap, so that the pieces reach the server
            # as separate reads more often than back-to-back writes do.
            time.sleep(pause)
    return True


def read_until_closed(sock: socket.socket, *, half_close_when_quiet: bool) -> tuple[bytes, bool]:
    """All the server sends until it closes; and whether it reset the connection.

    Raises :class:`Violation` when the server neither closes nor speaks for
    ``CLOSE_WITHIN`` seconds after the client half-closed (a hang).
    """
    chunks: list[bytes] = []
    half_closed = not half_close_when_quiet
    deadline = time.monotonic() + CLOSE_WITHIN
    # However it keeps talking, a server has this long in all.
    give_up = time.monotonic() + 3 * CLOSE_WITHIN
    while True:
        wait = QUIET if not half_closed else deadline - time.monotonic()
        if wait <= 0 or time.monotonic() > give_up:
            raise Violation(
                f"hang: the connection is still open {CLOSE_WITHIN}s after the client"
                f" finished; received so far {b''.join(chunks)[:300]!r}"
            )
        readable, _, _ = select.select([sock], [], [], wait)
        if not readable:
            if not half_closed:
                # Nothing more is coming from the client: say so.
                half_closed = True
                deadline = time.monotonic() + CLOSE_WITHIN
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            continue
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return b"".join(chunks), True
        if not data:
            return b"".join(chunks), False
        chunks.append(data)


@dataclass
class Response:
    status: int
    headers: dict[bytes, bytes]
    end: int  # Where the response ends in the received bytes.


def parse_http(data: bytes) -> tuple[list[Response], bytes]:
    """The complete responses at the start of *data*, and what follows them.

    Parsing stops after a 101 (frames follow) or at bytes that are not a
    complete response. Raises :class:`Violation` for a malformed head.
    """
    responses: list[Response] = []
    position = 0
    while position < len(data):
        head_end = data.find(b"\r\n\r\n", position)
        if head_end < 0:
            break
        lines = data[position:head_end].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0") or not parts[1].isdigit():
            raise Violation(f"malformed status line {lines[0][:200]!r}")
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise Violation(f"malformed response header line {line[:200]!r}")
            if name.lower() in headers and name.lower() in (b"content-length", b"connection"):
                raise Violation(f"response header {name!r} twice")
            headers[name.lower()] = value.strip()
        body_start = head_end + 4
        status = int(parts[1])
        if b"transfer-encoding" in headers:
            raise Violation("a chunked response, which neither the app nor the server writes")
        length = int(headers.get(b"content-length", b"0"))
        if len(data) < body_start + length:
            break
        position = body_start + length
        responses.append(Response(status, headers, position))
        if status == 101:
            break
    return responses, data[position:]


# Header lines an error message may well name word for word ("Transfer-Encoding: chunked").
_NAMED_IN_ERRORS = (
    b"transfer-encoding",
    b"content-length",
    b"connection",
    b"host",
    b"expect",
    b"upgrade",
    b"sec-websocket-",
)


def request_lines(sent: bytes) -> set[bytes]:
    """The lines of *sent* that an error response must not repeat.

    Those long enough that finding one is no coincidence, but the framing
    header lines, which the server's own messages may name.
    """
    lines = sent.replace(b"\r", b"\n").split(b"\n")
    return {
        line
        for line in lines
        if len(line) >= 12 and not line.lower().lstrip().startswith(_NAMED_IN_ERRORS)
    }


def check_http_responses(
    data: bytes, reset: bool, requests_bound: int, sent: bytes
) -> list[Response]:
    """Check the responses in *data* to the bytes *sent*; the complete ones."""
    responses, rest = parse_http(data)
    final = [response for response in responses if response.status >= 200 or response.status == 101]
    if len(final) > requests_bound:
        statuses = [response.status for response in final]
        raise Violation(
            f"{len(final)} responses {statuses} to bytes that hold at most"
            f" {requests_bound} request(s)"
        )
    for index, response in enumerate(responses):
        if response.status >= 400:
            if response.headers.get(b"connection", b"").lower() != b"close":
                raise Violation(f"a {response.status} without connection: close")
            if index != len(responses) - 1 or rest:
                raise Violation(
                    f"the server wrote after its {response.status}:"
                    f" {data[response.end : response.end + 300]!r}"
                )
            # An error the server writes never repeats the request: header
            # lines carry cookies and tokens into logs and caches.
            length = int(response.headers.get(b"content-length", b"0"))
            body = data[response.end - length : response.end]
            echoed = [line for line in request_lines(sent) if line in body]
            if echoed:
                raise Violation(f"the {response.status} body repeats the request: {echoed[0]!r}")
    if rest and not reset and not (responses and responses[-1].status == 101):
        raise Violation(f"bytes that are no complete response: {rest[:300]!r}")
    return responses


@dataclass
class ServerFrames:
    """What the server sent after its 101."""

    messages: list[tuple[int, bytes]] = field(default_factory=list)
    pongs: list[bytes] = field(default_factory=list)
    close_code: int | None = None
    closed: bool = False


def check_frames(data: bytes, reset: bool, data_frames: int) -> ServerFrames:
    """Check the frames the server sent after its 101, and reassemble its messages."""
    found = ServerFrames()
    position = 0
    fragments: list[bytes] = []
    message_opcode = 0
    while position < len(data):
        if found.closed:
            raise Violation(f"the server sent after its close frame: {data[position:][:100]!r}")
        if len(data) - position < 2:
            break
        first, second = data[position], data[position + 1]
        fin, rsv, opcode = first & 0x80, first & 0x70, first & 0x0F
        if second & 0x80:
            raise Violation("the server masked a frame (RFC 6455 §5.1)")
        if rsv:
            raise Violation("a server frame with reserved bits set")
        length, offset = second & 0x7F, 2
        if length == 126:
            if len(data) - position < 4:
                break
            (length,) = struct.unpack_from("!H", data, position + 2)
            offset = 4
        elif length == 127:
            if len(data) - position < 10:
                break
            (length,) = struct.unpack_from("!Q", data, position + 2)
            offset = 10
        if len(data) - position < offset + length:
            break
        payload = data[position + offset : position + offset + length]
        position += offset + length
        if opcode in (0x8, 0x9, 0xA):
            if not fin or length > 125:
                raise Violation(f"a fragmented or long control frame, opcode {opcode}")
            if opcode == 0xA:
                found.pongs.append(payload)
            elif opcode == 0x8:
                found.closed = True
                if len(payload) == 1:
                    raise Violation("a close frame with a one-byte payload")
                if payload:
                    (code,) = struct.unpack_from("!H", payload)
                    if code not in SENDABLE_CLOSE_CODES and not 3000 <= code < 5000:
                        raise Violation(f"the server sent close code {code}")
                    found.close_code = code
        elif opcode in (0x1, 0x2) and not fragments and not message_opcode:
            message_opcode = opcode
            fragments.append(payload)
        elif opcode == 0x0 and message_opcode:
            fragments.append(payload)
        else:
            raise Violation(f"the server sent a frame with opcode {opcode} out of place")
        if fin and message_opcode and opcode in (0x0, 0x1, 0x2):
            found.messages.append((message_opcode, b"".join(fragments)))
            fragments, message_opcode = [], 0
    if position < len(data) and not reset:
        raise Violation(f"an incomplete frame before the server closed: {data[position:][:100]!r}")
    if len(found.messages) > data_frames:
        raise Violation(f"{len(found.messages)} messages echoed for {data_frames} data frames sent")
    return found


def read_until(sock: socket.socket, answered: Callable[[bytes], bool]) -> tuple[bytes, bool]:
    """Read until *answered* holds for what came so far; and whether the server closed."""
    data = b""
    deadline = time.monotonic() + CLOSE_WITHIN
    while not answered(data):
        wait = deadline - time.monotonic()
        if wait <= 0 or not select.select([sock], [], [], wait)[0]:
            raise Violation(f"hang: no complete answer in {CLOSE_WITHIN}s; received {data[:300]!r}")
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return data, True
        data += chunk
    return data, False


def run_case(
    server: LiveServer,
    pieces: list[bytes],
    pause: float,
    finish: bytes,
    answered: Callable[[bytes], bool] | None = None,
) -> tuple[bytes, bool]:
    """Send a case, then *finish*; what the server sent, and whether it reset the connection.

    With *answered*, the client reads until it holds before sending *finish*.
    """
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=CLOSE_WITHIN) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        data, closed, reset = b"", False, False
        sent = send_pieces(sock, pieces, pause)
        if sent and answered is not None:
            data, closed = read_until(sock, answered)
        if sent and finish and not closed:
            send_pieces(sock, [finish], 0)
        if not closed:
            rest, reset = read_until_closed(sock, half_close_when_quiet=True)
            data += rest
    server.stats["cases"] += 1
    elapsed = int((time.monotonic() - started) * 1000)
    server.stats["slowest_ms"] = max(server.stats["slowest_ms"], elapsed)
    server.stats["resets"] += reset
    return data, reset


# -- the tests ---------------------------------------------------------------------------------


def run(server: LiveServer, check: Any) -> None:
    try:
        check()
    except BaseException:
        server.stats["failed"] = 1
        raise


def test_http_engine_fuzz(fuzz_server: LiveServer) -> None:
    """Requests broken anywhere, pipelined and split: the HTTP engines hold."""

    @fuzz
    @given(case=strategies.http_cases())
    # What the fuzz found, kept: F1, a stray CRLF after a Connection: close
    # request turned its 200 into a 400 (h11 engine).
    @example(
        case=strategies.HTTPCase(
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n\r\n",
            [b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n\r\n"],
            0.0,
            [(b"/", 0)],
        )
    )
    def check(case: Any) -> None:
        answered = None
        if case.expected is not None:
            # Valid requests: the client half-closes only once all are answered.
            count = len(case.expected)

            def answered(data: bytes) -> bool:
                return len(parse_http(data)[0]) >= count

        data, reset = run_case(fuzz_server, case.pieces, case.pause, b"", answered)
        sent = case.data
        bound = strategies.final_request_bound(sent)
        responses = check_http_responses(data, reset, bound, sent)
        for response in responses:
            fuzz_server.stats[f"status={response.status}"] += 1
        if case.expected is not None:
            # Valid requests: each answered by the application, in order.
            fuzz_server.stats["valid cases"] += 1
            answered = [
                (response.headers.get(b"x-path"), int(response.headers.get(b"x-received", -1)))
                for response in responses
                if response.status == 200
            ]
            statuses = [response.status for response in responses]
            if answered != case.expected or len(statuses) != len(answered):
                raise Violation(
                    f"valid requests answered {statuses} {answered}, expected {case.expected}"
                )
        fuzz_server.check_alive()

    run(fuzz_server, check)


def test_websocket_engine_fuzz(fuzz_server: LiveServer) -> None:
    """Handshakes and frames broken anywhere, split: the WebSocket engine holds."""

    @fuzz
    @given(case=strategies.websocket_cases())
    def check(case: Any) -> None:
        answered = None
        if case.expected is not None:
            # Valid frames: the client closes once every echo and pong is in
            # (the server may drop what the application sends after a close).
            messages, pings = case.expected

            def answered(data: bytes) -> bool:
                responses, rest = parse_http(data)
                if not responses or responses[-1].status != 101:
                    return bool(responses)
                found = check_frames(rest, True, len(messages))
                return len(found.messages) >= len(messages) and len(found.pongs) >= len(pings)

        data, reset = run_case(fuzz_server, case.pieces, case.pause, CLIENT_CLOSE, answered)
        sent = case.handshake + case.frames + CLIENT_CLOSE
        bound = strategies.final_request_bound(sent)
        responses = check_http_responses(data, reset, bound, sent)
        for response in responses:
            fuzz_server.stats[f"status={response.status}"] += 1
        upgraded = bool(responses) and responses[-1].status == 101
        if upgraded:
            found = check_frames(data[responses[-1].end :], reset, case.data_frames)
            fuzz_server.stats[f"status=close {found.close_code}"] += 1
        if case.expected is not None:
            # A valid handshake and valid frames: every message echoed in
            # order, every ping answered, the client's close answered with 1000.
            fuzz_server.stats["valid cases"] += 1
            messages, pings = case.expected
            if not upgraded:
                raise Violation(f"a valid handshake answered {data[:300]!r}")
            if (found.messages, found.pongs, found.close_code) != (messages, pings, 1000):
                raise Violation(
                    f"echoed {found.messages}, pongs {found.pongs}, close {found.close_code};"
                    f" expected {messages}, pongs {pings}, close 1000"
                )
        fuzz_server.check_alive()

    run(fuzz_server, check)
