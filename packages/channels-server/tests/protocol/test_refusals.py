"""No refusal the HTTP engines make repeats bytes of the request (issue 11, item 6).

The reason of an :class:`~channels_server.errors.HTTPProtocolError` is what
the client reads in the error response, and what the log gets: a header line
can hold a cookie or a token, so neither may quote one.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels_server.errors import HTTPProtocolError
from channels_server.protocol.fast_http11 import HTTPToolsConnection
from channels_server.protocol.http11 import NEED_DATA, PAUSED, HTTP11Connection, HTTPLimits

_MARK = b"Zq9mark"


@pytest.mark.parametrize("engine", ["h11", "httptools"])
@given(data=st.data())
@settings(max_examples=300, deadline=None)
def test_no_refusal_reason_repeats_the_request(engine: str, data: st.DataObject) -> None:
    """Whatever part of a request is broken, and however, the reason the
    client reads (and the log gets) holds none of its bytes."""
    parts = [
        b"GET",
        b" ",
        b"/path",
        b" ",
        b"HTTP/1.1",
        b"\r\n",
        b"Host: x\r\n",
        b"Cookie: a=b\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"\r\n",
        b"5\r\nhello\r\n0\r\n\r\n",
    ]
    index = data.draw(st.integers(0, len(parts) - 1))
    junk = data.draw(st.sampled_from([b"", b" ", b"\x00", b"\n", b"\r", b":", b"\x7f", b"@"]))
    where = data.draw(st.integers(0, len(parts[index])))
    parts[index] = parts[index][:where] + _MARK + junk + parts[index][where:]
    request = b"".join(parts)
    limits = HTTPLimits(max_request_line_size=200, max_header_size=400, max_header_count=5)
    engine_class = HTTP11Connection if engine == "h11" else HTTPToolsConnection
    connection = engine_class(limits)
    connection.receive_data(request)
    reason = ""
    try:
        for _ in range(20):
            event = connection.next_event()
            if event is NEED_DATA or event is PAUSED:
                break
    except HTTPProtocolError as error:
        reason = f"{error.reason} {error}"
    assert "zq9" not in reason.lower()
