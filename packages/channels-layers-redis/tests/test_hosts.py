"""Parsing of the ``hosts`` argument (no Redis needed)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection

from channels_redis.errors import InvalidConfiguration
from channels_redis.hosts import SentinelSpec, ServerSpec, parse_hosts


def test_default_is_localhost() -> None:
    (spec,) = parse_hosts(None)
    assert isinstance(spec, ServerSpec)
    assert spec.options["host"] == "localhost"
    assert spec.options["port"] == 6379


@pytest.mark.parametrize("hosts", ["redis://localhost:6379", b"redis://localhost"])
def test_a_bare_string_says_to_wrap_it_in_a_list(hosts: Any) -> None:
    with pytest.raises(ValueError, match=r"wrap it in a list, hosts=\["):
        parse_hosts(hosts)


def test_a_bare_tuple_or_dict_says_to_wrap_it_in_a_list() -> None:
    with pytest.raises(InvalidConfiguration, match="wrap it in a list"):
        parse_hosts(("localhost", 6379))
    with pytest.raises(InvalidConfiguration, match="wrap it in a list"):
        parse_hosts({"address": "redis://localhost"})


def test_empty_list() -> None:
    with pytest.raises(InvalidConfiguration, match="at least one"):
        parse_hosts([])


def test_urls() -> None:
    plain, tls, unix = parse_hosts(
        [
            "redis://:secret@example.com:6380/2?socket_timeout=3",
            "rediss://example.com",
            "unix:///run/redis.sock",
        ]
    )
    assert isinstance(plain, ServerSpec)
    assert plain.options["host"] == "example.com"
    assert plain.options["port"] == 6380
    assert plain.options["db"] == 2
    assert plain.options["password"] == "secret"
    assert plain.options["socket_timeout"] == 3.0
    # The address shown in messages never holds the password.
    assert plain.address == "redis://example.com:6380/2"
    assert "secret" not in repr(plain.address)
    assert isinstance(tls, ServerSpec)
    assert tls.options["connection_class"] is SSLConnection
    assert tls.is_tls
    assert isinstance(unix, ServerSpec)
    assert unix.options["connection_class"] is UnixDomainSocketConnection
    assert unix.options["path"] == "/run/redis.sock"
    assert unix.address == "unix:///run/redis.sock"


def test_unknown_scheme_names_the_entry() -> None:
    with pytest.raises(InvalidConfiguration, match=r"hosts\[1\] is 'http://x'.*redis://"):
        parse_hosts(["redis://a", "http://x"])


def test_tuples() -> None:
    (spec,) = parse_hosts([("10.0.0.1", 6390)])
    assert isinstance(spec, ServerSpec)
    assert (spec.options["host"], spec.options["port"]) == ("10.0.0.1", 6390)
    (spec,) = parse_hosts([["::1", "6379"]])
    assert isinstance(spec, ServerSpec)
    assert spec.address == "redis://[::1]:6379/0"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (("localhost",), "a \\(host, port\\) pair, not 1 items"),
        (("localhost", 0), "invalid port 0"),
        (("localhost", 70000), "invalid port 70000"),
        (("localhost", True), "invalid port True"),
        (("", 6379), "invalid host ''"),
        (42, "must be a URL, a \\(host, port\\) tuple or a dict, not int"),
    ],
)
def test_bad_entries(entry: Any, message: str) -> None:
    with pytest.raises(InvalidConfiguration, match=r"hosts\[0\].*" + message):
        parse_hosts([entry])


def test_dicts_with_pool_options() -> None:
    (spec,) = parse_hosts(
        [{"address": "rediss://example.com:6380", "ssl_cert_reqs": None, "max_connections": 50}]
    )
    assert isinstance(spec, ServerSpec)
    assert spec.options["connection_class"] is SSLConnection
    assert spec.options["ssl_cert_reqs"] is None
    assert spec.options["max_connections"] == 50
    (spec,) = parse_hosts([{"address": ("example.com", 6379), "password": "pw", "db": 3}])
    assert isinstance(spec, ServerSpec)
    assert spec.options["db"] == 3
    (spec,) = parse_hosts([{"host": "example.com", "port": 6379, "cluster": True}])
    assert isinstance(spec, ServerSpec)
    assert spec.cluster is True


def test_layer_defaults_can_be_overridden() -> None:
    (spec,) = parse_hosts([{"address": "redis://x", "socket_timeout": 30}])
    assert spec.options["socket_timeout"] == 30
    (spec,) = parse_hosts(["redis://x"])
    assert spec.options["socket_connect_timeout"] == 3.0


def test_unknown_option_fails_when_the_layer_is_built() -> None:
    with pytest.raises(InvalidConfiguration, match=r"hosts\[0\].*socket_timout"):
        parse_hosts([{"address": "redis://x", "socket_timout": 3}])


def test_decode_responses_is_refused() -> None:
    with pytest.raises(InvalidConfiguration, match="decode_responses"):
        parse_hosts([{"address": "redis://x", "decode_responses": True}])


def test_dict_without_an_address() -> None:
    with pytest.raises(InvalidConfiguration, match="must have an 'address'"):
        parse_hosts([{"password": "pw"}])


def test_cluster_flag_must_be_a_bool() -> None:
    with pytest.raises(InvalidConfiguration, match="must be True or False"):
        parse_hosts([{"address": "redis://x", "cluster": "yes"}])


def test_sentinel() -> None:
    (spec,) = parse_hosts(
        [
            {
                "sentinels": [("s1", 26379), ("s2", 26380)],
                "master_name": "mymaster",
                "sentinel_kwargs": {"password": "sentinel-pw"},
                "password": "master-pw",
                "db": 1,
            }
        ]
    )
    assert isinstance(spec, SentinelSpec)
    assert spec.sentinels == [("s1", 26379), ("s2", 26380)]
    assert spec.master_name == "mymaster"
    assert spec.sentinel_kwargs == {"password": "sentinel-pw"}
    assert spec.options["password"] == "master-pw"
    assert spec.options["db"] == 1
    assert spec.address == "sentinel://s1:26379,s2:26380/mymaster"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"sentinels": [("s", 26379)]}, "needs 'master_name'"),
        ({"sentinels": "s:26379", "master_name": "m"}, "non-empty list of \\(host, port\\)"),
        ({"sentinels": [], "master_name": "m"}, "non-empty list"),
        ({"sentinels": ["s:1"], "master_name": "m"}, "must be a \\(host, port\\) tuple"),
        ({"sentinels": [("s", 1)], "master_name": "m", "sentinel_kwargs": 3}, "sentinel_kwargs"),
        ({"sentinels": [("s", 1)], "master_name": "m", "address": "redis://x"}, "'address'"),
    ],
)
def test_bad_sentinel_entries(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidConfiguration, match=message):
        parse_hosts([entry])
