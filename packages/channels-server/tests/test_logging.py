"""The command line's access log stream: daphne's lines, written once per loop turn."""

from __future__ import annotations

import asyncio
import io
import logging
import re

import pytest

from channels_server.logging import StreamAccessLog

pytestmark = pytest.mark.asyncio


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


async def test_lines_of_one_loop_turn_are_written_together() -> None:
    stream = CountingStream()
    log = StreamAccessLog(stream)
    log.http(["10.0.0.1", 5], "GET", b"/a?b=1", "1.1", 200, 13, 0.01)
    log.http(("::1", 6), "POST", b"/c", "1.1", None, 0, 0.01)
    log.websocket("WSCONNECT", None, "/ws/", 0.0)
    assert stream.getvalue() == ""  # not before the end of this turn
    await asyncio.sleep(0)
    lines = stream.getvalue().splitlines()
    assert stream.writes == 1
    date = r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d\]"
    assert re.fullmatch(rf'10\.0\.0\.1:5 - - {date} "GET /a\?b=1" 200 13', lines[0])
    assert re.fullmatch(rf'\[::1\]:6 - - {date} "POST /c" - -', lines[1])
    assert re.fullmatch(rf'- - - {date} "WSCONNECT /ws/" - -', lines[2])


async def test_a_failing_stream_is_given_up_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = io.StringIO()
    stream.close()  # writing raises ValueError, as a closed pipe raises OSError
    log = StreamAccessLog(stream)
    with caplog.at_level(logging.WARNING, logger="channels_server"):
        log.http(["10.0.0.1", 5], "GET", b"/", "1.1", 200, 13, 0.01)
        await asyncio.sleep(0)
        log.http(["10.0.0.1", 5], "GET", b"/", "1.1", 200, 13, 0.01)
        await asyncio.sleep(0)
    assert not log.enabled
    assert [
        record.getMessage() for record in caplog.records if "Access log" in record.getMessage()
    ] == [
        "Access log stream failed (I/O operation on closed file); no more access-log lines "
        "will be written"
    ]
