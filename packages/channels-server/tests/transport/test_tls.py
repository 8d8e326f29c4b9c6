"""TLS: contexts made from the settings, HTTPS and WSS over real sockets, client
certificates, the ``tls`` scope extension, and clients that fail the handshake.

Certificates are made by each test with ``trustme`` (``_support/tls.py``):
the server certificate is issued by an intermediate CA and clients trust
only the root, so every successful request also proves the server sent the
intermediate.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import select
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio
import trustme

from channels_server import Config, Server
from channels_server.config import TLSSettings
from channels_server.errors import ConfigurationError
from channels_server.transport.tls import (
    ConnectionTLS,
    alpn_protocols,
    rfc4514_name,
    server_context,
)

# conftest.py has loaded the support package under this name.
support: ModuleType = importlib.import_module("channels_server_test_support.tls")
servers: ModuleType = importlib.import_module("channels_server_test_support.servers")

on_both_loops = pytest.mark.asyncio
LOCAL = "tcp:port=0:interface=127.0.0.1"


@pytest.fixture
def certs(tmp_path: Path) -> Any:
    return support.Certificates(tmp_path)


@pytest_asyncio.fixture
async def start() -> Any:
    """``await start(app, **config)``: a server on 127.0.0.1 (a free port), lifespan off."""
    started = servers.StartedServers(http="auto")
    yield started.start
    await started.shutdown()


def tls_config(certs: Any, **options: Any) -> dict[str, Any]:
    """The ``--ssl-*`` settings for the test certificates, plus *options*."""
    return {"ssl_certfile": certs.fullchain_file, "ssl_keyfile": certs.key_file, **options}


def problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every record at WARNING or above, from any logger (asyncio's included)."""
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


async def wait_for_log(caplog: pytest.LogCaptureFixture, text: str, timeout: float = 5) -> None:
    """Wait until a record containing *text* has been logged."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not any(text in record.getMessage() for record in caplog.records):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no log record with {text!r} in {timeout}s")
        await asyncio.sleep(0.01)


async def read_until_closed(reader: asyncio.StreamReader, timeout: float = 5) -> bytes:
    """What the server sent before closing (a reset counts as closing)."""
    try:
        return await asyncio.wait_for(reader.read(), timeout)
    except (ConnectionError, ssl.SSLError):
        return b""


# -- the context ---------------------------------------------------------------------------------


def test_context_loads_the_certificate_chain_and_key(certs: Any) -> None:
    context = server_context(
        TLSSettings(
            certfile=certs.cert_file, keyfile=certs.key_file, extra_cert_chain=certs.chain_file
        ),
        http2=False,
    )
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.verify_mode is ssl.CERT_NONE
    assert support.same_certificate(context.server_cert, certs.server_cert_pem)


def test_context_takes_the_key_and_chain_from_one_file(certs: Any) -> None:
    # Twisted's privateKey= without certKey=: the key and certificates in one file.
    context = server_context(TLSSettings(certfile=certs.key_and_chain_file), http2=False)
    assert support.same_certificate(context.server_cert, certs.server_cert_pem)


def test_context_decrypts_the_key_with_its_password(certs: Any) -> None:
    settings = TLSSettings(
        certfile=certs.fullchain_file, keyfile=certs.encrypted_key_file, password=certs.password
    )
    assert server_context(settings, http2=False).server_cert is not None


def test_no_temporary_directory_is_a_configuration_error(
    certs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # extraCertChain is joined to the certificate in a temporary file.
    monkeypatch.setattr(tempfile, "tempdir", str(certs.folder / "no-such-directory"))
    settings = TLSSettings(
        certfile=certs.cert_file, keyfile=certs.key_file, extra_cert_chain=certs.chain_file
    )
    with pytest.raises(ConfigurationError, match=f"certificate {certs.cert_file} and its extra"):
        server_context(settings, http2=False)
    # Without extraCertChain no temporary file is needed.
    settings = TLSSettings(certfile=certs.fullchain_file, keyfile=certs.key_file)
    assert server_context(settings, http2=False).server_cert is not None


def test_alpn_offers_h2_only_with_http2() -> None:
    assert alpn_protocols(True) == ["h2", "http/1.1"]
    assert alpn_protocols(False) == ["http/1.1"]


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> tuple[ssl.SSLObject, ...]:
    """A TLS handshake between two contexts in memory; (server side, client side)."""
    server_in, server_out, client_in, client_out = (ssl.MemoryBIO() for _ in range(4))
    server_side = server.wrap_bio(server_in, server_out, server_side=True)
    client_side = client.wrap_bio(client_in, client_out, server_hostname="localhost")
    done: set[int] = set()
    for _ in range(10):
        for index, side in enumerate((client_side, server_side)):
            try:
                side.do_handshake()
                done.add(index)
            except ssl.SSLWantReadError:
                pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if len(done) == 2:
            return server_side, client_side
    raise AssertionError("the handshake did not finish")


@pytest.mark.parametrize(("http2", "selected"), [(True, "h2"), (False, "http/1.1")])
def test_alpn_offers_h2_first_when_http2_is_enabled(certs: Any, http2: bool, selected: str) -> None:
    context = server_context(
        TLSSettings(certfile=certs.fullchain_file, keyfile=certs.key_file), http2=http2
    )
    server_side, client_side = handshake(context, certs.client_context(alpn=["h2", "http/1.1"]))
    assert client_side.selected_alpn_protocol() == selected
    assert ConnectionTLS(server_side).alpn_protocol == selected


def test_connection_builds_the_extension_once(certs: Any) -> None:
    context = server_context(
        TLSSettings(certfile=certs.fullchain_file, keyfile=certs.key_file), http2=False
    )
    server_side, _ = handshake(context, certs.client_context())
    tls = ConnectionTLS(server_side)
    first = tls.extension()
    assert tls.extension() == first
    assert tls._extension is not None
    assert support.same_certificate(first["server_cert"], certs.server_cert_pem)


BROKEN_FILES: dict[str, Callable[[Any], tuple[TLSSettings, str, str]]] = {
    "missing key": lambda c: (
        TLSSettings(certfile=c.fullchain_file, keyfile=str(c.folder / "nope.pem")),
        str(c.folder / "nope.pem"),
        "TLS private key {}: no such file or directory",
    ),
    "wrong password": lambda c: (
        TLSSettings(certfile=c.fullchain_file, keyfile=c.encrypted_key_file, password="wrong"),
        c.encrypted_key_file,
        "TLS private key {}: wrong password",
    ),
    "no password": lambda c: (
        TLSSettings(certfile=c.fullchain_file, keyfile=c.encrypted_key_file),
        c.encrypted_key_file,
        "TLS private key {}: it is encrypted and no password was given",
    ),
    "garbage key": lambda c: (
        TLSSettings(certfile=c.fullchain_file, keyfile=c.file("bad-key.pem", "not a key\n")),
        str(c.folder / "bad-key.pem"),
        "TLS private key {}: not a PEM private key",
    ),
    "key of another certificate": lambda c: (
        TLSSettings(certfile=c.fullchain_file, keyfile=c.client_key_file),
        c.client_key_file,
        f"TLS private key {{}}: it does not match the certificate {c.fullchain_file}",
    ),
    "garbage certificate": lambda c: (
        TLSSettings(certfile=c.file("bad-cert.pem", "garbage\n"), keyfile=c.key_file),
        str(c.folder / "bad-cert.pem"),
        "TLS certificate {}: no PEM certificate in it",
    ),
    "corrupt certificate": lambda c: (
        TLSSettings(
            certfile=c.file(
                "corrupt.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            ),
            keyfile=c.key_file,
        ),
        str(c.folder / "corrupt.pem"),
        "TLS certificate {}: ",
    ),
    "missing certificate": lambda c: (
        TLSSettings(certfile=str(c.folder / "gone.pem"), keyfile=c.key_file),
        str(c.folder / "gone.pem"),
        "TLS certificate {}: no such file or directory",
    ),
    "garbage chain": lambda c: (
        TLSSettings(
            certfile=c.cert_file,
            keyfile=c.key_file,
            extra_cert_chain=c.file("bad-chain.pem", "x"),
        ),
        str(c.folder / "bad-chain.pem"),
        "TLS certificate chain (extraCertChain) {}: no PEM certificate in it",
    ),
    "garbage DH parameters": lambda c: (
        TLSSettings(
            certfile=c.fullchain_file, keyfile=c.key_file, dh_params=c.file("dh-bad.pem", "x")
        ),
        str(c.folder / "dh-bad.pem"),
        "TLS DH parameters (dhParameters) {}: ",
    ),
    "missing client CAs": lambda c: (
        TLSSettings(
            certfile=c.fullchain_file,
            keyfile=c.key_file,
            ca_certs=str(c.folder / "no-ca.pem"),
            cert_reqs=ssl.CERT_REQUIRED,
        ),
        str(c.folder / "no-ca.pem"),
        "TLS client CA certificates (ssl_ca_certs) {}: no such file or directory",
    ),
    "garbage client CAs": lambda c: (
        TLSSettings(
            certfile=c.fullchain_file,
            keyfile=c.key_file,
            ca_certs=c.file("bad-ca.pem", "x"),
            cert_reqs=ssl.CERT_REQUIRED,
        ),
        str(c.folder / "bad-ca.pem"),
        "TLS client CA certificates (ssl_ca_certs) {}: ",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_FILES))
def test_a_bad_file_is_one_line_naming_it(certs: Any, case: str) -> None:
    settings, path, expected = BROKEN_FILES[case](certs)
    with pytest.raises(ConfigurationError) as caught:
        server_context(settings, http2=False)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("cannot load the " + expected.format(path)), message


def test_a_cipher_list_that_selects_nothing_is_named(certs: Any) -> None:
    settings = TLSSettings(
        certfile=certs.fullchain_file, keyfile=certs.key_file, ciphers="NO-SUCH-CIPHER"
    )
    with pytest.raises(ConfigurationError, match="'NO-SUCH-CIPHER' \\(ssl_ciphers\\)"):
        server_context(settings, http2=False)


def test_rfc4514_name_escapes_and_reverses() -> None:
    # getpeercert() order: most significant first; RFC 4514 writes it last.
    subject = (
        (("countryName", "GB"),),
        (("organizationName", "Example, Inc."),),
        (("commonName", "#alice "), ("emailAddress", "a+b@example.org")),
    )
    assert rfc4514_name(subject) == (
        "CN=\\#alice\\ +1.2.840.113549.1.9.1=a\\+b@example.org,O=Example\\, Inc.,C=GB"
    )


# -- HTTPS and WSS -------------------------------------------------------------------------------


@on_both_loops
async def test_https_request_has_scheme_https_and_the_tls_extension(
    start: Any, certs: Any, recorder: Any, http: SimpleNamespace
) -> None:
    server = await start(recorder, **tls_config(certs))
    data, client = await support.https_get(http.port_of(server), certs.client_context())
    assert http.parse(data)[0].body == b"ok"
    (scope,) = recorder.scopes
    assert scope["scheme"] == "https"
    tls = scope["extensions"]["tls"]
    assert support.same_certificate(tls["server_cert"], certs.server_cert_pem)
    # No client certificate is asked for, so none is reported.
    assert list(tls["client_cert_chain"]) == []
    assert tls["client_cert_name"] is None
    assert tls["client_cert_error"] is None
    assert client.version() == "TLSv1.3"
    assert tls["tls_version"] == 0x0304
    assert tls["cipher_suite"] == support.TLS13_CIPHER_SUITES[client.cipher()[0]]


@on_both_loops
async def test_tls_12_reports_its_version_and_the_iana_cipher_number(
    start: Any, certs: Any, recorder: Any, http: SimpleNamespace
) -> None:
    server = await start(recorder, **tls_config(certs))
    context = certs.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    # trustme's keys are ECDSA; RFC 5289 numbers this suite 0xC02B.
    context.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    data, _ = await support.https_get(http.port_of(server), context)
    assert http.parse(data)[0].status == 200
    tls = recorder.scopes[0]["extensions"]["tls"]
    assert (tls["tls_version"], tls["cipher_suite"]) == (0x0303, 0xC02B)


@on_both_loops
async def test_keep_alive_requests_each_get_the_extension(
    start: Any, certs: Any, recorder: Any, http: SimpleNamespace
) -> None:
    server = await start(recorder, **tls_config(certs))
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", http.port_of(server), ssl=certs.client_context(), server_hostname="localhost"
    )
    for _ in range(2):
        writer.write(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
        await http.read_response(reader)
    writer.close()
    first, second = (scope["extensions"]["tls"] for scope in recorder.scopes)
    assert first == second
    assert first is not second  # An application may change its own scope.


@on_both_loops
async def test_tls_connections_disable_nagle(
    start: Any, certs: Any, recorder: Any, http: SimpleNamespace
) -> None:
    """As plain ones: otherwise delayed ACKs add up to 40 ms to keep-alive responses."""
    server = await start(recorder, **tls_config(certs))
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", http.port_of(server), ssl=certs.client_context(), server_hostname="localhost"
    )
    writer.write(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
    await http.read_response(reader)
    (connection,) = server.context.connections
    sock = connection.transport.get_extra_info("socket")
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    writer.close()


@on_both_loops
async def test_plain_tcp_scopes_have_no_tls_extension(
    start: Any, recorder: Any, http: SimpleNamespace
) -> None:
    # The TLS spec forbids the extension on connections that are not TLS.
    server = await start(recorder)
    await http.exchange(
        http.port_of(server), b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    (scope,) = recorder.scopes
    assert scope["scheme"] == "http"
    assert "tls" not in scope.get("extensions", {})


@on_both_loops
async def test_a_trusted_proxy_still_decides_the_scheme(
    start: Any, certs: Any, recorder: Any, http: SimpleNamespace
) -> None:
    server = await start(recorder, proxy_headers=True, **tls_config(certs))
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", http.port_of(server), ssl=certs.client_context(), server_hostname="localhost"
    )
    writer.write(
        b"GET / HTTP/1.1\r\nhost: x\r\nx-forwarded-proto: http\r\nconnection: close\r\n\r\n"
    )
    await read_until_closed(reader)
    writer.close()
    assert recorder.scopes[0]["scheme"] == "http"


@on_both_loops
async def test_wss_handshake_has_scheme_wss_and_the_tls_extension(
    start: Any, certs: Any, recorder: Any, http: SimpleNamespace
) -> None:
    server = await start(recorder, **tls_config(certs))
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", http.port_of(server), ssl=certs.client_context(), server_hostname="localhost"
    )
    writer.write(
        b"GET /chat HTTP/1.1\r\nhost: localhost\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101 ")
    # RFC 6455 §1.3: the accept value for the sample nonce.
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    (scope,) = recorder.scopes
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "wss"
    assert scope["extensions"]["tls"]["tls_version"] == 0x0304
    assert "websocket.http.response" in scope["extensions"]
    writer.write(b"\x88\x82abcd" + bytes(x ^ y for x, y in zip(b"\x03\xe8", b"ab", strict=True)))
    await read_until_closed(reader)
    writer.close()


# -- Daphne's ssl: endpoints ---------------------------------------------------------------------


@on_both_loops
async def test_ssl_endpoint_with_key_certificate_chain_and_dh_parameters(
    start: Any, certs: Any, recorder: Any, http: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "channels_server")
    endpoint = (
        f"ssl:0:interface=127.0.0.1:privateKey={certs.key_file}:certKey={certs.cert_file}"
        f":extraCertChain={certs.chain_file}:dhParameters={certs.dh_file}"
    )
    server = await start(recorder, endpoints=(endpoint,))
    port = http.port_of(server)
    # The client trusts the root only: it verifies through the intermediate sent.
    data, _ = await support.https_get(port, certs.client_context())
    assert http.parse(data)[0].body == b"ok"
    assert recorder.scopes[0]["scheme"] == "https"
    assert f"Listening on https://127.0.0.1:{port}" in caplog.text


@on_both_loops
async def test_without_extra_cert_chain_the_client_cannot_verify(
    start: Any, certs: Any, recorder: Any, http: SimpleNamespace
) -> None:
    # The other half of the test above: the intermediate comes from extraCertChain.
    endpoint = f"ssl:0:interface=127.0.0.1:privateKey={certs.key_file}:certKey={certs.cert_file}"
    server = await start(recorder, endpoints=(endpoint,))
    with pytest.raises(ssl.SSLCertVerificationError):
        await support.https_get(http.port_of(server), certs.client_context())
    assert recorder.scopes == []


@on_both_loops
async def test_tls_and_plain_endpoints_side_by_side(
    start: Any, certs: Any, recorder: Any, http: SimpleNamespace
) -> None:
    tls_endpoint = (
        f"ssl:0:interface=127.0.0.1:privateKey={certs.key_file}:certKey={certs.fullchain_file}"
    )
    server = await start(recorder, endpoints=(LOCAL, tls_endpoint))
    plain_port, tls_port = (address[1] for address in server.addresses)
    await http.exchange(plain_port, b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    await support.https_get(tls_port, certs.client_context())
    assert [scope["scheme"] for scope in recorder.scopes] == ["http", "https"]


@on_both_loops
async def test_tls_over_a_unix_socket(
    start: Any, certs: Any, recorder: Any, tmp_socket_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "channels_server")
    await start(recorder, endpoints=(f"unix:{tmp_socket_path}",), **tls_config(certs))
    assert f"Listening on unix socket {tmp_socket_path} (TLS)" in caplog.text
    reader, writer = await asyncio.open_unix_connection(
        tmp_socket_path, ssl=certs.client_context(), server_hostname="localhost"
    )
    writer.write(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
    assert (await read_until_closed(reader)).endswith(b"ok")
    writer.close()
    assert recorder.scopes[0]["scheme"] == "https"
    assert recorder.scopes[0]["extensions"]["tls"]["tls_version"] == 0x0304


# -- client certificates -------------------------------------------------------------------------


@on_both_loops
async def test_required_client_certificate_is_in_the_extension(
    start: Any, certs: Any, recorder: Any, http: SimpleNamespace
) -> None:
    server = await start(
        recorder, **tls_config(certs, ssl_ca_certs=certs.ca_file, ssl_cert_reqs=ssl.CERT_REQUIRED)
    )
    data, _ = await support.https_get(http.port_of(server), certs.client_context(client_cert=True))
    assert http.parse(data)[0].status == 200
    tls = recorder.scopes[0]["extensions"]["tls"]
    chain = list(tls["client_cert_chain"])
    assert support.same_certificate(chain[0], certs.client_cert_pem)
    # An independent RFC 4514 writer (cryptography's); "Example, Inc." needs escaping.
    assert tls["client_cert_name"] == support.rfc4514_of(certs.client_cert_pem)
    assert "O=Example\\, Inc." in tls["client_cert_name"]
    assert tls["client_cert_error"] is None


@on_both_loops
async def test_optional_client_certificate_may_be_left_out(
    start: Any, certs: Any, recorder: Any, http: SimpleNamespace
) -> None:
    server = await start(
        recorder, **tls_config(certs, ssl_ca_certs=certs.ca_file, ssl_cert_reqs=ssl.CERT_OPTIONAL)
    )
    data, _ = await support.https_get(http.port_of(server), certs.client_context())
    assert http.parse(data)[0].status == 200
    tls = recorder.scopes[0]["extensions"]["tls"]
    assert (list(tls["client_cert_chain"]), tls["client_cert_name"]) == ([], None)


@on_both_loops
@pytest.mark.parametrize("client_cert", ["none", "from another CA"])
async def test_missing_or_untrusted_client_certificate_fails_the_handshake_only(
    start: Any,
    certs: Any,
    recorder: Any,
    http: SimpleNamespace,
    caplog: pytest.LogCaptureFixture,
    client_cert: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = await start(
        recorder, **tls_config(certs, ssl_ca_certs=certs.ca_file, ssl_cert_reqs=ssl.CERT_REQUIRED)
    )
    port = http.port_of(server)
    context = certs.client_context()
    if client_cert != "none":
        stranger = trustme.CA().issue_cert("mallory@example.org")
        stranger.configure_cert(context)
    try:
        # With TLS 1.3 the client learns of the refusal on its first read.
        data, _ = await support.https_get(port, context)
    except (ssl.SSLError, ConnectionError):
        data = b""
    assert data == b""
    await wait_for_log(caplog, "TLS handshake with")
    data, _ = await support.https_get(port, certs.client_context(client_cert=True))
    assert http.parse(data)[0].status == 200
    assert len(recorder.scopes) == 1
    assert problems(caplog) == []


# -- clients that fail the handshake -------------------------------------------------------------


@on_both_loops
async def test_plain_http_on_the_tls_port_costs_a_debug_line(
    start: Any, certs: Any, recorder: Any, http: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = await start(recorder, **tls_config(certs))
    port = http.port_of(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    assert await read_until_closed(reader) == b""
    writer.close()
    await wait_for_log(caplog, "TLS handshake with")
    data, _ = await support.https_get(port, certs.client_context())
    assert http.parse(data)[0].status == 200
    assert problems(caplog) == []
    debug = [r for r in caplog.records if "TLS handshake with" in r.getMessage()]
    assert [record.levelno for record in debug] == [logging.DEBUG]


@on_both_loops
async def test_clients_dropping_or_stalling_mid_handshake_cost_a_debug_line(
    start: Any, certs: Any, recorder: Any, http: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = await start(recorder, header_timeout=0.5, **tls_config(certs))
    port = http.port_of(server)
    # The start of a ClientHello, then a reset (SO_LINGER 0).
    dropped = socket.create_connection(("127.0.0.1", port))
    dropped.sendall(b"\x16\x03\x01\x00\xc8\x01\x00")
    dropped.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    dropped.close()
    # A client that connects and says nothing: the handshake timeout is the header timeout.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await read_until_closed(reader) == b""
    writer.close()
    await wait_for_log(caplog, "taking longer than 0.5 seconds")
    data, _ = await support.https_get(port, certs.client_context())
    assert http.parse(data)[0].status == 200
    assert problems(caplog) == []
    assert len([r for r in caplog.records if "TLS handshake with" in r.getMessage()]) == 2


@on_both_loops
async def test_shutdown_does_not_wait_for_a_stalled_handshake(
    certs: Any, recorder: Any, http: SimpleNamespace
) -> None:
    server = Server(recorder, Config(endpoints=(LOCAL,), lifespan="off", **tls_config(certs)))
    await server.startup()
    _, writer = await asyncio.open_connection("127.0.0.1", http.port_of(server))
    (acceptor,) = server._acceptors
    # Until the server has accepted it and the handshake waits for the client.
    deadline = asyncio.get_running_loop().time() + 5
    while not acceptor._connecting:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the server did not accept the connection")
        await asyncio.sleep(0.01)
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(server.shutdown(), 5)
    # The handshake timeout is the header timeout, 10 s.
    assert asyncio.get_running_loop().time() - started < 2
    writer.close()


@on_both_loops
@pytest.mark.parametrize("http2", ["off", "on"])
async def test_an_idle_client_that_never_answers_close_notify_does_not_hold_shutdown(
    certs: Any, recorder: Any, http: SimpleNamespace, http2: str
) -> None:
    """Closing a TLS connection waits for the client's close_notify for up to
    30 s (the loop's ssl_shutdown_timeout); an idle connection is dropped
    once the server's own close_notify is out instead."""
    server = Server(
        recorder, Config(endpoints=(LOCAL,), lifespan="off", http2=http2, **tls_config(certs))
    )
    await server.startup()
    port = http.port_of(server)
    context = certs.client_context()
    if http2 == "on":
        context.set_alpn_protocols(["h2"])
    # A blocking client in a thread: it completes the handshake, then reads nothing.
    raw = await asyncio.to_thread(socket.create_connection, ("127.0.0.1", port), 5)
    client = await asyncio.to_thread(context.wrap_socket, raw, server_hostname="localhost")
    try:
        deadline = asyncio.get_running_loop().time() + 5
        while not server.context.connections:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("the server did not take the connection")
            await asyncio.sleep(0.01)
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(server.shutdown(), 10)
        assert asyncio.get_running_loop().time() - started < 5
        assert not server.context.connections
    finally:
        client.close()


@on_both_loops
async def test_alpn_selects_http11_when_http2_is_off(
    start: Any, certs: Any, recorder: Any, http: SimpleNamespace
) -> None:
    server = await start(recorder, http2="off", **tls_config(certs))
    context = certs.client_context(alpn=["h2", "http/1.1"])
    data, client = await support.https_get(http.port_of(server), context)
    assert client.selected_alpn_protocol() == "http/1.1"
    assert http.parse(data)[0].status == 200


# -- a bad file stops the server -----------------------------------------------------------------


@on_both_loops
async def test_a_bad_file_stops_startup_before_anything_listens(
    certs: Any, recorder: Any, unused_port: int
) -> None:
    config = Config(
        endpoints=(f"tcp:port={unused_port}:interface=127.0.0.1",),
        lifespan="off",
        ssl_certfile=certs.fullchain_file,
        ssl_keyfile=certs.encrypted_key_file,
        ssl_keyfile_password="wrong",
    )
    server = Server(recorder, config)
    with pytest.raises(ConfigurationError, match="wrong password"):
        await server.startup()
    assert server.sockets == []
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", unused_port))  # Nothing was bound there.


# -- the command line ----------------------------------------------------------------------------

APP = textwrap.dedent(
    """
    async def application(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": scope["scheme"].encode()})
    """
)


@pytest.fixture
def command(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """``command(*argv)``: ``python -m channels_server *argv tlsapp:application``."""
    (tmp_path / "tlsapp.py").write_text(APP)
    started: list[subprocess.Popen[bytes]] = []

    def run(*argv: str) -> subprocess.Popen[bytes]:
        popen = subprocess.Popen(
            [sys.executable, "-m", "channels_server", *argv, "tlsapp:application"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(os.environ),
        )
        started.append(popen)
        return popen

    yield run
    for popen in started:
        if popen.poll() is None:
            popen.kill()
        popen.communicate()


COMMAND_LINE_FAILURES: dict[str, Callable[[Any], tuple[list[str], str]]] = {
    "missing key": lambda c: (
        ["--ssl-certfile", c.fullchain_file, "--ssl-keyfile", str(c.folder / "nope.pem")],
        f"cannot load the TLS private key {c.folder / 'nope.pem'}: no such file or directory",
    ),
    "wrong password": lambda c: (
        [
            "--ssl-certfile",
            c.fullchain_file,
            "--ssl-keyfile",
            c.encrypted_key_file,
            "--ssl-keyfile-password",
            "wrong",
        ],
        f"cannot load the TLS private key {c.encrypted_key_file}: wrong password",
    ),
    "garbage certificate": lambda c: (
        ["--ssl-certfile", c.file("junk.pem", "junk"), "--ssl-keyfile", c.key_file],
        f"cannot load the TLS certificate {c.folder / 'junk.pem'}: no PEM certificate in it",
    ),
    "garbage certificate in an ssl: endpoint": lambda c: (
        [
            "-e",
            f"ssl:0:interface=127.0.0.1:privateKey={c.key_file}:certKey="
            + c.file("junk.pem", "junk"),
        ],
        f"cannot load the TLS certificate {c.folder / 'junk.pem'}: no PEM certificate in it",
    ),
}


@pytest.mark.parametrize("case", sorted(COMMAND_LINE_FAILURES))
def test_command_line_exits_1_with_one_line_naming_the_file(
    certs: Any, command: Callable[..., subprocess.Popen[bytes]], case: str
) -> None:
    argv, message = COMMAND_LINE_FAILURES[case](certs)
    popen = command("-p", "0", *argv)
    stdout, stderr = popen.communicate(timeout=30)
    assert popen.returncode == 1
    assert b"Listening" not in stdout
    text = stderr.decode()
    assert "Traceback" not in text
    assert text.splitlines()[-1] == f"channels-server: {message}"


def _read_line(popen: subprocess.Popen[bytes], timeout: float = 20) -> str:
    assert popen.stdout is not None
    ready, _, _ = select.select([popen.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError("the server printed nothing")
    return popen.stdout.readline().decode()


@pytest.mark.parametrize("style", ["ssl-flags", "ssl-endpoint"])
def test_command_line_serves_https(
    certs: Any, command: Callable[..., subprocess.Popen[bytes]], style: str
) -> None:
    if style == "ssl-flags":
        argv = ["-p", "0", "--ssl-certfile", certs.fullchain_file, "--ssl-keyfile", certs.key_file]
    else:
        argv = [
            "-e",
            f"ssl:0:interface=127.0.0.1:privateKey={certs.key_file}:certKey={certs.cert_file}"
            f":extraCertChain={certs.chain_file}",
        ]
    popen = command(*argv)
    line = _read_line(popen)
    assert line.startswith("Listening on https://127.0.0.1:"), line
    port = int(line.rsplit(":", 1)[1])
    context = certs.client_context()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        received = b""
        while chunk := tls.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 ")
    assert received.endswith(b"\r\n\r\nhttps")
    popen.send_signal(signal.SIGTERM)
    assert popen.wait(timeout=20) == 0
