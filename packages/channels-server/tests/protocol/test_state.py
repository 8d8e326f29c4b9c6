"""The state tables: every state can reach its end, and the end is final."""

from __future__ import annotations

from channels_server.protocol.state import (
    HTTP_RESPONSE_TRANSITIONS,
    WEBSOCKET_TRANSITIONS,
    ResponseEvent,
    ResponseState,
    WebSocketEvent,
    WebSocketState,
)


def reachable(table: dict, start: object) -> set:
    seen = {start}
    frontier = [start]
    while frontier:
        state = frontier.pop()
        for (source, _), target in table.items():
            if source == state and target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


def test_every_response_state_is_reachable_and_leads_to_complete() -> None:
    assert reachable(HTTP_RESPONSE_TRANSITIONS, ResponseState.WAITING) == set(ResponseState)
    for state in ResponseState:
        assert ResponseState.COMPLETE in reachable(HTTP_RESPONSE_TRANSITIONS, state)


def test_complete_response_takes_no_events() -> None:
    assert not any(source is ResponseState.COMPLETE for source, _ in HTTP_RESPONSE_TRANSITIONS)


def test_response_must_start_before_its_body() -> None:
    assert (ResponseState.WAITING, ResponseEvent.BODY) not in HTTP_RESPONSE_TRANSITIONS
    assert (ResponseState.WAITING, ResponseEvent.LAST_BODY) not in HTTP_RESPONSE_TRANSITIONS
    assert (ResponseState.STREAMING, ResponseEvent.START) not in HTTP_RESPONSE_TRANSITIONS


def test_every_websocket_state_is_reachable_and_leads_to_closed() -> None:
    assert reachable(WEBSOCKET_TRANSITIONS, WebSocketState.CONNECTING) == set(WebSocketState)
    for state in WebSocketState:
        assert WebSocketState.CLOSED in reachable(WEBSOCKET_TRANSITIONS, state)


def test_losing_the_connection_closes_from_every_state() -> None:
    for state in WebSocketState:
        assert WEBSOCKET_TRANSITIONS[(state, WebSocketEvent.LOST)] is WebSocketState.CLOSED


def test_data_only_flows_while_open() -> None:
    sources = {source for source, event in WEBSOCKET_TRANSITIONS if event is WebSocketEvent.SEND}
    assert sources == {WebSocketState.OPEN}
    accepting = {s for s, event in WEBSOCKET_TRANSITIONS if event is WebSocketEvent.ACCEPT}
    assert accepting == {WebSocketState.CONNECTING}
