"""Settings and endpoint descriptions."""

from __future__ import annotations

from typing import Any

import pytest

from channels_server.config import (
    Config,
    Endpoint,
    TLSSettings,
    TrustedPeers,
    parse_endpoint,
    tcp_endpoint_description,
)
from channels_server.errors import ConfigurationError


def test_defaults_are_daphnes() -> None:
    config = Config()
    assert config.endpoints == ("tcp:port=8000:interface=127.0.0.1",)
    assert config.http_timeout is None
    assert config.ping_interval == 20
    assert config.ping_timeout == 30
    assert config.websocket_timeout == 86400
    assert config.websocket_connect_timeout == 5
    assert config.application_close_timeout == 10
    assert config.websocket_max_message_size == 1024 * 1024
    assert config.websocket_max_frame_size == 1024 * 1024
    assert config.root_path == ""
    assert config.proxy_headers is False
    assert config.lifespan == "auto"


@pytest.mark.parametrize(
    ("description", "endpoint"),
    [
        ("tcp:port=8000:interface=127.0.0.1", Endpoint("tcp", host="127.0.0.1", port=8000)),
        ("tcp:8001", Endpoint("tcp", host="0.0.0.0", port=8001)),
        ("tcp:8001:0.0.0.0", Endpoint("tcp", host="0.0.0.0", port=8001)),
        ("tcp6:port=80:interface=\\:\\:1", Endpoint("tcp", host="::1", port=80)),
        (
            "tcp:port=0:interface=localhost:backlog=5",
            Endpoint("tcp", host="localhost", port=0, backlog=5),
        ),
        ("unix:/run/app.sock", Endpoint("unix", path="/run/app.sock")),
        ("unix:path=/tmp/a.sock:mode=660", Endpoint("unix", path="/tmp/a.sock", mode=0o660)),
        ("unix:address=/tmp/b.sock:lockfile=1", Endpoint("unix", path="/tmp/b.sock")),
        ("fd:fileno=0", Endpoint("fd", fileno=0)),
        ("fd:3:domain=INET", Endpoint("fd", fileno=3)),
    ],
)
def test_endpoint_descriptions(description: str, endpoint: Endpoint) -> None:
    assert parse_endpoint(description) == endpoint


@pytest.mark.parametrize(
    ("description", "match"),
    [
        ("", "non-empty"),
        ("tcp:", "port must be an integer"),
        ("tcp:interface=1.2.3.4", "has no port"),
        ("tcp:port=99999", "0-65535"),
        ("tcp:port=x", "integer"),
        ("unix:", "no socket path"),
        ("unix:/a:mode=999", "integer"),
        ("fd:", "fileno must be an integer"),
        ("fd:fileno=-1", "negative"),
        ("ssl:443", "needs privateKey"),
        ("ssl:443:privateKey=k.pem:colour=blue", "unexpected"),
        ("udp:53", "unknown kind"),
        ("tcp:80:1.2.3.4:extra", "unexpected"),
        ("tcp:80:colour=blue", "unexpected"),
        ("tcp:80\\", "backslash"),
    ],
)
def test_bad_endpoint_descriptions(description: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        parse_endpoint(description)


def test_daphne_tls_endpoints() -> None:
    """Twisted's ssl: descriptions, as Daphne users write them in their units."""
    assert parse_endpoint(
        "ssl:443:privateKey=key.pem:certKey=crt.pem:interface=0.0.0.0"
        ":extraCertChain=chain.pem:dhParameters=dh.pem:sslmethod=TLSv1_2_METHOD"
    ) == Endpoint(
        "tcp",
        host="0.0.0.0",
        port=443,
        tls=TLSSettings(
            certfile="crt.pem",
            keyfile="key.pem",
            extra_cert_chain="chain.pem",
            dh_params="dh.pem",
        ),
    )
    # certKey defaults to privateKey: one PEM holding both.
    both = parse_endpoint("ssl:port=8443:privateKey=both.pem")
    assert both.tls == TLSSettings(certfile="both.pem")
    assert both.describe() == "ssl:port=8443:interface=0.0.0.0"


def test_ssl_flags_apply_to_every_other_endpoint() -> None:
    config = Config(
        endpoints=("tcp:port=0:interface=127.0.0.1", "unix:/tmp/a.sock", "ssl:0:privateKey=o.pem"),
        ssl_certfile="crt.pem",
        ssl_keyfile="key.pem",
        ssl_keyfile_password="secret",
        ssl_ca_certs="ca.pem",
        ssl_cert_reqs=2,
        ssl_ciphers="ECDHE+AESGCM",
    )
    flags = TLSSettings(
        certfile="crt.pem",
        keyfile="key.pem",
        password="secret",
        ca_certs="ca.pem",
        cert_reqs=2,
        ciphers="ECDHE+AESGCM",
    )
    tcp, unix, ssl = config.parsed_endpoints
    assert tcp.tls == flags
    assert unix.tls == flags
    assert ssl.tls == TLSSettings(certfile="o.pem")
    # The password never shows in a repr (logs, tracebacks).
    assert "secret" not in repr(config)
    assert "secret" not in repr(config.parsed_endpoints)
    assert Config().parsed_endpoints[0].tls is None


def test_describe_round_trips() -> None:
    for description in ("tcp:port=8000:interface=127.0.0.1", "unix:/tmp/x.sock", "fd:fileno=4"):
        assert parse_endpoint(parse_endpoint(description).describe()) == parse_endpoint(description)
    assert parse_endpoint(tcp_endpoint_description("[::1]", 81)) == Endpoint(
        "tcp", host="::1", port=81
    )


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"endpoints": ()}, "non-empty"),
        ({"endpoints": "tcp:80"}, "non-empty"),
        ({"ping_interval": 0}, "ping_interval must be > 0"),
        ({"http_timeout": -1}, "http_timeout"),
        ({"websocket_timeout": "1"}, "number"),
        ({"websocket_max_message_size": 0}, "positive int"),
        ({"max_header_count": True}, "positive int"),
        ({"max_request_line_size": 20000}, "cannot exceed"),
        ({"lifespan": "yes"}, "lifespan"),
        ({"loop": "trio"}, "loop"),
        ({"http": "hyper"}, "http must be"),
        ({"root_path": "app"}, "root_path"),
        ({"root_path": "/app/"}, "root_path"),
        ({"server_name": "bad\nname"}, "server_name"),
        ({"proxy_headers_host": "X-Bad:"}, "header name"),
        ({"forwarded_allow_ips": "127.0.0.1"}, "tuple"),
        ({"forwarded_allow_ips": ("not-an-ip",)}, "not an IP address"),
        ({"http2": "yes"}, "http2 must be"),
        ({"http2_max_concurrent_streams": 0}, "http2_max_concurrent_streams"),
        ({"ws_per_message_deflate": "on"}, "ws_per_message_deflate"),
        ({"ssl_keyfile": "key.pem"}, "ssl_keyfile needs ssl_certfile"),
        ({"ssl_cert_reqs": 2}, "ssl_cert_reqs needs ssl_certfile"),
        ({"ssl_certfile": "c.pem", "ssl_cert_reqs": 2}, "need ssl_ca_certs"),
        ({"ssl_certfile": "c.pem", "ssl_cert_reqs": 3}, "0 .*1 .*or 2"),
        ({"ssl_certfile": ""}, "file path"),
    ],
)
def test_invalid_settings_name_the_setting(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        Config(**options)


def test_config_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Config(ping_timeout=-5)


def test_trusted_peers() -> None:
    peers = TrustedPeers(("127.0.0.1", "10.0.0.0/8", "::1"))
    assert "127.0.0.1" in peers
    assert "10.1.2.3" in peers
    assert "::1" in peers
    assert "11.0.0.1" not in peers
    assert "garbage" not in peers
    assert None not in peers
    assert "1.2.3.4" in TrustedPeers(("*",))
    assert "127.0.0.1" not in TrustedPeers(())


def test_proxy_header_names_are_normalised() -> None:
    config = Config(proxy_headers_host="X-Real-IP")
    assert config.proxy_header_names == (b"x-real-ip", b"x-forwarded-port", b"x-forwarded-proto")


def test_engine_choice() -> None:
    from channels_server.context import http_engine_class
    from channels_server.protocol.fast_http11 import HTTPToolsConnection
    from channels_server.protocol.http11 import HTTP11Connection

    assert http_engine_class("h11") is HTTP11Connection
    assert http_engine_class("httptools") is HTTPToolsConnection
    # httptools is installed in the development environment.
    assert http_engine_class("auto") is HTTPToolsConnection
