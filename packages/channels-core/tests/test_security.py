"""channels.security.websocket: origin checks and refused handshakes."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import ParseResult, urlparse

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.security.websocket import (
    AllowedHostsOriginValidator,
    OriginValidator,
    WebsocketDenier,
)
from channels.testing import ApplicationCommunicator, WebsocketCommunicator

TIMEOUT = 10


class Recorder:
    """The protected application: accepts, and remembers every scope it saw."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        message = await receive()
        assert message["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass


def origin_headers(*origins: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"origin", origin) for origin in origins]


async def handshake(app: Any, headers: list[tuple[bytes, bytes]]) -> tuple[bool, Any]:
    communicator = WebsocketCommunicator(app, "/ws/", headers=headers)
    result = await communicator.connect(timeout=TIMEOUT)
    await communicator.disconnect(timeout=TIMEOUT)
    return result


async def allowed(allowed_origins: list[str], *origins: bytes) -> bool:
    recorder = Recorder()
    accepted, detail = await handshake(
        OriginValidator(recorder, allowed_origins), origin_headers(*origins)
    )
    if accepted:
        assert len(recorder.scopes) == 1
    else:
        # Refused before accept (the server answers 403), never reaching the app.
        assert detail == 1000
        assert recorder.scopes == []
    return accepted


MATCHES = [
    # domains
    (["example.com"], b"http://example.com", True),
    (["example.com"], b"https://example.com:8443", True),
    (["example.com"], b"http://www.example.com", False),
    (["example.com"], b"http://example.com.evil.net", False),
    (["example.com"], b"http://evilexample.com", False),
    ([".example.com"], b"http://example.com", True),
    ([".example.com"], b"https://deep.sub.example.com", True),
    ([".example.com"], b"https://evilexample.com", False),
    (["EXAMPLE.com"], b"http://Example.COM", True),
    (["example.com"], b"http://example.com.", True),
    (["example.com:8000"], b"http://example.com:8000", True),
    (["example.com:8000"], b"http://example.com", False),
    # full origins
    (["http://example.com"], b"http://example.com", True),
    (["http://example.com"], b"http://example.com:80", True),
    (["http://example.com:80"], b"http://example.com", True),
    (["http://example.com"], b"https://example.com", False),
    (["http://example.com"], b"http://example.com:8080", False),
    (["https://example.com"], b"https://example.com:443", True),
    (["https://example.com:8443"], b"https://example.com:8443", True),
    (["https://example.com:8443"], b"https://example.com", False),
    (["http://.example.com:80"], b"http://a.example.com", True),
    (["http://.example.com:80"], b"https://a.example.com", False),
    (["http://other.site.com"], b"http://other.site.com", True),
    (["http://other.site.com"], b"http://site.com", False),
    (["chrome-extension://abcdef"], b"chrome-extension://abcdef", True),
    # IP literals
    (["[::1]"], b"http://[::1]:8000", True),
    (["http://[::1]:8000"], b"http://[::1]:8000", True),
    (["127.0.0.1"], b"http://127.0.0.1:8000", True),
    (["127.0.0.1"], b"http://127.0.0.2", False),
    # several entries
    ([".goodsite.com", "http://other.site.com"], b"http://other.site.com", True),
    ([".goodsite.com", "http://other.site.com"], b"https://www.goodsite.com", True),
    ([".goodsite.com", "http://other.site.com"], b"https://badsite.com", False),
    ([], b"http://example.com", False),
    # anything goes
    (["*"], b"http://anything.example", True),
    (["example.com", "*"], b"http://anything.example", True),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("allowed_origins", "origin", "expected"), MATCHES)
async def test_origin_matching(allowed_origins: list[str], origin: bytes, expected: bool) -> None:
    assert await allowed(allowed_origins, origin) is expected


BAD_ORIGINS = [
    b"null",
    b"NULL",
    b"",
    b"   ",
    b"example.com",
    b"http://",
    b"http://:80",
    b"http://example.com/",
    b"http://example.com/path",
    b"http://example.com?x",
    b"http://user@example.com",
    b"http://evil.com\\@example.com",
    b"http://evil.com#@example.com",
    b"http://example.com:",
    b"http://example.com:99999",
    b"http://example.com:80:80",
    b"http://example.com http://other.com",
    b"http://[::1",
    b"http://ex\xc3\xa4mple.com",
    b"http://example.com\xff",
    b"http://example.com\x00",
    b"\xff\xfe",
    b"//example.com",
    b"1http://example.com",
]


@pytest.mark.asyncio
@pytest.mark.parametrize("origin", BAD_ORIGINS)
async def test_malformed_null_and_non_ascii_origins_are_refused(origin: bytes) -> None:
    assert await allowed(["example.com", "http://example.com"], origin) is False
    assert await allowed(["*"], origin) is True


@pytest.mark.asyncio
async def test_missing_origin_is_refused_unless_star() -> None:
    assert await allowed(["example.com"]) is False
    assert await allowed(["*"]) is True


@pytest.mark.asyncio
async def test_several_origin_headers_are_refused() -> None:
    assert await allowed(["example.com"], b"http://example.com", b"http://example.com") is False
    assert await allowed(["example.com"], b"http://evil.com", b"http://example.com") is False


@pytest.mark.asyncio
async def test_surrounding_whitespace_in_origin_is_ignored() -> None:
    assert await allowed(["example.com"], b" http://example.com\t") is True


@hypothesis_settings(max_examples=300, deadline=None)
@given(origin=st.binary(max_size=80) | st.text(max_size=80).map(str.encode))
def test_any_origin_header_is_answered_not_crashed(origin: bytes) -> None:
    result = async_to_sync(allowed)(["example.com", "https://.example.org:8443"], origin)
    assert isinstance(result, bool)


@pytest.mark.asyncio
async def test_allowed_connection_gets_the_server_scope_unchanged() -> None:
    recorder = Recorder()
    communicator = WebsocketCommunicator(
        OriginValidator(recorder, ["example.com"]),
        "/ws/",
        headers=origin_headers(b"http://example.com"),
    )
    assert await communicator.connect(timeout=TIMEOUT) == (True, None)
    await communicator.disconnect()
    assert recorder.scopes == [communicator.scope]


@pytest.mark.parametrize(
    ("allowed_origins", "error", "message"),
    [
        ("example.com", TypeError, "must be a list of str"),
        (b"example.com", TypeError, "must be a list of str"),
        (None, TypeError, "must be a list of str"),
        ([42], TypeError, "must be a str"),
        ([""], ValueError, "is not valid"),
        (["http://"], ValueError, "is not valid"),
        (["http://example.com/path"], ValueError, "is not valid"),
        (["two words"], ValueError, "is not valid"),
        (["example.com:70000"], ValueError, "above 65535"),
        (["bücher.example"], ValueError, "xn--"),
    ],
)
def test_bad_allowed_origins_are_refused_at_construction(
    allowed_origins: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        OriginValidator(Recorder(), allowed_origins)


def test_validator_keeps_wrapped_app_and_origins() -> None:
    recorder = Recorder()
    validator = OriginValidator(recorder, ["example.com"])
    assert validator.inner is recorder
    assert validator.application is recorder
    assert validator.allowed_origins == ["example.com"]


@pytest.mark.asyncio
@pytest.mark.parametrize("validator", [OriginValidator, AllowedHostsOriginValidator])
async def test_validators_refuse_non_websocket_scopes(validator: Any) -> None:
    app = validator(Recorder(), ["*"]) if validator is OriginValidator else validator(Recorder())
    with pytest.raises(ValueError, match="only handles WebSocket"):
        await app({"type": "http", "headers": []}, None, None)


# -- the refusal itself --------------------------------------------------------------


def websocket_scope(extensions: dict[str, Any] | None) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "path": "/ws/",
        "query_string": b"",
        "headers": origin_headers(b"http://evil.example"),
    }
    if extensions is not None:
        scope["extensions"] = extensions
    return scope


@pytest.mark.asyncio
@pytest.mark.parametrize("extensions", [None, {}, {"http.response.push": {}}])
async def test_refusal_without_denial_extension_is_close_before_accept(extensions: Any) -> None:
    recorder = Recorder()
    communicator = ApplicationCommunicator(
        OriginValidator(recorder, ["example.com"]), websocket_scope(extensions)
    )
    await communicator.send_input({"type": "websocket.connect"})
    assert await communicator.receive_output(TIMEOUT) == {"type": "websocket.close"}
    await communicator.wait(TIMEOUT)
    assert await communicator.receive_nothing()
    assert recorder.scopes == []


@pytest.mark.asyncio
async def test_refusal_with_denial_extension_is_a_real_403_response() -> None:
    recorder = Recorder()
    communicator = ApplicationCommunicator(
        OriginValidator(recorder, ["example.com"]),
        websocket_scope({"websocket.http.response": {}}),
    )
    await communicator.send_input({"type": "websocket.connect"})
    start = await communicator.receive_output(TIMEOUT)
    body = await communicator.receive_output(TIMEOUT)
    await communicator.wait(TIMEOUT)
    assert start["type"] == "websocket.http.response.start"
    assert start["status"] == 403
    headers = dict(start["headers"])
    assert headers[b"content-type"].startswith(b"text/plain")
    assert body["type"] == "websocket.http.response.body"
    assert int(headers[b"content-length"]) == len(body["body"])
    assert b"403" in body["body"]
    assert not body.get("more_body", False)
    assert recorder.scopes == []


@pytest.mark.asyncio
async def test_refusal_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="channels.security.websocket"):
        await allowed(["example.com"], b"http://evil.example")
    assert "Refused a WebSocket handshake to '/ws/'" in caplog.text
    assert "evil.example" in caplog.text


@pytest.mark.asyncio
@pytest.mark.parametrize("make", [lambda: WebsocketDenier(), WebsocketDenier.as_asgi])
async def test_websocket_denier_on_its_own(make: Any) -> None:
    communicator = WebsocketCommunicator(make(), "/ws/")
    assert await communicator.connect(timeout=TIMEOUT) == (False, 1000)
    await communicator.wait(TIMEOUT)


@pytest.mark.asyncio
async def test_websocket_denier_with_the_denial_extension_on_its_own() -> None:
    communicator = ApplicationCommunicator(
        WebsocketDenier.as_asgi(), websocket_scope({"websocket.http.response": {}})
    )
    await communicator.send_input({"type": "websocket.connect"})
    assert (await communicator.receive_output(TIMEOUT))["status"] == 403
    assert (await communicator.receive_output(TIMEOUT))["type"] == "websocket.http.response.body"
    await communicator.wait(TIMEOUT)


@pytest.mark.asyncio
async def test_websocket_denier_ends_quietly_if_the_client_leaves_first() -> None:
    communicator = ApplicationCommunicator(WebsocketDenier(), websocket_scope(None))
    await communicator.send_input({"type": "websocket.disconnect", "code": 1006})
    await communicator.wait(TIMEOUT)
    assert await communicator.receive_nothing()


@pytest.mark.asyncio
async def test_websocket_denier_refuses_other_scopes() -> None:
    with pytest.raises(ValueError, match="only handles WebSocket"):
        await WebsocketDenier()({"type": "http"}, None, None)  # type: ignore[arg-type]


def test_websocket_denier_is_a_consumer() -> None:
    # Code written for Channels treats it as one.
    assert issubclass(WebsocketDenier, AsyncWebsocketConsumer)


# -- AllowedHostsOriginValidator -----------------------------------------------------


async def allowed_by_hosts(*origins: bytes) -> bool:
    recorder = Recorder()
    accepted, _ = await handshake(AllowedHostsOriginValidator(recorder), origin_headers(*origins))
    assert bool(recorder.scopes) is accepted
    return accepted


@pytest.mark.asyncio
async def test_allowed_hosts_are_allowed_origins(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["testserver", ".example.com"]
    assert await allowed_by_hosts(b"http://testserver") is True
    assert await allowed_by_hosts(b"https://www.example.com:8443") is True
    assert await allowed_by_hosts(b"https://example.com") is True
    assert await allowed_by_hosts(b"http://evil.example") is False
    assert await allowed_by_hosts(b"null") is False
    assert await allowed_by_hosts() is False


@pytest.mark.asyncio
async def test_allowed_hosts_are_read_at_each_connection(settings: Any) -> None:
    validator = AllowedHostsOriginValidator(Recorder())
    settings.ALLOWED_HOSTS = ["one.example"]
    assert validator.allowed_origins == ["one.example"]
    assert (await handshake(validator, origin_headers(b"http://one.example")))[0] is True
    settings.ALLOWED_HOSTS = ["two.example"]
    assert (await handshake(validator, origin_headers(b"http://one.example")))[0] is False


@pytest.mark.asyncio
async def test_allowed_hosts_star_allows_everything(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["*"]
    assert await allowed_by_hosts(b"http://anything.example") is True
    assert await allowed_by_hosts() is True


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        (b"http://localhost:8000", True),
        (b"http://localhost", True),
        (b"http://app.localhost:3000", True),
        (b"http://127.0.0.1:8000", True),
        (b"http://[::1]:8000", True),
        (b"https://[::1]", True),
        (b"http://example.com", False),
        (b"http://localhost.evil.com", False),
        (b"http://127.0.0.1.evil.com", False),
        (b"null", False),
    ],
)
async def test_debug_with_no_allowed_hosts_allows_local_origins(
    settings: Any, origin: bytes, expected: bool
) -> None:
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = []
    assert await allowed_by_hosts(origin) is expected


@pytest.mark.asyncio
async def test_no_debug_and_no_allowed_hosts_allows_nothing(settings: Any) -> None:
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = []
    assert await allowed_by_hosts(b"http://localhost:8000") is False


@pytest.mark.asyncio
async def test_debug_does_not_widen_configured_allowed_hosts(settings: Any) -> None:
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = ["example.com"]
    assert await allowed_by_hosts(b"http://localhost:8000") is False
    assert await allowed_by_hosts(b"http://example.com") is True


@pytest.mark.asyncio
async def test_unreadable_allowed_hosts_entry_is_improperly_configured(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["example.com", "not a host"]
    with pytest.raises(ImproperlyConfigured, match="'not a host'"):
        await AllowedHostsOriginValidator(Recorder())(
            websocket_scope(None),
            None,
            None,  # type: ignore[arg-type]
        )


# -- the overridable methods, as in Channels ------------------------------------------


class CallLog(OriginValidator):
    """Records the methods called, and what they were given."""

    def __init__(self, application: Any, allowed_origins: list[str]) -> None:
        super().__init__(application, allowed_origins)
        self.calls: list[tuple[str, Any]] = []

    def valid_origin(self, parsed_origin: Any) -> bool:
        self.calls.append(("valid_origin", parsed_origin))
        return super().valid_origin(parsed_origin)

    def validate_origin(self, parsed_origin: Any) -> bool:
        self.calls.append(("validate_origin", parsed_origin))
        return super().validate_origin(parsed_origin)

    def match_allowed_origin(self, parsed_origin: Any, pattern: str) -> bool:
        self.calls.append(("match_allowed_origin", pattern))
        return super().match_allowed_origin(parsed_origin, pattern)

    def get_origin_port(self, origin: Any) -> int | None:
        self.calls.append(("get_origin_port", origin.geturl()))
        return super().get_origin_port(origin)


@pytest.mark.asyncio
async def test_the_methods_are_called_in_channels_order() -> None:
    validator = CallLog(Recorder(), ["other.example", "https://example.com"])
    accepted, _ = await handshake(validator, origin_headers(b"https://example.com"))
    assert accepted
    parsed = urlparse("https://example.com")
    assert validator.calls == [
        ("valid_origin", parsed),
        ("validate_origin", parsed),
        ("match_allowed_origin", "other.example"),
        ("match_allowed_origin", "https://example.com"),
        ("get_origin_port", "https://example.com"),
        ("get_origin_port", "https://example.com"),
    ]


@pytest.mark.asyncio
async def test_no_usable_origin_reaches_valid_origin_as_none() -> None:
    validator = CallLog(Recorder(), ["example.com"])
    for headers in ([], origin_headers(b"null"), origin_headers(b"a", b"b")):
        validator.calls.clear()
        accepted, _ = await handshake(validator, headers)
        assert not accepted
        assert validator.calls == [("valid_origin", None)]


@pytest.mark.asyncio
async def test_overriding_valid_origin_changes_the_decision() -> None:
    class AllowMissingOrigin(OriginValidator):
        """Native apps send no Origin; let them in."""

        def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
            return parsed_origin is None or super().valid_origin(parsed_origin)

    app = AllowMissingOrigin(Recorder(), ["example.com"])
    assert (await handshake(app, []))[0]
    assert (await handshake(app, origin_headers(b"http://example.com")))[0]
    assert not (await handshake(app, origin_headers(b"http://evil.example")))[0]


@pytest.mark.asyncio
async def test_overriding_validate_origin_changes_the_decision() -> None:
    class OnlyHttps(OriginValidator):
        def validate_origin(self, parsed_origin: ParseResult | None) -> bool:
            return parsed_origin is not None and parsed_origin.scheme == "https"

    app = OnlyHttps(Recorder(), [])
    assert (await handshake(app, origin_headers(b"https://anything.example")))[0]
    assert not (await handshake(app, origin_headers(b"http://anything.example")))[0]


@pytest.mark.asyncio
async def test_overriding_match_allowed_origin_changes_the_decision() -> None:
    class Prefixes(OriginValidator):
        """Entries are host prefixes (for review apps: pr-123.preview.example)."""

        def match_allowed_origin(self, parsed_origin: ParseResult | None, pattern: str) -> bool:
            hostname = parsed_origin.hostname if parsed_origin is not None else None
            return hostname is not None and hostname.startswith(pattern)

    app = Prefixes(Recorder(), ["pr-"])
    assert (await handshake(app, origin_headers(b"https://pr-123.preview.example")))[0]
    assert not (await handshake(app, origin_headers(b"https://main.preview.example")))[0]


@pytest.mark.asyncio
async def test_overriding_get_origin_port_changes_the_decision() -> None:
    class DevProxy(OriginValidator):
        """Behind a development proxy, http origins without a port are on 8000."""

        def get_origin_port(self, origin: ParseResult) -> int | None:
            if origin.port is None and origin.scheme == "http":
                return 8000
            return super().get_origin_port(origin)

    app = DevProxy(Recorder(), ["http://example.com:8000"])
    assert (await handshake(app, origin_headers(b"http://example.com")))[0]
    assert not (
        await handshake(
            OriginValidator(Recorder(), ["http://example.com:8000"]),
            origin_headers(b"http://example.com"),
        )
    )[0]


def test_get_origin_port_defaults() -> None:
    validator = OriginValidator(Recorder(), [])
    assert validator.get_origin_port(urlparse("http://a.example")) == 80
    assert validator.get_origin_port(urlparse("wss://a.example")) == 443
    assert validator.get_origin_port(urlparse("https://a.example:8443")) == 8443
    assert validator.get_origin_port(urlparse("chrome-extension://abc")) is None


def test_match_allowed_origin_directly() -> None:
    validator = OriginValidator(Recorder(), [])
    origin = urlparse("https://www.example.com")
    assert validator.match_allowed_origin(origin, ".example.com")
    assert validator.match_allowed_origin(origin, "https://www.example.com:443")
    assert not validator.match_allowed_origin(origin, "http://www.example.com")
    assert not validator.match_allowed_origin(None, "example.com")
    assert validator.valid_origin(None) is False
    assert OriginValidator(Recorder(), ["*"]).valid_origin(None) is True


@pytest.mark.asyncio
async def test_allowed_hosts_validator_takes_the_same_path(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["example.com"]

    class Logged(AllowedHostsOriginValidator):
        seen: ClassVar[list[str]] = []

        def match_allowed_origin(self, parsed_origin: ParseResult | None, pattern: str) -> bool:
            self.seen.append(pattern)
            return super().match_allowed_origin(parsed_origin, pattern)

    app = Logged(Recorder())
    assert (await handshake(app, origin_headers(b"http://example.com")))[0]
    assert Logged.seen == ["example.com"]
    assert app.application is app.inner


@pytest.mark.asyncio
async def test_validators_return_what_the_application_returns() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> str:
        return "inner result"

    scope = {"type": "websocket", "path": "/", "headers": origin_headers(b"http://a.example")}
    assert await OriginValidator(app, ["a.example"])(scope, None, None) == "inner result"
