"""Turn the ``hosts`` argument of a layer into connection specifications.

``hosts`` is a list; each entry names one Redis server (one shard), one
Sentinel-monitored master, or a node of a Redis Cluster:

* a URL: ``"redis://[[user]:password@]host[:port][/db]"``, ``"rediss://..."``
  (TLS) or ``"unix:///path/to/redis.sock"``, with redis-py's query options;
* a ``(host, port)`` tuple;
* a dict ``{"address": url_or_tuple, **options}`` whose other keys are
  connection-pool options of redis-py (``password``, ``ssl_ca_certs``,
  ``max_connections``, ``socket_timeout``, ...), or such options alone
  (``{"host": ..., "port": ...}``); ``"cluster": True`` or ``False`` states
  whether the server is a Cluster node instead of asking it;
* a Sentinel dict ``{"sentinels": [(host, port), ...], "master_name": name,
  "sentinel_kwargs": {...}, **options}``: the options apply to the master's
  connections, ``sentinel_kwargs`` to the Sentinels'.

Parsing does no I/O; options are checked against redis-py's connection class
so that a typo fails when the layer is built, not at the first message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio.connection import (
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
    parse_url,
)

from .errors import InvalidConfiguration

__all__ = ["HostSpec", "SentinelSpec", "ServerSpec", "parse_hosts"]

DEFAULT_HOST = ("localhost", 6379)

#: Options the layers set unless the host entry says otherwise. A command that
#: fails is not retried by redis-py: a retried send could deliver a message
#: twice, and the receive loops retry on their own schedule.
DEFAULT_OPTIONS: Mapping[str, Any] = {
    "socket_connect_timeout": 3.0,
    "socket_timeout": 10.0,
    "socket_keepalive": True,
    # RESP2 works with every Redis version and behaves the same under every
    # redis-py version the package supports (redis-py 8 would pick RESP3,
    # whose client-side extras make pools keep connections a restart broke).
    "protocol": 2,
}

# Keys of a host dict that configure the pool rather than each connection.
_POOL_OPTIONS = frozenset({"max_connections", "connection_class"})
_URL_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True)
class ServerSpec:
    """One Redis server, or one startup node of a Redis Cluster."""

    #: The keyword arguments of ``redis.asyncio.ConnectionPool`` (including
    #: ``connection_class``), with the layer's defaults filled in.
    options: dict[str, Any]
    #: ``True``/``False`` when the host entry says whether this is a Cluster
    #: node; ``None`` to ask the server (``INFO cluster``) on first use.
    cluster: bool | None = None

    @property
    def address(self) -> str:
        """Where the server is, for messages (never shows a password)."""
        options = self.options
        if options.get("connection_class") is UnixDomainSocketConnection:
            return f"unix://{options.get('path', '')}"
        scheme = "rediss" if options.get("connection_class") is SSLConnection else "redis"
        host = options.get("host", "localhost")
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{options.get('port', 6379)}/{options.get('db', 0)}"

    @property
    def is_tls(self) -> bool:
        return self.options.get("connection_class") is SSLConnection


@dataclass(frozen=True)
class SentinelSpec:
    """A master found through Redis Sentinel."""

    sentinels: list[tuple[str, int]]
    master_name: str
    #: Options of the connections to the master (and its replicas).
    options: dict[str, Any] = field(default_factory=dict)
    #: Options of the connections to the Sentinels themselves.
    sentinel_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> str:
        sentinels = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"sentinel://{sentinels}/{self.master_name}"


HostSpec = ServerSpec | SentinelSpec


def parse_hosts(hosts: object) -> list[HostSpec]:
    """Validate *hosts* and return one specification per entry.

    ``None`` means one server on ``localhost:6379``. Raises
    :class:`~channels_redis.errors.InvalidConfiguration` (a ``ValueError``)
    naming the entry at fault.
    """
    if hosts is None:
        hosts = [DEFAULT_HOST]
    if isinstance(hosts, (str, bytes)):
        raise InvalidConfiguration(
            f"hosts must be a list of hosts, not a single string: wrap it in a list, "
            f"hosts=[{hosts!r}]"
        )
    if isinstance(hosts, Mapping):
        raise InvalidConfiguration(
            f"hosts must be a list of hosts, not a single dict: wrap it in a list, "
            f"hosts=[{dict(hosts)!r}]"
        )
    if not isinstance(hosts, Sequence) or (isinstance(hosts, tuple) and _is_address_tuple(hosts)):
        raise InvalidConfiguration(
            f"hosts must be a list of hosts (URLs, (host, port) tuples or dicts), not {hosts!r}"
            + (f": wrap it in a list, hosts=[{hosts!r}]" if isinstance(hosts, tuple) else "")
        )
    if not hosts:
        raise InvalidConfiguration("hosts must name at least one Redis server")
    return [_parse_entry(index, entry) for index, entry in enumerate(hosts)]


def _is_address_tuple(value: tuple[object, ...]) -> bool:
    return len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def _parse_entry(index: int, entry: object) -> HostSpec:
    where = f"hosts[{index}]"
    if isinstance(entry, str):
        return ServerSpec(_with_defaults(where, _url_options(where, entry)))
    if isinstance(entry, (tuple, list)):
        return ServerSpec(_with_defaults(where, _tuple_options(where, entry)))
    if isinstance(entry, Mapping):
        if "sentinels" in entry:
            return _parse_sentinel(where, entry)
        return _parse_server_dict(where, entry)
    raise InvalidConfiguration(
        f"{where} must be a URL, a (host, port) tuple or a dict, not "
        f"{type(entry).__name__}: {entry!r}"
    )


def _url_options(where: str, url: str) -> dict[str, Any]:
    if not url.startswith(_URL_SCHEMES):
        raise InvalidConfiguration(
            f"{where} is {url!r}: a host URL must start with redis://, rediss:// or unix://"
        )
    try:
        return dict(parse_url(url))
    except ValueError as exc:
        raise InvalidConfiguration(f"{where} is not a valid Redis URL ({exc}): {url!r}") from exc


def _tuple_options(where: str, entry: Sequence[object]) -> dict[str, Any]:
    if len(entry) != 2:
        raise InvalidConfiguration(
            f"{where} must be a (host, port) pair, not {len(entry)} items: {entry!r}"
        )
    host, port = entry
    if not isinstance(host, str) or not host:
        raise InvalidConfiguration(f"{where} has an invalid host {host!r}: expected a host name")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise InvalidConfiguration(f"{where} has an invalid port {port!r}: expected 1-65535")
    return {"host": host, "port": port}


def _parse_server_dict(where: str, entry: Mapping[str, Any]) -> ServerSpec:
    options = dict(entry)
    cluster = options.pop("cluster", None)
    if cluster is not None and not isinstance(cluster, bool):
        raise InvalidConfiguration(f"{where}['cluster'] must be True or False, not {cluster!r}")
    address = options.pop("address", None)
    if address is not None:
        if isinstance(address, str):
            base = _url_options(f"{where}['address']", address)
        elif isinstance(address, (tuple, list)):
            base = _tuple_options(f"{where}['address']", address)
        else:
            raise InvalidConfiguration(
                f"{where}['address'] must be a URL or a (host, port) tuple, not {address!r}"
            )
        options = {**base, **options}
    elif not ({"host", "path"} & options.keys()):
        raise InvalidConfiguration(
            f"{where} must have an 'address' (a URL or a (host, port) tuple), "
            f"'sentinels', or redis-py's 'host'/'path' options: {dict(entry)!r}"
        )
    if options.get("ssl") is True and "connection_class" not in options:
        options["connection_class"] = SSLConnection
    options.pop("ssl", None)
    if "path" in options and "connection_class" not in options:
        options["connection_class"] = UnixDomainSocketConnection
    return ServerSpec(_with_defaults(where, options), cluster=cluster)


def _parse_sentinel(where: str, entry: Mapping[str, Any]) -> SentinelSpec:
    options = dict(entry)
    sentinels = options.pop("sentinels")
    master_name = options.pop("master_name", None)
    sentinel_kwargs = options.pop("sentinel_kwargs", None) or {}
    if not isinstance(master_name, str) or not master_name:
        raise InvalidConfiguration(
            f"{where} is a Sentinel entry and needs 'master_name', the name of the monitored "
            f"master, not {master_name!r}"
        )
    if isinstance(sentinels, (str, bytes)) or not isinstance(sentinels, Sequence) or not sentinels:
        raise InvalidConfiguration(
            f"{where}['sentinels'] must be a non-empty list of (host, port) tuples, "
            f"not {sentinels!r}"
        )
    addresses = []
    for position, sentinel in enumerate(sentinels):
        sentinel_where = f"{where}['sentinels'][{position}]"
        if not isinstance(sentinel, (tuple, list)):
            raise InvalidConfiguration(
                f"{sentinel_where} must be a (host, port) tuple, not {sentinel!r}"
            )
        parsed = _tuple_options(sentinel_where, sentinel)
        addresses.append((parsed["host"], parsed["port"]))
    if not isinstance(sentinel_kwargs, Mapping):
        raise InvalidConfiguration(
            f"{where}['sentinel_kwargs'] must be a dict of connection options, "
            f"not {sentinel_kwargs!r}"
        )
    for forbidden in ("address", "host", "port", "path"):
        if forbidden in options:
            raise InvalidConfiguration(
                f"{where} is a Sentinel entry: the master's address comes from the Sentinels, "
                f"so {forbidden!r} is not allowed"
            )
    options = _with_defaults(where, options)
    options.pop("connection_class", None)
    return SentinelSpec(
        sentinels=addresses,
        master_name=master_name,
        options=options,
        sentinel_kwargs=dict(sentinel_kwargs),
    )


def _with_defaults(where: str, options: dict[str, Any]) -> dict[str, Any]:
    if options.get("decode_responses"):
        raise InvalidConfiguration(
            f"{where} sets decode_responses: the layer stores binary messages and decodes "
            "them itself, so it must stay False"
        )
    options.pop("decode_responses", None)
    merged = {**DEFAULT_OPTIONS, **options}
    connection_class = merged.get("connection_class", Connection)
    if connection_class is UnixDomainSocketConnection:
        merged.pop("socket_keepalive", None)
    _check_options(where, connection_class, merged)
    return merged


def _check_options(where: str, connection_class: type[Any], options: dict[str, Any]) -> None:
    """Build (without connecting) a connection to catch unknown options now."""
    connection_options = {key: value for key, value in options.items() if key not in _POOL_OPTIONS}
    try:
        connection_class(**connection_options)
    except TypeError as exc:
        raise InvalidConfiguration(f"{where} has an option redis-py does not know: {exc}") from exc
